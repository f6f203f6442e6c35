package transport

import (
	"encoding/base64"
	"strings"
	"testing"

	"mailout/internal/outcome"
)

// A pipelined refusal followed by a hang-up, the Outlook and Spamhaus
// way: the recorded result is the refusal, permanent, not a temporary
// protocol error.
func TestRelayRefusalThenHangUp(t *testing.T) {
	tests := []struct {
		name   string
		answer func(string) (string, bool)
		class  outcome.Class
		step   outcome.Step
	}{
		{"550 to MAIL", func(l string) (string, bool) {
			if strings.HasPrefix(l, "MAIL") {
				return "550 5.7.1 Service unavailable, Client host [127.0.0.1] blocked using Spamhaus", true
			}
			return okAnswer(l)
		}, outcome.SenderRejected, outcome.StepMail},
		{"5.1.1 to the only RCPT", func(l string) (string, bool) {
			if strings.HasPrefix(l, "RCPT") {
				return "550 5.1.1 <x@example.org>: Recipient address rejected: User unknown", true
			}
			return okAnswer(l)
		}, outcome.RecipientUnknown, outcome.StepRcpt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startRaw(t, []string{"PIPELINING"}, tt.answer)
			r := newRelay(t, nil, 1, account(t, "smtp+insecure://"+s.Addr))
			res := r.Deliver(t.Context(), msg("x@example.org"))
			if res.Class != tt.class || res.Kind != outcome.KindPermanent || res.Code != 550 || res.Step != tt.step {
				t.Errorf("%+v, want %s at %s, permanent, 550", res.Result, tt.class, tt.step)
			}
		})
	}
}

// A server that echoes the AUTH exchange in its 535: the result that is
// stored and printed holds neither the password nor what was sent.
func TestRelayAuthEchoNotStored(t *testing.T) {
	plain := base64.StdEncoding.EncodeToString([]byte("\x00user\x00" + testPass))
	s := startRaw(t, []string{"AUTH PLAIN"}, func(l string) (string, bool) {
		if strings.HasPrefix(l, "AUTH") {
			return "535 5.7.8 Authentication failed for " + strings.TrimPrefix(l, "AUTH PLAIN ") + " (" + testPass + ")", false
		}
		return okAnswer(l)
	})
	r := newRelay(t, nil, 1, account(t, "smtp+insecure://user:"+testPass+"@"+s.Addr))
	res := r.Deliver(t.Context(), msg("x@example.org"))
	if res.Class != outcome.AuthFailed || res.Code != 535 {
		t.Fatalf("%+v, want auth-failed 535", res.Result)
	}
	for _, secret := range []string{plain, strings.TrimRight(plain, "="), testPass} {
		if strings.Contains(res.Text, secret) || strings.Contains(res.Reason, secret) {
			t.Errorf("result %q / %q holds the secret %q", res.Text, res.Reason, secret)
		}
	}
}
