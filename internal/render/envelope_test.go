package render

import (
	"bytes"
	"strings"
	"testing"
)

// The envelope sender keeps the quotes of a quoted local part: it goes
// into MAIL FROM as is (RFC 5321 §4.1.2), and "john doe@example.com"
// without them is no address at all.
func TestEnvelopeFromKeepsQuotes(t *testing.T) {
	for _, tt := range []struct{ header, want string }{
		{`From: "john doe"@example.com`, `"john doe"@example.com`},
		{`From: Shop <"john doe"@example.com>`, `"john doe"@example.com`},
		{"From: news@example.com\nX-Mailout-Envelope-From: <\"bounce me\"@example.com>", `"bounce me"@example.com`},
		{"From: Shop <news@example.com>", "news@example.com"},
	} {
		tp := mustParse(t, Source{Text: []byte(tt.header + "\nSubject: hi\n\nHello\n")}, Options{})
		m := mustRender(t, tp, Recipient{Email: "a@example.org"})
		if m.From != tt.want {
			t.Errorf("%q: envelope sender %q, want %q", tt.header, m.From, tt.want)
		}
	}
}

// A recipient with a UTF-8 local part (RFC 6531) renders the same with or
// without a To header in the template: the address unchanged in To, and
// as the envelope recipient, which is what asks for SMTPUTF8.
func TestUTF8LocalPartWithAndWithoutTo(t *testing.T) {
	const rcpt = "δοκιμή@example.com"
	for _, head := range []string{
		"From: news@example.com\nSubject: hi",
		"From: news@example.com\nTo: {{.email}}\nSubject: hi",
		"From: news@example.com\nTo: {{.name}} <{{.email}}>\nSubject: hi",
	} {
		tp := mustParse(t, Source{Text: []byte(head + "\n\nHello\n")}, Options{})
		m, err := tp.Render(Recipient{Email: rcpt, Fields: map[string]string{"name": "Δοκιμή"}}, "", nil)
		if err != nil {
			t.Errorf("%q: %v, want it rendered as without a To header", head, err)
			continue
		}
		if m.To != rcpt {
			t.Errorf("%q: envelope recipient %q", head, m.To)
		}
		hdr, _, _ := bytes.Cut(m.Data, []byte("\r\n\r\n"))
		var to string
		unfolded := strings.ReplaceAll(string(hdr), "\r\n ", " ")
		for _, l := range strings.Split(unfolded, "\r\n") {
			if v, ok := strings.CutPrefix(l, "To: "); ok {
				to = v
			}
		}
		if !strings.Contains(to, rcpt) {
			t.Errorf("%q: To header %q does not hold %s unchanged", head, to, rcpt)
		}
	}
}
