package outcome

import (
	"strings"

	"mailout/internal/route"
	"mailout/internal/smtpclient"
)

// ClassifyBounce classifies a failure reported after the message was
// accepted: a delivery status notification (RFC 3464) or a non-standard
// bounce. code is the remote server's reply code when the report carries
// one (Diagnostic-Code: smtp; 550 …), or 0; status is the RFC 3463 status
// code ("5.1.1"); text is the diagnostic text. The remote reply, when there
// is one, is classified exactly like a synchronous reply to the message
// body on the direct route (a later server may refuse at RCPT or after
// the data; the report does not always say which), so a bounce and a
// synchronous refusal land in the same class.
func ClassifyBounce(code int, status, text string) Result {
	status = strings.TrimSpace(status)
	a := Attempt{Route: route.Direct, Step: StepBody}
	t := strings.ToLower(text)
	var r Result
	switch {
	case code == 0 && status == "5.1.10":
		// RFC 7505 §4.2: the domain publishes a null MX, it takes no mail.
		r = mk(NoMailServer, a, "the recipient domain accepts no mail (null MX)")
	case code == 0 && (status == "5.1.2" || status == "5.4.4") &&
		containsAny(t, "not found", "nxdomain", "does not exist", "no such domain", "name service error", "unrouteable", "unroutable"):
		// RFC 3463 X.1.2 bad destination system, X.4.4 unable to route:
		// the reporting MTA could not resolve the domain.
		r = mk(DNSNXDomain, a, "the recipient domain does not exist")
	case code == 0 && strings.HasPrefix(status, "5.4.4"):
		r = mk(NoMailServer, a, "no mail server could be found for the recipient domain")
	default:
		if code == 0 {
			// No remote reply: the reporting MTA's status stands for one
			// (RFC 3463 §3.1: the first digit is the class).
			switch {
			case strings.HasPrefix(status, "5"):
				code = 550 // RFC 5321 §4.2.3: mailbox unavailable
			case strings.HasPrefix(status, "4"):
				code = 450
			default:
				code = 550 // RFC 5321 §4.2.3: mailbox unavailable
			}
		}
		r = classifyReply(a, StepBody, code, status, text)
		r.Code = code
	}
	r.Step, r.Enhanced = StepBody, status
	r.Text = smtpclient.CleanText(text)
	return r
}

// SuppressesAddress reports whether a final failure of class c says the
// address itself cannot receive mail (the mailbox or its domain does not
// exist, or takes no mail), so that sending to it again is pointless: a
// hard bounce.
func SuppressesAddress(c Class) bool {
	switch c {
	case RecipientUnknown, DNSNXDomain, NoMailServer, DomainNotHosted:
		return true
	}
	return false
}
