package smtpclient

import (
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// lines joins script steps; unlike a raw string literal, each may hold
// any byte.
func lines(steps ...string) string { return strings.Join(steps, "\n") }

// unsafeRune reports a character a terminal may act on: C0 controls other
// than tab and line feed, DEL, C1 controls, bidirectional overrides.
func unsafeRune(r rune) bool {
	return r < 0x20 && r != '\t' && r != '\n' || r == 0x7f || r >= 0x80 && r <= 0x9f ||
		r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069
}

// checkSafe fails when s is not valid UTF-8 or holds a character a
// terminal may act on.
func checkSafe(t *testing.T, what, s string) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Errorf("%s %q is not valid UTF-8", what, s)
	}
	for _, r := range s {
		if unsafeRune(r) {
			t.Errorf("%s %q holds the control character %U", what, s, r)
		}
	}
}

func TestCleanText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Ok", "Ok"},
		{"tab\there", "tab\there"},
		{"two\nlines", "two\nlines"},
		{"caf\xe9", "café"}, // Latin-1
		{"Gr\xfc\xdfe aus M\xfcnchen", "Grüße aus München"}, // Latin-1
		{"café", "café"},     // UTF-8 stays
		{"\ufffd", "\ufffd"}, // a real U+FFFD stays
		{"\x1b[31mred\x1b[0m", "\ufffd[31mred\ufffd[0m"},
		{"bell\a", "bell\ufffd"},
		{"nul\x00", "nul\ufffd"},
		{"cr\rx", "cr\ufffdx"},
		{"del\x7f", "del\ufffd"},
		{"c1 \xc2\x9b2J", "c1 \ufffd2J"}, // U+009B in UTF-8
		{"c1 \x9b2J", "c1 \ufffd2J"},     // 0x9B as Latin-1 is C1 too
		{"bidi \u202eevil", "bidi \ufffdevil"},
	}
	for _, tt := range tests {
		if got := CleanText(tt.in); got != tt.want {
			t.Errorf("CleanText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// A server that greets and refuses in Latin-1, as old ones still do: the
// session goes on, and the texts arrive as valid UTF-8 with their accents.
func TestLatin1Replies(t *testing.T) {
	s := startScript(t, nil, lines(
		"S: 220 mx.test ESMTP Bienvenue \xe0 bord",
		"C: EHLO client.test",
		"S: 250-mx.test",
		"S: 250 8BITMIME",
		"C: MAIL FROM:<a@x.org>",
		"S: 250 Ok",
		"C: RCPT TO:<b@y.com>",
		"S: 550 5.1.1 Destinataire inconnu: bo\xeete \xe0 lettres introuvable",
		"C: QUIT",
		"S: 221 Au revoir"))
	c := mustDial(t, s, nil)
	if got, want := c.Greeting(), "mx.test ESMTP Bienvenue à bord"; got != want {
		t.Errorf("Greeting() = %q, want %q", got, want)
	}
	res, err := c.Send(ctx, "a@x.org", []string{"b@y.com"}, []byte("x"), SendOptions{})
	if err != nil {
		t.Fatalf("Send: %v, want only the recipient refused", err)
	}
	e := asError(t, res[0].Err)
	if e.Code != 550 || e.Enhanced != "5.1.1" || e.Text != "Destinataire inconnu: boîte à lettres introuvable" {
		t.Errorf("recipient refusal %d %s %q, want 550 5.1.1 with the Latin-1 text as UTF-8", e.Code, e.Enhanced, e.Text)
	}
	if !c.Usable() {
		t.Error("session unusable after a Latin-1 reply")
	}
	if err := c.Quit(ctx); err != nil {
		t.Errorf("Quit: %v", err)
	}
	s.done(t)
}

// Escape sequences and other control characters in a server's text never
// reach the caller, the error text or the transcript.
func TestReplyControlCharactersNeutralised(t *testing.T) {
	s := startScript(t, nil, lines(
		"S: 220 mx.test ESMTP \x1b[2J\x1b]0;pwned\a",
		"C: EHLO client.test",
		"S: 250-mx.test",
		"S: 250 8BITMIME",
		"C: MAIL FROM:<a@x.org>",
		"S: 550-5.7.1 \x1b[31mblocked\x1b[0m \x9b1;1H",
		"S: 550 5.7.1 see \xc2\x9b2J\x7f\u202eevil",
		"C: QUIT",
		"S: 221 Bye"))
	var mu sync.Mutex
	var transcript []string
	c := mustDial(t, s, func(cfg *Config) {
		cfg.Trace = func(l string) { mu.Lock(); transcript = append(transcript, l); mu.Unlock() }
	})
	checkSafe(t, "greeting", c.Greeting())
	_, err := c.Send(ctx, "a@x.org", []string{"b@y.com"}, []byte("x"), SendOptions{})
	e := asError(t, err)
	if e.Code != 550 || !strings.Contains(e.Text, "blocked") {
		t.Fatalf("got %v, want the 550 with its text", err)
	}
	checkSafe(t, "error text", e.Text)
	checkSafe(t, "error", err.Error())
	_ = c.Quit(ctx)
	s.done(t)
	mu.Lock()
	for _, l := range transcript {
		checkSafe(t, "transcript line", l)
	}
	mu.Unlock()
}
