package transport

import (
	"strings"
	"testing"

	"mailout/internal/outcome"
)

// A UTF-8 local part in the envelope needs SMTPUTF8 (RFC 6531 §3.4),
// whatever the Message says: against a server that does not offer it, the
// message fails for good with a clear reason and nothing of it is sent.
func TestUTF8EnvelopeNeedsSMTPUTF8(t *testing.T) {
	s := startRaw(t, []string{"PIPELINING", "8BITMIME"}, okAnswer)
	r := newRelay(t, nil, 1, account(t, "smtp+insecure://"+s.Addr))
	m := msg("δοκιμή@example.org")
	m.SMTPUTF8 = false
	res := r.Deliver(t.Context(), m)
	if res.Kind != outcome.KindPermanent || res.Code != 553 || res.Enhanced != "5.6.7" || !strings.Contains(res.Text, "SMTPUTF8") {
		t.Errorf("%+v, want a permanent 553 5.6.7 naming SMTPUTF8", res.Result)
	}
	for _, l := range s.lines() {
		if strings.HasPrefix(l, "MAIL") || strings.HasPrefix(l, "RCPT") {
			t.Errorf("the client sent %q to a server without SMTPUTF8", l)
		}
	}
}
