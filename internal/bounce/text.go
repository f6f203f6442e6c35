package bounce

import (
	"net/textproto"
	"regexp"
	"strings"
)

// textFormat recognises and reads one non-standard bounce: a plain-text
// body that names the failed addresses and quotes the remote server.
type textFormat struct {
	format Format
	match  func(h textproto.MIMEHeader, text string) bool
	parse  func(h textproto.MIMEHeader, text string) []Recipient
}

// textFormats are tried in order; the first that matches and finds a
// recipient wins.
var textFormats = []textFormat{
	{FormatExim, matchExim, parseExim},
	{FormatQmail, matchAny("This is the qmail-send program", "I'm afraid I wasn't able to deliver your message"), parseAngle},
	{FormatYahoo, matchAny("Sorry, we were unable to deliver your message to the following address"), parseAngle},
	{FormatExchange, matchAny("Delivery has failed to these recipients or groups", "Your message did not reach some or all of the intended recipients"), parseExchange},
	{FormatGmail, matchAny("Delivery to the following recipient failed permanently", "Delivery to the following recipients failed permanently", "The response from the remote server was", "Google tried to deliver your message"), parseGmail},
}

func matchAny(markers ...string) func(textproto.MIMEHeader, string) bool {
	return func(_ textproto.MIMEHeader, text string) bool {
		for _, m := range markers {
			if strings.Contains(text, m) {
				return true
			}
		}
		return false
	}
}

var addrRe = regexp.MustCompile(`[A-Za-z0-9._%+\-=!#$&'*/?^{|}~]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)+`)

var qmailStatusRe = regexp.MustCompile(`\(#([245]\.\d{1,3}\.\d{1,3})\)`)

// cut returns text up to the first of the markers that quote the original
// message, so its headers are not read as the bounce's.
func cut(text string) string {
	for _, m := range []string{"------ This is a copy of the message", "--- Below this line is a copy of the message", "----- Original message -----", "Original message headers:"} {
		if i := strings.Index(text, m); i >= 0 {
			text = text[:i]
		}
	}
	return text
}

// replyIn finds the first SMTP reply in lines ("550 5.1.1 …", "Remote host
// said: 550 …", "#550 5.1.1 …", "Remote Server returned '550 …'") and
// fills r's Code, Status and Diagnostic.
func replyIn(r *Recipient, lines []string) bool {
	for i, l := range lines {
		l = strings.TrimSpace(l)
		for _, p := range []string{"Remote host said:", "Remote Server returned", "The error that the other server returned was:", "The response from the remote server was:"} {
			if j := strings.Index(l, p); j >= 0 {
				l = strings.TrimSpace(l[j+len(p):])
				if l == "" && i+1 < len(lines) {
					l = strings.TrimSpace(lines[i+1])
				}
			}
		}
		l = strings.Trim(l, "'#\"")
		if code, text := replyOf(l); code != 0 {
			// A reply continued on the following indented lines.
			for _, next := range lines[i+1:] {
				if strings.TrimSpace(next) == "" || !strings.HasPrefix(next, " ") || strings.Contains(next, "@") && addrRe.MatchString(strings.TrimSpace(next)) && strings.TrimSpace(next) == addrRe.FindString(next) {
					break
				}
				text += " " + strings.TrimSpace(next)
			}
			r.Code, r.Diagnostic = code, strings.TrimRight(strings.Trim(text, "'#"), "' ")
			r.Status = statusOf(text)
			return true
		}
	}
	return false
}

// X-Failed-Recipients is Exim's own header; the body says "could not be
// delivered to one or more of its recipients".
func matchExim(h textproto.MIMEHeader, text string) bool {
	return h.Get("X-Failed-Recipients") != "" ||
		strings.Contains(text, "could not be delivered to one or more of its") ||
		strings.Contains(text, "The following address(es) failed")
}

// parseExim reads Exim's list: each failed address on a line indented by
// two spaces, the details indented further below it.
func parseExim(h textproto.MIMEHeader, text string) []Recipient {
	text = cut(text)
	perm := !strings.Contains(text, "temporary error") && !strings.Contains(text, "has not yet been delivered")
	lines := strings.Split(text, "\n")
	var out []Recipient
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if !strings.HasPrefix(l, "  ") || strings.HasPrefix(l, "    ") {
			continue
		}
		a := strings.TrimSpace(l)
		a = strings.TrimSuffix(a, ":")
		if !addrRe.MatchString(a) || addrRe.FindString(a) != strings.Trim(a, "<>") {
			continue
		}
		r := Recipient{Address: strings.Trim(a, "<>"), Action: "failed"}
		if !perm {
			r.Action = "delayed"
		}
		j := i + 1
		for j < len(lines) && (strings.HasPrefix(lines[j], "    ") || strings.TrimSpace(lines[j]) == "") {
			if strings.TrimSpace(lines[j]) == "" && j+1 < len(lines) && !strings.HasPrefix(lines[j+1], "    ") {
				break
			}
			j++
		}
		if !replyIn(&r, lines[i+1:j]) {
			r.Diagnostic = strings.TrimSpace(strings.Join(lines[i+1:j], " "))
			if r.Status = statusOf(r.Diagnostic); r.Status == "" && perm {
				r.Status = "5.0.0"
			}
		}
		out = append(out, r)
		i = j - 1
	}
	if len(out) == 0 {
		for _, a := range strings.Split(h.Get("X-Failed-Recipients"), ",") {
			if a = strings.TrimSpace(a); a != "" {
				r := Recipient{Address: a, Action: "failed", Status: "5.0.0"}
				replyIn(&r, lines)
				out = append(out, r)
			}
		}
	}
	return out
}

// parseAngle reads the qmail layout, which Yahoo uses too: paragraphs that
// start with "<address>:" followed by the remote server's words.
func parseAngle(_ textproto.MIMEHeader, text string) []Recipient {
	text = cut(text)
	perm := !strings.Contains(text, "not yet given up") && !strings.Contains(text, "temporary")
	var out []Recipient
	for _, para := range strings.Split(text, "\n\n") {
		para = strings.TrimSpace(para)
		if !strings.HasPrefix(para, "<") {
			continue
		}
		first, rest, _ := strings.Cut(para, "\n")
		first = strings.TrimSpace(first)
		end := strings.Index(first, ">")
		if end < 0 {
			continue
		}
		a := first[1:end]
		if !addrRe.MatchString(a) {
			continue
		}
		r := Recipient{Address: a, Action: "failed"}
		if !perm {
			r.Action = "delayed"
		}
		lines := strings.Split(rest, "\n")
		if !replyIn(&r, lines) {
			r.Diagnostic = strings.TrimSpace(rest)
		}
		if m := qmailStatusRe.FindStringSubmatch(rest); m != nil && r.Status == "" {
			// qmail's "(#5.1.1)" is an RFC 3463 status.
			r.Status = m[1]
		}
		if r.Status == "" {
			r.Status = "5.0.0"
			if !perm {
				r.Status = "4.0.0"
			}
		}
		out = append(out, r)
	}
	return out
}

// parseExchange reads the text of an older Exchange or Office 365 report:
// the diagnostic section names each address and then "Remote Server
// returned '550 5.1.1 …'" or "#550 5.1.1 …##".
func parseExchange(_ textproto.MIMEHeader, text string) []Recipient {
	text = cut(text)
	lines := strings.Split(text, "\n")
	var out []Recipient
	seen := map[string]bool{}
	for i, l := range lines {
		t := strings.TrimSpace(l)
		a := addrRe.FindString(t)
		if a == "" || seen[strings.ToLower(a)] {
			continue
		}
		end := min(i+6, len(lines))
		r := Recipient{Address: a, Action: "failed"}
		if replyIn(&r, append([]string{strings.TrimSpace(strings.TrimPrefix(t, a))}, lines[i+1:end]...)) {
			seen[strings.ToLower(a)] = true
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		// The first address after the opening sentence, and the first
		// reply anywhere.
		for _, marker := range []string{"Delivery has failed to these recipients or groups:", "intended recipients."} {
			if i := strings.Index(text, marker); i >= 0 {
				if a := addrRe.FindString(text[i:]); a != "" {
					r := Recipient{Address: a, Action: "failed", Status: "5.0.0"}
					replyIn(&r, lines)
					out = append(out, r)
					break
				}
			}
		}
	}
	return out
}

var gmailToRe = regexp.MustCompile(`(?:wasn't delivered to|failed permanently:)\s*\n?\s*<?(` + addrRe.String() + `)`)

// parseGmail reads Gmail's plain-text bounce: the address after "failed
// permanently:" (or "wasn't delivered to"), the remote reply after "The
// error that the other server returned was:" or "The response from the
// remote server was:".
func parseGmail(_ textproto.MIMEHeader, text string) []Recipient {
	text = cut(text)
	m := gmailToRe.FindStringSubmatch(text)
	if m == nil {
		return nil
	}
	r := Recipient{Address: m[1], Action: "failed"}
	lines := strings.Split(text, "\n")
	if !replyIn(&r, lines) {
		r.Status = "5.0.0"
	}
	if strings.Contains(text, "will retry") || strings.Contains(text, "temporary problem") {
		r.Action = "delayed"
	}
	return []Recipient{r}
}
