package render

import (
	"errors"
	"strings"
	"testing"
)

const unsubLink = "https://mail.example.com/u/AQcqABCDEFGHIJKLMNOPQRSTUV"

func TestOneClickHeaders(t *testing.T) {
	src := Source{Text: []byte("From: news@example.com\nSubject: Hi\nList-Unsubscribe: <mailto:old@example.com>\nList-Unsubscribe-Post: nonsense\n\nHello\n")}
	tmpl, err := Parse(src, Options{Now: fixedNow, OneClick: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mailto, want string
	}{
		{"", "<" + unsubLink + ">"},
		{"unsubscribe@example.com", "<" + unsubLink + ">, <mailto:unsubscribe@example.com?subject=unsubscribe>"},
	} {
		m, err := tmpl.Render(Recipient{Email: "bob@example.org", Unsubscribe: unsubLink, UnsubscribeMailto: tc.mailto}, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		checkWire(t, m.Data)
		h, _ := parseMessage(t, m.Data)
		if got := h["List-Unsubscribe"]; len(got) != 1 || unfoldValue(got[0]) != tc.want {
			t.Errorf("List-Unsubscribe = %q, want [%q] (the template's own replaced)", got, tc.want)
		}
		if got := h["List-Unsubscribe-Post"]; len(got) != 1 || got[0] != "List-Unsubscribe=One-Click" {
			t.Errorf("List-Unsubscribe-Post = %q", got)
		}
	}
	// A check render (no link yet) writes neither header.
	m, err := tmpl.Render(Recipient{Email: "bob@example.org"}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(m.Data), "List-Unsubscribe") {
		t.Errorf("a render without a link has List-Unsubscribe:\n%s", m.Data)
	}
	// A link that would break out of its brackets is refused.
	if _, err := tmpl.Render(Recipient{Email: "bob@example.org", Unsubscribe: "https://x/>\r\nBcc: a@b"}, "", nil); !errors.Is(err, ErrBadRecipient) {
		t.Errorf("bad link: err = %v, want ErrBadRecipient", err)
	}
}

// Without one-click the template's own List-Unsubscribe is sent as written.
func TestListUnsubscribeOfTemplateKeptWithoutOneClick(t *testing.T) {
	src := Source{Text: []byte("From: news@example.com\nList-Unsubscribe: <mailto:old@example.com>\n\nHello\n")}
	tmpl, err := Parse(src, Options{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	m, err := tmpl.Render(Recipient{Email: "bob@example.org", Unsubscribe: unsubLink}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := parseMessage(t, m.Data)
	if got := h.Get("List-Unsubscribe"); got != "<mailto:old@example.com>" || h.Get("List-Unsubscribe-Post") != "" {
		t.Errorf("List-Unsubscribe = %q, Post = %q", got, h.Get("List-Unsubscribe-Post"))
	}
}

func TestUnsubscribeURLMergeField(t *testing.T) {
	src := Source{
		Text: []byte("From: news@example.com\nSubject: {{.name}}\n\nHi {{.name}}\nLeave: {{unsubscribe_url}}\nColumn: {{.unsubscribe_url}}\n"),
		HTML: []byte(`<p>Hi {{.name}}</p><p><a href="{{unsubscribe_url}}">Unsubscribe</a> {{printf "%s" unsubscribe_url}}</p>`),
	}
	tmpl, err := Parse(src, Options{Now: fixedNow, OneClick: true})
	if err != nil {
		t.Fatal(err)
	}
	link := unsubLink + "-_x"
	m, err := tmpl.Render(Recipient{Email: "bob@example.org", Unsubscribe: link,
		Fields: map[string]string{"name": "Bob", "unsubscribe_url": "a column"}}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, parts := parseMessage(t, m.Data)
	if len(parts) != 2 {
		t.Fatalf("%d parts", len(parts))
	}
	text, html := string(parts[0].Body), string(parts[1].Body)
	if !strings.Contains(text, "Leave: "+link+"\r\n") || !strings.Contains(text, "Column: a column") {
		t.Errorf("text body:\n%s", text)
	}
	if !strings.Contains(html, `<a href="`+link+`">`) || strings.Count(html, link) != 2 {
		t.Errorf("HTML body:\n%s", html)
	}
}

func TestUnsubscribeURLNeedsPublicURL(t *testing.T) {
	for _, src := range []Source{
		{Text: []byte("From: news@example.com\n\nHi\n\nLeave: {{unsubscribe_url}}\n")},
		{Text: []byte("From: news@example.com\n\n"), HTML: []byte("<p>\n<a href=\"{{unsubscribe_url}}\">x</a></p>")},
	} {
		_, err := Parse(src, Options{})
		var e *Error
		if !errors.Is(err, ErrNoUnsubscribeURL) || !errors.As(err, &e) || e.Line == 0 {
			t.Fatalf("err = %v, want ErrNoUnsubscribeURL with its line", err)
		}
		if !strings.Contains(err.Error(), "--public-url") {
			t.Errorf("the error does not say how to give a public URL: %v", err)
		}
	}
	_, err := Parse(Source{Text: []byte("From: news@example.com\n\n{{unsubscribe_url \"x\"}}\n")}, Options{OneClick: true})
	if err == nil {
		t.Error("unsubscribe_url with an argument parses")
	}
}

func unfoldValue(s string) string { return strings.Join(strings.Fields(s), " ") }
