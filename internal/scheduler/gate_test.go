package scheduler

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mailout/internal/outcome"
	"mailout/internal/throttle"
)

// blockingGate is a Gate of one total slot whose "busy.example" slots are
// all held elsewhere until open is closed; it lets every start through.
type blockingGate struct {
	total chan struct{} // one token: the fleet's only total slot
	open  chan struct{} // closed: busy.example has a slot free again
}

func (g *blockingGate) Acquire(ctx context.Context, domain string) (func(), error) {
	switch domain {
	case "":
		select {
		case g.total <- struct{}{}:
			return func() { <-g.total }, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	case "busy.example":
		select {
		case <-g.open:
			return func() {}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return func() {}, nil
}

func (g *blockingGate) Wait(ctx context.Context, _ string) error { return ctx.Err() }
func (g *blockingGate) Allow(string) bool                        { return true }
func (g *blockingGate) SlowDown(string)                          {}

// A session waiting for a domain whose connections the fleet holds all
// does not hold one of the fleet's total connections meanwhile: the other
// domains' messages go out on it.
func TestGateWaitForBusyDomainHoldsNoTotalSlot(t *testing.T) {
	st, c := setup(t, 20, "busy.example", "free.example")
	var free atomic.Int64
	allFree := make(chan struct{})
	tr := newFake(func(to string, _ int) outcome.Result {
		if strings.HasSuffix(to, "@free.example") && free.Add(1) == 10 {
			close(allFree)
		}
		return delivered
	})
	cfg := config(st, c, tr, throttle.RealClock())
	cfg.Profile = throttle.Profile{Name: "t", Connections: 4, DomainConnections: 2}
	g := &blockingGate{total: make(chan struct{}, 1), open: make(chan struct{})}
	cfg.Gate = g

	done := make(chan error, 1)
	go func() {
		_, err := Run(t.Context(), cfg)
		done <- err
	}()
	// Every free.example message goes out while busy.example waits.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	select {
	case <-allFree:
	case <-ctx.Done():
		t.Fatalf("%d of 10 free.example messages sent while busy.example waited for a slot: a waiting session held the only total slot", free.Load())
	}
	close(g.open)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := counts(t, st, c).ByState["delivered"]; n != 20 {
		t.Fatalf("%d delivered, want 20", n)
	}
}

// recordingGate lets everything through and records the slow-downs.
type recordingGate struct {
	mu   sync.Mutex
	slow []string
}

func (g *recordingGate) Acquire(context.Context, string) (func(), error) { return func() {}, nil }
func (g *recordingGate) Wait(ctx context.Context, _ string) error        { return ctx.Err() }
func (g *recordingGate) Allow(string) bool                               { return true }
func (g *recordingGate) SlowDown(domain string) {
	g.mu.Lock()
	g.slow = append(g.slow, domain)
	g.mu.Unlock()
}

// A rate-limited answer slows its domain down through the Gate, for the
// whole fleet.
func TestGateIsToldOfARateLimitedAnswer(t *testing.T) {
	st, c := setup(t, 1, "busy.example")
	tr := newFake(func(_ string, n int) outcome.Result {
		if n == 1 {
			return outcome.Result{Class: outcome.RateLimited, Kind: outcome.KindTemporary, Code: 421,
				Enhanced: "4.7.28", Text: "slow down", Reason: "test"}
		}
		return delivered
	})
	cfg := config(st, c, tr, throttle.RealClock())
	g := &recordingGate{}
	cfg.Gate = g
	if _, err := Run(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.slow) != 1 || g.slow[0] != "busy.example" {
		t.Fatalf("the Gate was asked to slow down %q, want busy.example once", g.slow)
	}
}
