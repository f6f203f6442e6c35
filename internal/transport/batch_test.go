package transport

import (
	"fmt"
	"strings"
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
	reported := reports(t)
	res := r.DeliverBatch(t.Context(), msgs, reported.done)
	reported.check(res)
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
	for i, x := range r.DeliverBatch(t.Context(), msgs, nil) {
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

// A direct batch: domains sharing a mail server share one session; a
// domain whose preferred MX is dead still goes to its second; a domain that
// does not exist fails alone.
func TestDirectDeliverBatch(t *testing.T) {
	l := newLab(t)
	l.zone.MX("a.test", 10, "mx.shared.test").MX("b.test", 10, "mx.shared.test").A("mx.shared.test", "127.0.0.2").
		MX("c.test", 10, "mx1.c.test").MX("c.test", 20, "mx2.c.test").
		A("mx1.c.test", "127.0.0.3").A("mx2.c.test", "127.0.0.4")
	shared := l.server(t, "127.0.0.2", smtptest.Options{LocalPartFaults: true})
	c2 := l.server(t, "127.0.0.4", smtptest.Options{})
	d := l.direct(t, true)
	to := []string{"a1@a.test", "b1@b.test", "c1@c.test", "unknown@a.test", "x@nx.test", "b2@b.test", "c2@c.test"}
	want := []outcome.Class{outcome.Delivered, outcome.Delivered, outcome.Delivered, outcome.RecipientUnknown,
		outcome.DNSNXDomain, outcome.Delivered, outcome.Delivered}
	msgs := make([]*Message, len(to))
	for i, rc := range to {
		_, dom, _ := strings.Cut(rc, "@")
		msgs[i] = directMsg(rc, dom)
	}
	reported := reports(t)
	res := d.DeliverBatch(t.Context(), msgs, reported.done)
	reported.check(res)
	for i, x := range res {
		if x.Class != want[i] {
			t.Errorf("%s: %s (%s), want %s", to[i], x.Class, x.Text, want[i])
		}
	}
	if res[2].Via != "direct:mx2.c.test" || res[0].Via != "direct:mx.shared.test" {
		t.Errorf("via %q and %q", res[0].Via, res[2].Via)
	}
	if n := len(shared.Messages()); n != 3 {
		t.Errorf("shared MX got %d messages, want 3", n)
	}
	if n := shared.Connections(); n != 1 {
		t.Errorf("shared MX saw %d connections for one batch, want 1", n)
	}
	if n := len(c2.Messages()); n != 2 {
		t.Errorf("c.test's second MX got %d messages, want 2", n)
	}
}

// reported collects what DeliverBatch hands to done.
type reported struct {
	t   *testing.T
	got map[int][]Result
}

func reports(t *testing.T) *reported { return &reported{t: t, got: map[int][]Result{}} }

func (r *reported) done(i int, res Result) { r.got[i] = append(r.got[i], res) }

// check: done was called exactly once per message, with its final result.
func (r *reported) check(res []Result) {
	r.t.Helper()
	for i, x := range res {
		if len(r.got[i]) != 1 || r.got[i][0] != x {
			r.t.Errorf("message %d reported %d times (%v), want once with %+v", i, len(r.got[i]), r.got[i], x)
		}
	}
}

// A batch through an account that is refused goes on through the next one,
// and each message is reported once, with the second account's result.
func TestRelayDeliverBatchFailover(t *testing.T) {
	r, good := failoverRelay(t)
	msgs := make([]*Message, 5)
	for i := range msgs {
		msgs[i] = msg(fmt.Sprintf("r%d@example.org", i))
	}
	rep := reports(t)
	res := r.DeliverBatch(t.Context(), msgs, rep.done)
	rep.check(res)
	for i, x := range res {
		if x.Class != outcome.Delivered {
			t.Errorf("message %d: %s %s", i, x.Class, x.Text)
		}
	}
	if n := len(good.Messages()); n != 5 {
		t.Errorf("second account got %d messages, want 5", n)
	}
}
