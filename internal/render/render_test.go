package render

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
)

const plainFile = `From: Example Shop <news@example.com>
Subject: Hello {{.first_name}}
X-Campaign: spring

Dear {{.first_name}} from {{field "City"}},
see you soon.
`

var bob = Recipient{Email: "bob@example.com", Fields: map[string]string{"first_name": "Bob", "City": "Lyon"}}

func TestRenderStructure(t *testing.T) {
	html := []byte(`<p>Dear {{.first_name}} from {{field "City"}}</p><p><a href="https://shop.example.com/?u={{.email}}">Shop</a></p>`)
	att := Attachment{Name: "price list.pdf", Data: []byte("%PDF-1.4 not really")}
	tests := []struct {
		name      string
		src       Source
		wantTypes []string
		wantText  string
	}{
		{"text only", Source{Text: []byte(plainFile)}, []string{"text/plain"},
			"Dear Bob from Lyon,\r\nsee you soon.\r\n"},
		{"html only, text derived", Source{Text: []byte("From: a@example.com\nSubject: x\n\n"), HTML: html},
			[]string{"text/plain", "text/html"},
			"Dear Bob from Lyon\r\n\r\nShop (https://shop.example.com/?u=bob%40example.com)\r\n"},
		{"text and html", Source{Text: []byte(plainFile), HTML: html}, []string{"text/plain", "text/html"},
			"Dear Bob from Lyon,\r\nsee you soon.\r\n"},
		{"text and attachment", Source{Text: []byte(plainFile), Attachments: []Attachment{att}},
			[]string{"text/plain", "application/pdf"}, "Dear Bob from Lyon,\r\nsee you soon.\r\n"},
		{"html, text and attachment", Source{Text: []byte(plainFile), HTML: html, Attachments: []Attachment{att}},
			[]string{"text/plain", "text/html", "application/pdf"}, "Dear Bob from Lyon,\r\nsee you soon.\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tp := mustParse(t, tc.src, Options{})
			m := mustRender(t, tp, bob)
			h, parts := parseMessage(t, m.Data)
			var types []string
			for _, p := range parts {
				types = append(types, p.ContentType)
			}
			if !slices.Equal(types, tc.wantTypes) {
				t.Fatalf("parts %v, want %v", types, tc.wantTypes)
			}
			if got := string(parts[0].Body); got != tc.wantText {
				t.Errorf("text part %q, want %q", got, tc.wantText)
			}
			if parts[0].Charset != "utf-8" {
				t.Errorf("charset %q", parts[0].Charset)
			}
			if h.Get("MIME-Version") != "1.0" || h.Get("Date") != "Wed, 04 Mar 2026 05:06:07 +0100" {
				t.Errorf("MIME-Version %q Date %q", h.Get("MIME-Version"), h.Get("Date"))
			}
			if got := h.Get("Message-ID"); got != "<"+m.MessageID+">" || !strings.HasSuffix(m.MessageID, "@example.com") {
				t.Errorf("Message-ID header %q, MessageID %q", got, m.MessageID)
			}
			if to, err := h.AddressList("To"); err != nil || len(to) != 1 || to[0].Address != "bob@example.com" {
				t.Errorf("To %v %v", to, err)
			}
			if m.To != "bob@example.com" {
				t.Errorf("envelope To %q", m.To)
			}
			if len(parts) > 1 && parts[1].ContentType == "text/html" && !strings.Contains(string(parts[1].Body), "Dear Bob from Lyon") {
				t.Errorf("html part %q", parts[1].Body)
			}
		})
	}
}

func TestRenderHeaders(t *testing.T) {
	tp := mustParse(t, Source{Text: []byte(plainFile)}, Options{})
	m := mustRender(t, tp, bob)
	h, _ := parseMessage(t, m.Data)
	want := []string{"Date", "From", "To", "Subject", "X-Campaign", "Message-Id", "Mime-Version", "Content-Type", "Content-Transfer-Encoding"}
	if got := headerKeys(h); !sameSet(got, want) {
		t.Errorf("headers %v, want %v", got, want)
	}
	if got := h.Get("Subject"); got != "Hello Bob" {
		t.Errorf("Subject %q", got)
	}
	if got := h.Get("X-Campaign"); got != "spring" {
		t.Errorf("X-Campaign %q", got)
	}
	from, err := h.AddressList("From")
	if err != nil || from[0].Name != "Example Shop" || from[0].Address != "news@example.com" {
		t.Errorf("From %v %v", from, err)
	}
	if m.From != "news@example.com" {
		t.Errorf("envelope From %q", m.From)
	}
	if h.Get("Content-Transfer-Encoding") != "7bit" {
		t.Errorf("short ASCII body sent as %q", h.Get("Content-Transfer-Encoding"))
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestStructuralHeadersReplaced(t *testing.T) {
	src := "From: a@example.com\nDate: Mon, 1 Jan 2001 00:00:00 +0000\nMessage-ID: <old@x>\nMIME-Version: 1.0\nContent-Type: text/html; charset=latin1\nContent-Transfer-Encoding: 8bit\nSubject: s\n\nbody\n"
	tp := mustParse(t, Source{Text: []byte(src)}, Options{})
	m := mustRender(t, tp, bob)
	h, parts := parseMessage(t, m.Data)
	for _, k := range []string{"Date", "Message-Id", "Mime-Version", "Content-Type", "Content-Transfer-Encoding"} {
		if n := len(h[k]); n != 1 {
			t.Errorf("%s appears %d times", k, n)
		}
	}
	if h.Get("Message-ID") == "<old@x>" || parts[0].ContentType != "text/plain" {
		t.Errorf("file's structural headers kept: %q %q", h.Get("Message-ID"), parts[0].ContentType)
	}
}

func TestToHeaderFromTemplate(t *testing.T) {
	src := "From: a@example.com\nTo: {{.first_name}} {{.last_name}} <{{.email}}>\nCc: Office <office@bücher.example>\n\nx\n"
	tp := mustParse(t, Source{Text: []byte(src)}, Options{})
	r := Recipient{Email: "o.brien@example.com", Fields: map[string]string{"first_name": "Seán", "last_name": "O'Brien, Jr."}}
	h, _ := parseMessage(t, mustRender(t, tp, r).Data)
	to, err := h.AddressList("To")
	if err != nil || len(to) != 1 {
		t.Fatalf("To: %v %v (%q)", to, err, h.Get("To"))
	}
	if to[0].Name != "Seán O'Brien, Jr." || to[0].Address != "o.brien@example.com" {
		t.Errorf("To = %q <%s>", to[0].Name, to[0].Address)
	}
	if len(h["To"]) != 1 {
		t.Errorf("To appears %d times", len(h["To"]))
	}
	if got := h.Get("Cc"); !strings.Contains(got, "office@xn--bcher-kva.example") {
		t.Errorf("Cc not in A-label form: %q", got)
	}
}

// A merge value can never add or split a header.
func TestHeaderInjection(t *testing.T) {
	src := "From: Shop <shop@example.com>\nTo: {{.name}} <{{.email}}>\nReply-To: {{.name}} <help@example.com>\nSubject: Hi {{.name}}\nX-Ref: {{.name}}\n\nbody\n"
	tp := mustParse(t, Source{Text: []byte(src)}, Options{})
	want := []string{"Date", "From", "To", "Reply-To", "Subject", "X-Ref", "Message-Id", "Mime-Version", "Content-Type", "Content-Transfer-Encoding"}
	values := []string{
		"Hi\r\nBcc: victim@example.net",
		"Hi\nBcc: victim@example.net",
		"Hi\rBcc: victim@example.net",
		"x\r\n\r\ninjected body",
		"\r\n Bcc: folded@example.net",
		`"><x@example.net>, "Mallory" <m@example.net`,
		"a, b@example.net",
		"Müller \x00\x1b[31m",
		"\xff\xfe invalid utf-8",
		strings.Repeat("word ", 400),
	}
	for _, v := range values {
		t.Run(fmt.Sprintf("%.20q", v), func(t *testing.T) {
			m, err := tp.Render(Recipient{Email: "bob@example.com", Fields: map[string]string{"name": v}}, "", nil)
			if err != nil {
				return // refusing the recipient is a correct outcome too
			}
			h, parts := parseMessage(t, m.Data)
			if got := headerKeys(h); !sameSet(got, want) {
				t.Fatalf("headers %v, want %v\n%s", got, want, m.Data)
			}
			for _, k := range want {
				if len(h[k]) != 1 {
					t.Errorf("%s appears %d times", k, len(h[k]))
				}
			}
			if string(parts[0].Body) != "body\r\n" {
				t.Errorf("body changed: %q", parts[0].Body)
			}
			if to, err := h.AddressList("To"); err != nil || len(to) != 1 || to[0].Address != "bob@example.com" {
				t.Errorf("To: %v %v (%q)", to, err, h.Get("To"))
			}
			if rt, err := h.AddressList("Reply-To"); err != nil || len(rt) != 1 || rt[0].Address != "help@example.com" {
				t.Errorf("Reply-To: %v %v (%q)", rt, err, h.Get("Reply-To"))
			}
		})
	}
}

// Smuggling payloads in the body become plain CRLF lines.
func TestBodyLineEndings(t *testing.T) {
	tp := mustParse(t, Source{Text: []byte("From: a@example.com\r\nSubject: s\r\n\r\nbefore{{.v}}after\r\n")}, Options{})
	tests := []struct{ v, want string }{
		{"\r\n.\r\n", "before\r\n.\r\nafter\r\n"},
		{"\n.\n", "before\r\n.\r\nafter\r\n"},
		{"\r.\r", "before\r\n.\r\nafter\r\n"},
		{"\n.\r\n", "before\r\n.\r\nafter\r\n"},
		{"\r\n.\nMAIL FROM:<x@example.net>\r\n", "before\r\n.\r\nMAIL FROM:<x@example.net>\r\nafter\r\n"},
		{"\r\r\n", "before\r\n\r\nafter\r\n"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%q", tc.v), func(t *testing.T) {
			m := mustRender(t, tp, Recipient{Email: "b@example.com", Fields: map[string]string{"v": tc.v}})
			_, parts := parseMessage(t, m.Data)
			if got := string(parts[0].Body); got != tc.want {
				t.Errorf("body %q, want %q", got, tc.want)
			}
		})
	}
}

// A 20,000-character line and 8-bit text leave as
// 7-bit-clean quoted-printable that decodes to the same text.
func TestLongLinesAndEightBit(t *testing.T) {
	long := strings.Repeat("abcdefghij", 2000)
	tp := mustParse(t, Source{Text: []byte("From: a@example.com\n\n{{.v}}\n"), HTML: nil}, Options{})
	tph := mustParse(t, Source{Text: []byte("From: a@example.com\n\n{{.v}}\n"), HTML: []byte("<p>{{.v}}</p>")}, Options{})
	for _, tc := range []struct{ v, enc string }{
		{long, "quoted-printable"},
		{"Grüße aus Köln — ½ €", "quoted-printable"},
		{"line with = sign and --=_ inside", "quoted-printable"},
		{"trailing space \nnext\tline", "7bit"},
		{strings.Repeat("x", 78), "7bit"},
		{strings.Repeat("x", 79), "quoted-printable"},
	} {
		v := tc.v
		m := mustRender(t, tp, Recipient{Email: "b@example.com", Fields: map[string]string{"v": v}})
		_, parts := parseMessage(t, m.Data)
		if got, want := string(parts[0].Body), crlf(v+"\n"); got != want {
			t.Errorf("text part %.60q, want %.60q", got, want)
		}
		if parts[0].Encoding != tc.enc {
			t.Errorf("%.20q sent as %s, want %s", v, parts[0].Encoding, tc.enc)
		}
		for i, b := range m.Data {
			if b >= 0x80 {
				t.Fatalf("8-bit byte at %d", i)
			}
		}
		mh := mustRender(t, tph, Recipient{Email: "b@example.com", Fields: map[string]string{"v": v}})
		_, hparts := parseMessage(t, mh.Data)
		if !strings.Contains(string(hparts[1].Body), strings.ReplaceAll(v, "\n", "\r\n")[:10]) {
			t.Errorf("html part lost the value: %.80q", hparts[1].Body)
		}
	}
}

func TestNonASCIIHeaders(t *testing.T) {
	src := "From: Café Crème <news@example.com>\nTo: {{.name}} <{{.email}}>\nSubject: {{.subject}}\n\nx\n"
	tp := mustParse(t, Source{Text: []byte(src)}, Options{})
	subjects := []string{
		"Ihre Bestellung bei Müller",
		"Привет, это очень длинная тема письма, которая должна быть сложена в несколько строк",
		"日本語の件名テスト、とても長い件名です。とても長い件名です。とても長い件名です。",
		"ASCII only but quite long: " + strings.Repeat("lorem ipsum ", 20),
	}
	for _, s := range subjects {
		m := mustRender(t, tp, Recipient{Email: "b@example.com", Fields: map[string]string{"name": "Zoë Ünal", "subject": s}})
		h, _ := parseMessage(t, m.Data)
		if got := decodeHeader(t, h.Get("Subject")); got != strings.TrimSpace(s) {
			t.Errorf("Subject %q, want %q", got, s)
		}
		to, err := h.AddressList("To")
		if err != nil || to[0].Name != "Zoë Ünal" {
			t.Errorf("To %v %v", to, err)
		}
		from, err := h.AddressList("From")
		if err != nil || from[0].Name != "Café Crème" {
			t.Errorf("From %v %v", from, err)
		}
		head, _, _ := bytes.Cut(m.Data, []byte("\r\n\r\n"))
		for _, l := range bytes.Split(head, []byte("\r\n")) {
			if len(l) > 78 {
				t.Errorf("header line of %d characters: %q", len(l), l)
			}
		}
	}
}

func TestAttachmentsRoundTrip(t *testing.T) {
	bin := make([]byte, 100_003)
	rand.Read(bin)
	atts := []Attachment{
		{Name: "data.bin", ContentType: "application/octet-stream", Data: bin},
		{Name: "résumé été.pdf", Data: []byte("%PDF-1.7\n")},
		{Name: "../../etc/notes.txt", Data: []byte("plain\nnotes\n")},
		{Name: "noext", Data: []byte("<html><body>hi</body></html>")},
		{Name: "empty.txt", Data: nil},
	}
	tp := mustParse(t, Source{Text: []byte(plainFile), Attachments: atts}, Options{})
	_, parts := parseMessage(t, mustRender(t, tp, bob).Data)
	want := []struct{ name, ctype string }{
		{"data.bin", "application/octet-stream"},
		{"résumé été.pdf", "application/pdf"},
		{"notes.txt", "text/plain"},
		{"noext", "text/html"},
		{"empty.txt", "text/plain"},
	}
	if len(parts) != 1+len(atts) {
		t.Fatalf("%d parts", len(parts))
	}
	for i, w := range want {
		p := parts[i+1]
		if p.Filename != w.name || p.ContentType != w.ctype || p.Encoding != "base64" {
			t.Errorf("attachment %d: %q %q %q, want %q %q base64", i, p.Filename, p.ContentType, p.Encoding, w.name, w.ctype)
		}
		if !bytes.Equal(p.Body, atts[i].Data) {
			t.Errorf("attachment %q: %d bytes back, %d sent, not equal", w.name, len(p.Body), len(atts[i].Data))
		}
	}
}

// Merge values are escaped in the HTML part, raw in text.
func TestHTMLEscaping(t *testing.T) {
	tp := mustParse(t, Source{
		Text: []byte("From: a@example.com\n\nHi {{.name}}\n"),
		HTML: []byte(`<p title="{{.name}}">Hi {{.name}}</p><a href="https://example.com/p?n={{.name}}">x</a>`),
	}, Options{})
	v := `<script>alert(1)</script>"><img src=x onerror=alert(2)>`
	_, parts := parseMessage(t, mustRender(t, tp, Recipient{Email: "b@example.com", Fields: map[string]string{"name": v}}).Data)
	if got := string(parts[0].Body); got != "Hi "+v+"\r\n" {
		t.Errorf("text part %q", got)
	}
	h := string(parts[1].Body)
	if strings.Contains(h, "<script>") || strings.Contains(h, "<img") || strings.Contains(h, `">`+"<") {
		t.Errorf("html part not escaped: %s", h)
	}
}

func TestFieldLookup(t *testing.T) {
	fields := map[string]string{"first_name": "Ann", "First Name": "Ann B", "City": "Oslo", "ZIP": "0150", "x": "  "}
	tests := []struct{ tmpl, want string }{
		{`{{.first_name}}`, "Ann"},
		{`{{field "First Name"}}`, "Ann B"},
		{`{{field "City"}}`, "Oslo"},
		{`{{.city}}`, "Oslo"},
		{`{{.zip}} {{field "zip"}}`, "0150 0150"},
		{`{{.email}} {{field "Email"}}`, "ann@example.com ann@example.com"},
		{`{{.first_name | upper}} {{lower .ZIP}}`, "ANN 0150"},
		{`{{title "hello wORLD"}}`, "Hello World"},
		{`{{default "friend" .x}} {{.x | default "you"}} {{default "-" .City}}`, "friend you Oslo"},
		{`[{{trim .x}}]`, "[]"},
		{`{{if eq .City "Oslo"}}norsk{{else}}other{{end}}`, "norsk"},
		{`{{with $c := field "City"}}{{$c}}{{end}}`, "Oslo"},
		{`{{range 3}}{{$.City}}{{end}}`, "OsloOsloOslo"},
		{`{{printf "%-6s|" .City}}`, "Oslo  |"},
		{`{{urlquery "a b&c"}}`, "a+b%26c"},
	}
	for _, tc := range tests {
		t.Run(tc.tmpl, func(t *testing.T) {
			tp := mustParse(t, Source{Text: []byte("From: a@example.com\n\n" + tc.tmpl)}, Options{})
			_, parts := parseMessage(t, mustRender(t, tp, Recipient{Email: "ann@example.com", Fields: fields}).Data)
			if got := strings.TrimSuffix(string(parts[0].Body), "\r\n"); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestMissingField(t *testing.T) {
	tp := mustParse(t, Source{Text: []byte("From: a@example.com\nSubject: hi\n\nline 4\n{{.first_name}}\n{{field \"Postcode\"}}\n")}, Options{})
	tests := []struct {
		fields   map[string]string
		wantLine int
		wantName string
	}{
		{map[string]string{"Postcode": "1"}, 5, "first_name"},
		{map[string]string{"first_name": "a"}, 6, "Postcode"},
		{map[string]string{"first_name": "a", "postcode": "1", "POSTCODE": "2"}, 6, "several columns"},
	}
	for _, tc := range tests {
		_, err := tp.Render(Recipient{Email: "b@example.com", Fields: tc.fields}, "", nil)
		var e *Error
		if !errors.As(err, &e) || !errors.Is(err, ErrMissingField) || e.Line != tc.wantLine || !strings.Contains(e.Msg, tc.wantName) {
			t.Errorf("fields %v: err %v, want line %d naming %q", tc.fields, err, tc.wantLine, tc.wantName)
		}
		if err != nil && !strings.HasPrefix(err.Error(), fmt.Sprintf("message.txt:%d: ", tc.wantLine)) {
			t.Errorf("error %q does not start with file:line", err)
		}
	}
}

// The columns named in a missing-field error are the recipient's, each
// once: the address column is always there, first.
func TestMissingFieldListsColumnsOnce(t *testing.T) {
	tp := mustParse(t, Source{Text: []byte("From: a@example.com\nSubject: hi\n\n{{.city}}\n")}, Options{})
	_, err := tp.Render(Recipient{Email: "b@example.com", Fields: map[string]string{"email": "b@example.com", "name": "B"}}, "", nil)
	if err == nil || !strings.Contains(err.Error(), "(columns: email, name)") {
		t.Errorf("err %v, want the columns email, name listed once each", err)
	}
}

func TestMessageID(t *testing.T) {
	tp := mustParse(t, Source{Text: []byte(plainFile)}, Options{MessageIDDomain: "mail.bücher.example"})
	a, b := mustRender(t, tp, bob), mustRender(t, tp, bob)
	if a.MessageID == b.MessageID || !strings.HasSuffix(a.MessageID, "@mail.xn--bcher-kva.example") {
		t.Errorf("generated %q and %q", a.MessageID, b.MessageID)
	}
	m, err := tp.Render(bob, a.MessageID, nil)
	if err != nil || m.MessageID != a.MessageID || !bytes.Contains(m.Data, []byte("Message-ID: <"+a.MessageID+">\r\n")) {
		t.Errorf("resend did not keep the Message-ID: %v", err)
	}
	for _, bad := range []string{"no-at-sign", "a@b\r\nBcc: x@y", "<a@b>", "a b@c", "a@b@c"} {
		if _, err := tp.Render(bob, bad, nil); !errors.Is(err, ErrBadRecipient) {
			t.Errorf("Message-ID %q: err %v", bad, err)
		}
	}
}

func TestBadRecipientAddress(t *testing.T) {
	tp := mustParse(t, Source{Text: []byte(plainFile)}, Options{})
	for _, bad := range []string{"", "bob", "a@b>\r\nRCPT TO:<x@y", "\"a\r\nDATA\"@example.com", "<bob@example.com>", "Bob <bob@example.com>", strings.Repeat("a", 250) + "@example.com"} {
		if _, err := tp.Render(Recipient{Email: bad, Fields: bob.Fields}, "", nil); !errors.Is(err, ErrBadRecipient) {
			t.Errorf("%.30q: err %v", bad, err)
		}
	}
	if _, err := tp.Render(Recipient{Email: `"john doe"@example.com`, Fields: bob.Fields}, "", nil); err != nil {
		t.Errorf("quoted local part refused: %v", err)
	}
}

func TestEnvelopeFrom(t *testing.T) {
	for _, src := range []string{
		"From: Shop <news@example.com>\nX-Mailout-Envelope-From: bounces@example.com\n\nx\n",
		"X-Mailout-Envelope-From: <bounces@example.com>\nFrom: Shop <news@example.com>\n\nx\n",
	} {
		tp := mustParse(t, Source{Text: []byte(src)}, Options{})
		m := mustRender(t, tp, bob)
		if m.From != "bounces@example.com" || bytes.Contains(bytes.ToLower(m.Data), []byte("x-mailout")) {
			t.Errorf("envelope From %q; data:\n%s", m.From, m.Data)
		}
	}
}

// The rendered output is capped at Options.MaxSize.
func TestMaxSize(t *testing.T) {
	tp := mustParse(t, Source{Text: []byte("From: a@example.com\n\n{{range 1000}}{{$.v}}{{end}}\n")}, Options{MaxSize: 64 << 10})
	_, err := tp.Render(Recipient{Email: "b@example.com", Fields: map[string]string{"v": strings.Repeat("x", 1000)}}, "", nil)
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("err %v, want ErrTooLarge", err)
	}
	if _, err := tp.Render(Recipient{Email: "b@example.com", Fields: map[string]string{"v": "x"}}, "", nil); err != nil {
		t.Errorf("small render: %v", err)
	}
}

func TestBufferReuseAndConcurrency(t *testing.T) {
	tp := mustParse(t, Source{Text: []byte(plainFile), HTML: []byte("<b>{{.first_name}}</b>")}, Options{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf bytes.Buffer
			for i := range 50 {
				name := fmt.Sprintf("n%d-%d", g, i)
				m, err := tp.Render(Recipient{Email: "x@example.com", Fields: map[string]string{"first_name": name, "City": "c"}}, "", &buf)
				if err != nil {
					t.Error(err)
					return
				}
				if !bytes.Contains(m.Data, []byte("Subject: Hello "+name+"\r\n")) {
					t.Errorf("message for %s has another subject", name)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestExamples(t *testing.T) {
	text, err := os.ReadFile("../../examples/message.txt")
	if err != nil {
		t.Fatal(err)
	}
	html, err := os.ReadFile("../../examples/message.html")
	if err != nil {
		t.Fatal(err)
	}
	cols := []string{"email", "first_name", "last_name", "City"}
	for _, src := range []Source{{Text: text}, {Text: text, HTML: html}} {
		tp := mustParse(t, src, Options{Columns: cols})
		m := mustRender(t, tp, Recipient{Email: "ana@example.com", Fields: map[string]string{"email": "ana@example.com", "first_name": "Ana", "last_name": "Pérez", "City": "Sevilla"}})
		h, parts := parseMessage(t, m.Data)
		if !strings.Contains(decodeHeader(t, h.Get("Subject")), "Ana") || !strings.Contains(string(parts[0].Body), "Sevilla") {
			t.Errorf("example not personalised:\n%s", m.Data)
		}
	}
}

func TestEmptyAddressHeaders(t *testing.T) {
	tp := mustParse(t, Source{Text: []byte("From: a@example.com\nTo: {{.to}}\nCc: {{.cc}}\n\n{{index . \"Cc\"}}x\n")}, Options{})
	m := mustRender(t, tp, Recipient{Email: "b@example.com", Fields: map[string]string{"to": " ", "cc": ""}})
	h, parts := parseMessage(t, m.Data)
	if _, ok := h["Cc"]; ok || h.Get("To") != "b@example.com" {
		t.Errorf("Cc %q To %q", h.Get("Cc"), h.Get("To"))
	}
	if string(parts[0].Body) != "x\r\n" {
		t.Errorf("body %q", parts[0].Body)
	}
	if _, err := tp.Render(Recipient{Email: "b@example.com", Fields: map[string]string{"to": ""}}, "", nil); !errors.Is(err, ErrMissingField) {
		t.Errorf("missing cc column: %v", err)
	}
}
