package doctor

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"

	"mailout/internal/transport"
)

// fastTimeouts keep every diagnosis of the tests within seconds.
var fastTimeouts = Timeouts{DNS: 600 * time.Millisecond, Connect: 800 * time.Millisecond, Greeting: 1500 * time.Millisecond, SMTP: 15 * time.Second}

// want is what a user checks on a report: the verdict and the advice, in
// both languages.
type want struct {
	verdict string
	en, es  string // substrings of the advice
	suggest string // the suggested setting, when there is one
}

func checkReport(t *testing.T, r *Report, w want, secrets ...string) {
	t.Helper()
	if r.Verdict.ID != w.verdict {
		var b bytes.Buffer
		r.WriteText(&b, "en")
		t.Fatalf("verdict %q, want %q\n%s", r.Verdict.ID, w.verdict, b.String())
	}
	if r.OK() != (w.verdict == VerdictOK) {
		t.Errorf("OK() = %v for verdict %q", r.OK(), r.Verdict.ID)
	}
	if w.suggest != "" && r.Verdict.Suggest != w.suggest {
		t.Errorf("suggest %q, want %q", r.Verdict.Suggest, w.suggest)
	}
	for lang, sub := range map[string]string{"en": w.en, "es": w.es} {
		var b bytes.Buffer
		r.WriteText(&b, lang)
		text := b.String()
		if !strings.Contains(r.Advice(lang), sub) {
			t.Errorf("advice (%s) %q does not say %q", lang, r.Advice(lang), sub)
		}
		if !strings.Contains(text, r.Advice(lang)) || !strings.Contains(text, "("+w.verdict+")") {
			t.Errorf("text (%s) lacks the verdict or its advice:\n%s", lang, text)
		}
		if w.suggest != "" && !strings.Contains(text, w.suggest) {
			t.Errorf("text (%s) lacks the suggestion %q", lang, w.suggest)
		}
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("text (%s) shows the password", lang)
			}
		}
	}
	js := r.JSON()
	for _, s := range secrets {
		if bytes.Contains(js, []byte(s)) {
			t.Errorf("JSON shows the password")
		}
	}
	back, err := ParseReport(js)
	if err != nil || back.Verdict.ID != r.Verdict.ID || len(back.Findings) != len(r.Findings) {
		t.Errorf("JSON round trip: %v, %+v", err, back)
	}
}

// finding returns the first finding with id, or fails.
func finding(t *testing.T, r *Report, id string) Finding {
	t.Helper()
	for _, f := range r.Findings {
		if f.ID == id {
			return f
		}
	}
	t.Fatalf("no finding %q in %+v", id, r.Findings)
	return Finding{}
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

func relayAccount(t *testing.T, raw string) *transport.RelayAccount {
	t.Helper()
	acc, _, err := transport.ParseRelayURL(raw, func(string) string { return "" }, nil)
	if err != nil {
		t.Fatalf("ParseRelayURL(%q): %v", raw, err)
	}
	return acc
}
