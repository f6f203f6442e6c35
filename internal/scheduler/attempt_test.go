package scheduler

import (
	"context"
	"sync"
	"testing"
	"time"

	"mailout/internal/outcome"
	"mailout/internal/queue"
	"mailout/internal/throttle"
	"mailout/internal/transport"
)

// slowTransport answers like fakeTransport, the recipient slow after a
// delay, as a server slow to give its final reply.
type slowTransport struct {
	*fakeTransport
	slow  string
	delay time.Duration
}

func (s *slowTransport) Deliver(ctx context.Context, m *transport.Message) transport.Result {
	if m.To == s.slow {
		time.Sleep(s.delay) // the server's time to answer
	}
	return s.fakeTransport.Deliver(ctx, m)
}

// Every attempt is reported with its class, the state it leaves the
// recipient in, the way it went and the transport's time to answer.
func TestAttemptReportsOutcomeAndLatency(t *testing.T) {
	st, c := setup(t, 4)
	tr := &slowTransport{slow: "r2@example.org", delay: 50 * time.Millisecond, fakeTransport: newFake(func(to string, _ int) outcome.Result {
		if to == "r1@example.org" {
			return unknown
		}
		return delivered
	})}
	var (
		mu  sync.Mutex
		got []Attempt
	)
	cfg := config(st, c, tr, throttle.NewAutoClock(time.Now()))
	cfg.Attempt = func(a Attempt) {
		mu.Lock()
		got = append(got, a)
		mu.Unlock()
	}
	if _, err := Run(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 4 {
		t.Fatalf("%d attempts reported, want 4: %+v", len(got), got)
	}
	byClass := map[outcome.Class]int{}
	slow := 0
	for _, a := range got {
		byClass[a.Class]++
		if a.Via != "fake" {
			t.Errorf("via %q", a.Via)
		}
		if a.Class == outcome.RecipientUnknown && a.State != queue.Failed || a.Class == outcome.Delivered && a.State != queue.Delivered {
			t.Errorf("attempt %+v: wrong state", a)
		}
		if a.Latency >= 50*time.Millisecond {
			slow++
		}
	}
	if byClass[outcome.Delivered] != 3 || byClass[outcome.RecipientUnknown] != 1 || slow != 1 {
		t.Fatalf("by class %v, %d slow attempts (want 1): %+v", byClass, slow, got)
	}
}
