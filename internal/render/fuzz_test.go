package render

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

const fuzzFile = "From: Shop <shop@example.com>\nTo: {{.name}} <{{.email}}>\nReply-To: {{.name}} <help@example.com>\nSubject: Hi {{.name}} {{.subject}}\nX-Ref: {{.subject}}\n\nHello {{.name}},\n{{.body}}\nbye\n"

// FuzzRender: whatever the merge values, the output keeps CR/LF as pairs,
// has no line over 998 octets, and carries exactly the expected headers,
// once each.
func FuzzRender(f *testing.F) {
	seeds := [][3]string{
		{"Bob", "news", "body"},
		{"Hi\r\nBcc: victim@example.net", "x\nSubject: y", "\r\n.\r\nMAIL FROM:<a@b>"},
		{"\"Mallory\" <m@example.net>, x", "=?utf-8?q?Bcc?=", "\n.\n"},
		{"Zoë", "Grüße 日本", strings.Repeat("long line ", 3000)},
		{"\x00\xff", "\r", "\r.\r"},
		{"", "", ""},
		{strings.Repeat("a", 2000), strings.Repeat("b ", 600), "--=_a00 boundary"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], s[2])
	}
	tp, err := Parse(Source{Text: []byte(fuzzFile), HTML: []byte("<p>{{.name}}</p><p>{{.body}}</p>")}, Options{Now: fixedNow})
	if err != nil {
		f.Fatal(err)
	}
	want := []string{"Date", "From", "To", "Reply-To", "Subject", "X-Ref", "Message-Id", "Mime-Version", "Content-Type"}
	f.Fuzz(func(t *testing.T, name, subject, body string) {
		m, err := tp.Render(Recipient{Email: "rcpt@example.com", Fields: map[string]string{"name": name, "subject": subject, "body": body}}, "", nil)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			return
		}
		h, parts := parseMessage(t, m.Data)
		if got := headerKeys(h); !sameSet(got, want) {
			t.Fatalf("headers %v, want %v\n%q", got, want, m.Data)
		}
		for _, k := range want {
			if len(h[k]) != 1 {
				t.Fatalf("%s appears %d times", k, len(h[k]))
			}
		}
		if len(parts) != 2 || !bytes.HasPrefix(parts[0].Body, []byte("Hello ")) || !bytes.HasSuffix(parts[0].Body, []byte("\r\nbye\r\n")) {
			t.Fatalf("text part damaged: %q", parts[0].Body)
		}
	})
}

// FuzzParse: Parse never panics on a message file, and a file it accepts
// renders to wire-clean output (or a typed error).
func FuzzParse(f *testing.F) {
	f.Add(fuzzFile)
	f.Add("From: a@example.com\n\n{{range 3}}{{$.x}}{{end}}")
	f.Add("From: a@example.com\nSubject: {{field \"First Name\" | upper}}\n\n{{if .a}}{{else}}{{end}}")
	f.Add("From: a@example.com\n\n{{define \"a\"}}{{template \"a\"}}{{end}}")
	f.Add("From: a@example.com\r\nX:\r\n y\r\n\r\n{{printf \"%5s\" .x}}")
	f.Fuzz(func(t *testing.T, src string) {
		tp, err := Parse(Source{Text: []byte(src)}, Options{Now: fixedNow, MaxSize: 1 << 20})
		if err != nil {
			return
		}
		fields := map[string]string{}
		for _, r := range tp.refs {
			fields[r.name] = "v\r\n."
		}
		m, err := tp.Render(Recipient{Email: "r@example.com", Fields: fields}, "", nil)
		if err != nil {
			return
		}
		checkWire(t, m.Data)
	})
}
