package transport

import (
	"fmt"
	"testing"

	"mailout/internal/outcome"
	"mailout/internal/smtptest"
)

// A batch goes out on one session with each message's own outcome, and
// the messages behind a "ratelimit" (421, the server hangs up) go on a new
// session: nothing is lost, nothing sent twice.
func TestRelayDeliverBatch(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{LocalPartFaults: true})
	r := newRelay(t, nil, 1, account(t, "smtp+insecure://"+srv.Addr))
	rcpts := []string{"a@example.org", "unknown@example.org", "b@example.org", "reject@example.org",
		"c@example.org", "ratelimit@example.org", "d@example.org", "e@example.org"}
	want := []outcome.Class{outcome.Delivered, outcome.RecipientUnknown, outcome.Delivered, outcome.ContentRejected,
		outcome.Delivered, outcome.RateLimited, outcome.Delivered, outcome.Delivered}
	msgs := make([]*Message, len(rcpts))
	for i, to := range rcpts {
		msgs[i] = msg(to)
	}
	res := r.DeliverBatch(t.Context(), msgs)
	for i, x := range res {
		if x.Class != want[i] {
			t.Errorf("%s: %s (%d %s), want %s", rcpts[i], x.Class, x.Code, x.Text, want[i])
		}
		if x.Via != "relay:127.0.0.1" {
			t.Errorf("%s: via %q", rcpts[i], x.Via)
		}
	}
	got := map[string]int{}
	for _, m := range srv.Messages() {
		got[m.Rcpts[0]]++
	}
	for _, to := range []string{"a@example.org", "b@example.org", "c@example.org", "d@example.org", "e@example.org"} {
		if got[to] != 1 {
			t.Errorf("%s received %d times, want once", to, got[to])
		}
	}
	if len(got) != 5 {
		t.Errorf("server holds messages for %v, want the 5 accepted ones only", got)
	}
	// One session up to the 421, one after it.
	if n := srv.Connections(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

// PerConnection caps the messages of one session inside a batch too.
func TestRelayDeliverBatchPerConnection(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	r := newRelay(t, nil, 1, account(t, "smtp+insecure://"+srv.Addr))
	r.cfg.PerConnection = 3
	msgs := make([]*Message, 8)
	for i := range msgs {
		msgs[i] = msg(fmt.Sprintf("r%d@example.org", i))
	}
	for i, x := range r.DeliverBatch(t.Context(), msgs) {
		if x.Class != outcome.Delivered {
			t.Errorf("message %d: %s %s", i, x.Class, x.Text)
		}
	}
	if n := len(srv.Messages()); n != 8 {
		t.Errorf("%d messages received, want 8", n)
	}
	if n := srv.Connections(); n != 3 {
		t.Errorf("%d connections for 8 messages at 3 per connection, want 3", n)
	}
}
