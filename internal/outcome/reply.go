package outcome

import (
	"strings"

	"mailout/internal/route"
	"mailout/internal/smtpclient"
)

// Reply classification: the server answered with a 4xx or 5xx reply
// (RFC 5321 §4.2) at some step, maybe with an enhanced status code
// (RFC 3463, RFC 5248 registry). The words of real servers are matched in
// lower case; each rule names the servers whose wording it was written for
// (see classify_test.go for the replies themselves).

func containsAny(s string, words ...string) bool {
	for _, w := range words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// Wording that says our sending IP (or host) is on a blocklist or has a bad
// reputation: Outlook/Microsoft 365 "Client host [..] blocked using
// Spamhaus", Postfix reject_rbl_client "Service unavailable; Client host
// [..] blocked using zen.spamhaus.org", Gmail "The IP you're using to send
// mail is not authorized to send email directly to our servers", Yahoo
// "[BL21] Connections will not be accepted from ..", Microsoft "banned
// sending IP". It blames the sender, never the recipient.
func isBlocklist(t string) bool {
	return containsAny(t, "blocked using", "spamhaus", "blacklist", "blocklist",
		"block list", "dnsbl", " rbl", "not authorized to send email directly",
		"banned sending ip", "[bl2", "connections will not be accepted",
		"poor reputation", "bad reputation", "client host rejected",
		"cannot find your hostname", "reverse hostname", "ptr record")
}

func isRelayDenied(t, enh string) bool {
	return enh == "5.7.64" || enh == "5.7.54" ||
		containsAny(t, "relay access denied", "relaying denied", "relay denied",
			"not permitted to relay", "relay not permitted", "relaying not allowed",
			"unable to relay", "we do not relay", "relay not allowed",
			"relaying mail to", "not allowed to relay", "relay prohibited")
}

func isAuthRequired(t, enh string) bool {
	return enh == "5.7.57" || containsAny(t, "authentication required",
		"authentication is required", "not authenticated", "must authenticate",
		"please authenticate", "auth required", "authenticate first",
		"login required", "must be authenticated", "is unauthenticated")
}

func isGreylist(t string) bool {
	return containsAny(t, "greylist", "grey-list", "graylist", "gray-list", "greylisted")
}

func isTryLater(t string) bool {
	return containsAny(t, "try again later", "try later", "please retry",
		"retry later", "try again in")
}

// Rate wording: Gmail 4.7.28 "unusual rate of unsolicited mail ... rate
// limited", Gmail 4.2.1 "receiving mail at a rate that prevents additional
// messages", Yahoo "[TSS04] Messages from .. temporarily deferred due to
// unexpected volume or user complaints", Outlook 4.7.650 "temporarily rate
// limited due to IP reputation", Sendmail "Connection rate limit exceeded",
// Postfix anvil "Error: too many connections from ..".
func isRate(t, enh string) bool {
	if enh == "4.7.28" || enh == "4.7.650" || enh == "4.7.651" {
		return true
	}
	return containsAny(t, "rate limit", "rate-limit", "ratelimit", "unusual rate",
		"at a rate", "too many connections", "too many concurrent",
		"too many messages", "too many mails", "too many smtp sessions",
		"temporarily deferred", "unexpected volume",
		"[ts0", "[tss", "exceeded the rate", "slow down", "throttl",
		"server busy", "sending rate")
}

// Quota of the relay account ("550 5.4.5 Daily user sending quota exceeded"
// from Gmail's SMTP, "Daily sending limit exceeded" elsewhere): the account
// may send again later, so this is a rate limit, not a bounce.
func isSendingQuota(t string) bool {
	return containsAny(t, "sending quota", "sending limit", "daily user sending",
		"daily sending", "message limit exceeded", "messages limit")
}

func isMailboxFull(t, enh string) bool {
	// RFC 3463 X.2.2: mailbox full.
	return strings.HasSuffix(enh, ".2.2") ||
		containsAny(t, "mailbox full", "mailbox is full", "over quota",
			"quota exceeded", "exceeded storage", "exceeded its quota",
			"mailbox size limit", "out of storage", "mailbox has exceeded",
			"insufficient space in mailbox", "user is over")
}

// Wording that the recipient's mailbox does not exist: Postfix "User
// unknown in local recipient table", Exim "Unrouteable address", Gmail "The
// email account that you tried to reach does not exist", Sendmail
// "... User unknown", Microsoft "Recipient not found by SMTP address lookup"
// and "Recipient address rejected: Access denied" (5.4.1, directory-based
// edge blocking), Yahoo "This user doesn't have a yahoo.com account".
func isRecipientUnknown(t, enh string) bool {
	switch enh {
	case "5.1.0", "5.1.1", "5.1.10", "5.1.6", "5.2.1":
		return true
	}
	if strings.HasPrefix(enh, "5.7.") {
		return false // policy, not an address
	}
	return containsAny(t, "user unknown", "unknown user", "does not exist",
		"doesn't exist", "no such user", "no such mailbox", "no such recipient",
		"recipient not found", "mailbox not found", "unknown recipient",
		"invalid recipient", "unrouteable address", "unroutable address",
		"recipient address rejected", "doesn't have a", "no mailbox here",
		"mailbox is disabled", "account is disabled", "account has been disabled",
		"address not found")
}

func isSenderProblem(t, enh string) bool {
	return enh == "5.1.7" || enh == "5.1.8" || enh == "5.7.60" ||
		containsAny(t, "sender verify failed", "sender address rejected",
			"sender rejected", "domain of sender address", "sender domain",
			"send as this sender", "sender not allowed", "sender denied")
}

// isSenderUnauthenticated: a refusal because the sending domain fails the
// receiver's authentication checks. RFC 7372 §3 gives them X.7.20–X.7.27
// (no passing or acceptable DKIM signature, SPF failed or in error,
// reverse DNS validation failed, several checks failed, the sender's
// domain has a null MX); Gmail answers 5.7.26 ("Unauthenticated email
// from … is not accepted due to domain's DMARC policy", "the sender is
// unauthenticated"), Microsoft 5.7.509 (DMARC reject) and 5.7.515 ("doesn't
// meet the required authentication level"), and filters without enhanced
// codes say DMARC, SPF or DKIM failed in words. The words count after MAIL
// only: at MAIL a relay's "client is unauthenticated" asks for AUTH.
func isSenderUnauthenticated(t, enh string, step Step) bool {
	if c, detail, ok := strings.Cut(enh, ".7."); ok && (c == "4" || c == "5") {
		switch detail {
		case "20", "21", "22", "23", "24", "25", "26", "27", "509", "515":
			return true
		}
	}
	if step != StepRcpt && step != StepData && step != StepBody {
		return false
	}
	return containsAny(t, "dmarc", "sender is unauthenticated", "unauthenticated email",
		"unauthenticated mail", "required authentication level",
		"spf fail", "spf check fail", "fails spf", "failed spf", "pass spf", "spf validation",
		"dkim fail", "dkim check fail", "dkim validation", "no valid dkim", "dkim signature invalid",
		"invalid dkim")
}

func isContent(t, enh string) bool {
	return strings.HasPrefix(enh, "5.7.") || containsAny(t, "spam", "policy",
		"dmarc", "dkim", "spf", "unsolicited", "virus", "malware", "phish",
		"content rejected", "message rejected")
}

// classifyReply classifies a 4xx/5xx reply at step. The result has no
// Step/Code/Text yet; the caller sets them.
func classifyReply(a Attempt, step Step, code int, enh, text string) Result {
	t := strings.ToLower(text)
	enh = strings.TrimSpace(enh)
	perm := code/100 == 5
	temp := code/100 == 4
	direct := a.Route != route.Relay

	// STARTTLS refused, or the relay insists on it: Postfix "530 5.7.0 Must
	// issue a STARTTLS command first"; RFC 3207 §4 (454 TLS not available),
	// RFC 4954 §6 538 "Encryption required for requested authentication
	// mechanism".
	if step == StepTLS || code == smtpclient.CodeEncryptionRequired || strings.Contains(t, "starttls") ||
		containsAny(t, "encryption required", "tls required", "must use tls") {
		return mk(TLSFailed, a, "the server refused or requires TLS (STARTTLS)")
	}

	switch step {
	case StepGreeting, StepEHLO:
		// A 5xx greeting means "this host refuses"; Postfix
		// (smtp_skip_5xx_greeting) then tries the next MX. For a direct
		// delivery the recipient is not to blame, so it is temporary: the
		// next MX or a later retry follows. The relay refusing us is the
		// guide's "server is there but won't talk to you".
		if temp {
			return classifyTemp(a, code, enh, t)
		}
		if !direct {
			return mk(RelayDenied, a, "the relay refuses our session at greeting")
		}
		x := mk(Temporary, a, "this host refuses our session (5xx at greeting): try the next MX or later")
		x.LocalFault = isBlocklist(t)
		if x.LocalFault {
			x.Reason = "this host refuses our IP (blocklist at greeting): try the next MX or later"
		}
		return x
	case StepAuth:
		// RFC 4954 §6: 535 5.7.8 bad credentials, 534 5.7.9 mechanism too
		// weak (Gmail: application-specific password required), 454 4.7.0
		// temporary authentication failure.
		if temp {
			return mk(Temporary, a, "temporary authentication failure")
		}
		return refusal(a, AuthFailed, "the server rejected our credentials")
	}

	if code == smtpclient.CodeAuthInvalid || enh == "5.7.8" || enh == "5.7.139" || enh == "5.7.3" {
		return refusal(a, AuthFailed, "535: credentials rejected")
	}
	// RFC 4954 §6: 530 5.7.0 Authentication required.
	if code == smtpclient.CodeAuthRequired {
		return refusal(a, AuthRequired, "530: the server requires authentication")
	}
	if perm && isRelayDenied(t, enh) {
		return refusal(a, RelayDenied, "the server does not relay for us")
	}
	if perm && step == StepMail && isAuthRequired(t, enh) {
		return refusal(a, AuthRequired, "the server requires authentication before MAIL")
	}
	if (perm || temp) && isSenderUnauthenticated(t, enh, step) {
		// Before the recipient and content checks: policyd-spf says
		// "Recipient address rejected: Message rejected due to: SPF fail",
		// Gmail "421 4.7.26 … rate limited because it is unauthenticated".
		return mk(SenderUnauthenticated, a, "the receiver refused the message as unauthenticated: the sending domain fails SPF, DKIM or DMARC")
	}
	if temp {
		return classifyTemp(a, code, enh, t)
	}
	if perm && isSendingQuota(t) {
		return mk(RateLimited, a, "the account's sending quota is exhausted")
	}
	if perm && isBlocklist(t) {
		// Outlook's "550 5.7.1 Service unavailable, Client
		// host [..] blocked using Spamhaus" (at MAIL or RCPT), then the server
		// closes. Decision: sender-rejected — permanent (it is not a "read
		// error"), a local fault (our IP), and never a recipient hard bounce,
		// so the address is not suppressed.
		return mk(SenderRejected, a, "our sending IP is on a blocklist or has a bad reputation")
	}
	if perm && (strings.HasPrefix(enh, "5.3.") || strings.HasPrefix(enh, "5.6.")) {
		// RFC 3463 X.3.x (system: e.g. 5.3.4 message too big) and X.6.x
		// (media: e.g. 5.6.7 no SMTPUTF8): the message does not suit this
		// server, even when said at MAIL FROM (RFC 1870 SIZE).
		return mk(Permanent, a, "the message cannot be taken by this server (size or format)")
	}
	if perm && isMailboxFull(t, enh) {
		// Kind stays temporary: the queue fails it at the campaign's max age.
		return mk(MailboxFull, a, "recipient's mailbox is full")
	}
	switch step {
	case StepMail:
		return mk(SenderRejected, a, "5xx to MAIL FROM: the sender is refused")
	case StepRcpt, StepData, StepBody:
		if isSenderProblem(t, enh) {
			return mk(SenderRejected, a, "the sender address is refused")
		}
		if isRecipientUnknown(t, enh) {
			return mk(RecipientUnknown, a, "the recipient's mailbox does not exist")
		}
		if step != StepRcpt && isContent(t, enh) {
			return mk(ContentRejected, a, "the message was refused as spam or by policy")
		}
	}
	if !perm {
		return mk(ProtocolError, a, "reply code outside 4xx/5xx for a failure")
	}
	return mk(Permanent, a, "5xx reply that matches no more precise class")
}

// refusal classifies a server's "not without logging in" or "not for
// you": authentication required (RFC 4954 §6: 530 5.7.0), credentials
// rejected (535 5.7.8) or relaying denied (RFC 5321 §3.6.2, 550/554 5.7.1).
//
// From the relay — the account's own server, or a hybrid route's fallback
// relay — that is a fault of the account or its settings: class c, and the
// route stops until it is fixed. From a recipient domain's MX (direct route)
// it says the server does not take mail for that domain: the MX record
// names a server that no longer hosts it (a stale record, an abandoned
// domain). Every recipient of the domain meets the same reply, the other
// domains are not concerned, and nothing on our side can change it, so it
// fails the recipient and is no local fault (the breaker does not count
// it).
func refusal(a Attempt, c Class, reason string) Result {
	if a.Route == route.Relay {
		return mk(c, a, reason)
	}
	return mk(DomainNotHosted, a, "the recipient domain's mail server refuses mail for it ("+reason+"): stale MX record or abandoned domain")
}

func classifyTemp(a Attempt, code int, enh, t string) Result {
	switch {
	case enh == "4.5.3" || strings.Contains(t, "too many recipients"):
		// RFC 5321 §4.5.3.1.10: the rest go in a new transaction.
		return mk(Temporary, a, "too many recipients in one transaction")
	case isGreylist(t):
		return mk(Greylisted, a, "greylisting: the server asks us to come back later")
	case (code == smtpclient.CodeMailboxBusy || code == smtpclient.CodeLocalError) && enh == "4.7.1" && isTryLater(t):
		return mk(Greylisted, a, "4.7.1 try again later: greylisting")
	case isMailboxFull(t, enh):
		return mk(MailboxFull, a, "recipient's mailbox is full (temporary)")
	case isRate(t, enh) || isSendingQuota(t):
		return mk(RateLimited, a, "the server limits our sending rate")
	case (code == smtpclient.CodeServiceNotAvailable || strings.HasPrefix(enh, "4.7.")) && isTryLater(t):
		return mk(RateLimited, a, "421/4.7.x try again later: rate limited")
	case isBlocklist(t):
		x := mk(Temporary, a, "our sending IP is temporarily refused (reputation)")
		x.LocalFault = true
		return x
	}
	return mk(Temporary, a, "4xx reply: temporary failure")
}
