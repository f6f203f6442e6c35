package transport

import (
	"fmt"
	"testing"

	"mailout/internal/outcome"
	"mailout/internal/smtptest"
)

// endAtMail makes a server end the session at the MAIL commands for which
// at(count) is true: with a 421 (RFC 5321 §3.8) or by closing it.
func endAtMail(kind string, at func(count int) bool) func(smtptest.Event) *smtptest.Fault {
	return func(e smtptest.Event) *smtptest.Fault {
		if e.Step != "mail" || !at(e.Count) {
			return nil
		}
		if kind == "421" {
			return &smtptest.Fault{Code: 421, Enhanced: "4.7.0", Text: "Too many messages on this connection"}
		}
		return &smtptest.Fault{Drop: true}
	}
}

// deliverAll sends msgs as the scheduler does, one by one or as a batch,
// and checks that each message was reported once.
func deliverAll(t *testing.T, tr Batcher, batch bool, msgs []*Message) []Result {
	t.Helper()
	if !batch {
		out := make([]Result, len(msgs))
		for i, m := range msgs {
			out[i] = tr.Deliver(t.Context(), m)
		}
		return out
	}
	rep := reports(t)
	out := tr.DeliverBatch(t.Context(), msgs, rep.done)
	rep.check(out)
	return out
}

// received counts the messages a server took, by recipient.
func received(s *smtptest.Server) map[string]int {
	got := map[string]int{}
	for _, m := range s.Messages() {
		got[m.Rcpts[0]]++
	}
	return got
}

// A 421 or a hang-up at the MAIL of the second transaction on a session:
// nothing of that message was sent, so it goes at once on a new session
// and is delivered in the same run, once. It is deferred only when the new
// session fails too.
func TestSessionEndedAtMailGoesOnFreshSession(t *testing.T) {
	type route struct {
		name string
		make func(t *testing.T, faults func(smtptest.Event) *smtptest.Fault) (Batcher, *smtptest.Server, func(to string) *Message)
	}
	routes := []route{
		{"relay", func(t *testing.T, faults func(smtptest.Event) *smtptest.Fault) (Batcher, *smtptest.Server, func(string) *Message) {
			srv := smtptest.Start(t, smtptest.Options{Faults: faults})
			return newRelay(t, nil, 1, account(t, "smtp+insecure://"+srv.Addr)), srv, msg
		}},
		{"direct", func(t *testing.T, faults func(smtptest.Event) *smtptest.Fault) (Batcher, *smtptest.Server, func(string) *Message) {
			l := newLab(t)
			l.zone.MX("fresh.test", 10, "mx.fresh.test").A("mx.fresh.test", "127.0.0.9")
			srv := l.server(t, "127.0.0.9", smtptest.Options{Faults: faults})
			return l.direct(t, true), srv, func(to string) *Message { return directMsg(to, "fresh.test") }
		}},
	}
	for _, rt := range routes {
		for _, kind := range []string{"421", "close"} {
			for _, batch := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%s/batch=%v", rt.name, kind, batch), func(t *testing.T) {
					tr, srv, mk := rt.make(t, endAtMail(kind, func(n int) bool { return n == 2 }))
					msgs := []*Message{mk("m1@fresh.test"), mk("m2@fresh.test"), mk("m3@fresh.test")}
					res := deliverAll(t, tr, batch, msgs)
					for i, r := range res {
						if r.Class != outcome.Delivered {
							t.Errorf("m%d: %s %d %s, want delivered in this run", i+1, r.Class, r.Code, r.Text)
						}
					}
					got := received(srv)
					for _, m := range msgs {
						if got[m.To] != 1 {
							t.Errorf("%s received %d times, want once", m.To, got[m.To])
						}
					}
					if n := srv.Connections(); n != 2 {
						t.Errorf("%d connections, want 2: the one that ended and a fresh one", n)
					}
				})
			}
		}
		t.Run(rt.name+"/fresh session fails too", func(t *testing.T) {
			tr, srv, mk := rt.make(t, endAtMail("421", func(n int) bool { return n >= 2 }))
			res := deliverAll(t, tr, true, []*Message{mk("m1@fresh.test"), mk("m2@fresh.test")})
			if res[0].Class != outcome.Delivered {
				t.Errorf("m1: %s, want delivered", res[0].Class)
			}
			if res[1].Code != 421 || res[1].Kind != outcome.KindTemporary {
				t.Errorf("m2: %s %d, want deferred with the 421", res[1].Class, res[1].Code)
			}
			if n := srv.Connections(); n != 2 {
				t.Errorf("%d connections, want 2: one retry on a fresh session, no more", n)
			}
		})
	}
}
