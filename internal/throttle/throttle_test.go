package throttle

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// startsWithin counts the messages to domain(i) that start at or before
// t0+window on an auto-advancing clock, and returns their offsets.
func startsWithin(t *testing.T, l *Limiter, clk *FakeClock, window time.Duration, domain func(i int) string) []time.Duration {
	t.Helper()
	ctx := testCtx(t)
	start := clk.Now()
	var at []time.Duration
	for i := 0; ; i++ {
		if err := l.Wait(ctx, domain(i)); err != nil {
			t.Fatal(err)
		}
		off := clk.Now().Sub(start)
		if off > window {
			return at
		}
		at = append(at, off)
	}
}

func oneDomain(int) string { return "example.org" }

func many(i int) string { return fmt.Sprintf("d%d.example", i) }

func TestLookup(t *testing.T) {
	for _, name := range Names() {
		p, err := Lookup(strings.ToUpper(name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if p.Name != name {
			t.Errorf("name %q", p.Name)
		}
		if err := p.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	slow, _ := Lookup("slow")
	if slow.Connections != 1 || slow.Rate != 1 || slow.Pause <= 0 || slow.PauseEvery <= 0 {
		t.Errorf("slow is not 1 connection, 1 msg/s with pauses: %+v", slow)
	}
	_, err := Lookup("turbo")
	if !errors.Is(err, ErrUnknownProfile) || !strings.Contains(err.Error(), "slow, normal, fast") {
		t.Errorf("unknown profile error: %v", err)
	}
}

func TestValidate(t *testing.T) {
	ok := Profile{Name: "custom", Connections: 4, Rate: 2, DomainConnections: 2, DomainRate: 30}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := map[string]func(p *Profile){
		"no connections":          func(p *Profile) { p.Connections = 0 },
		"negative rate":           func(p *Profile) { p.Rate = -1 },
		"infinite rate":           func(p *Profile) { p.Rate = math.Inf(1) },
		"negative per conn":       func(p *Profile) { p.PerConnection = -1 },
		"pause without every":     func(p *Profile) { p.Pause = time.Second },
		"every without pause":     func(p *Profile) { p.PauseEvery = 10 },
		"domain conns over total": func(p *Profile) { p.DomainConnections = 5 },
		"negative domain rate":    func(p *Profile) { p.DomainRate = -3 },
	}
	for name, f := range bad {
		p := ok
		f(&p)
		if p.Validate() == nil {
			t.Errorf("%s: accepted %+v", name, p)
		}
	}
}

func TestGlobalRate(t *testing.T) {
	clk := NewAutoClock(t0)
	l := New(Profile{Connections: 1, Rate: 10}, clk)
	n := len(startsWithin(t, l, clk, 5*time.Second, many))
	if n > 51 || n < 50 {
		t.Errorf("%d starts in 5 s at 10/s, want 50..51", n)
	}
}

func TestSlowProfile(t *testing.T) {
	slow, _ := Lookup("slow")

	// Many domains: the global 1 msg/s and the pause after 50 messages.
	clk := NewAutoClock(t0)
	at := startsWithin(t, New(slow, clk), clk, 100*time.Second, many)
	if at[49] != 49*time.Second || at[50] != 49*time.Second+slow.Pause {
		t.Errorf("50th start at %v, 51st at %v; want 49s and 49s+%v", at[49], at[50], slow.Pause)
	}
	for i := 1; i < len(at); i++ {
		if gap := at[i] - at[i-1]; gap < time.Second {
			t.Fatalf("starts %d and %d only %v apart", i-1, i, gap)
		}
	}

	// One domain: its own 20/min.
	clk = NewAutoClock(t0)
	n := len(startsWithin(t, New(slow, clk), clk, time.Minute, oneDomain))
	if n != 21 {
		t.Errorf("%d starts to one domain in a minute, want 21 (20/min)", n)
	}
}

func TestPauseEvery(t *testing.T) {
	clk := NewAutoClock(t0)
	l := New(Profile{Connections: 1, PauseEvery: 3, Pause: 10 * time.Second}, clk)
	at := startsWithin(t, l, clk, 25*time.Second, many)
	want := []time.Duration{0, 0, 0, 10 * time.Second, 10 * time.Second, 10 * time.Second, 20 * time.Second, 20 * time.Second, 20 * time.Second}
	if fmt.Sprint(at) != fmt.Sprint(want) {
		t.Errorf("starts at %v, want %v", at, want)
	}
}

func TestSlowDownIsPerDomain(t *testing.T) {
	p := Profile{Connections: 4, DomainRate: 60}
	clk := NewAutoClock(t0)
	l := New(p, clk)
	l.SlowDown("slow.example")
	if got := l.DomainRate("slow.example"); got != 30 {
		t.Fatalf("rate after SlowDown %v, want 30", got)
	}
	// The other domain keeps its 60/min: 61 starts in a minute, as without
	// any slow-down.
	if n := len(startsWithin(t, l, clk, time.Minute, func(int) string { return "other.example" })); n != 61 {
		t.Errorf("other domain: %d starts in a minute, want 61", n)
	}
	// The slowed domain gets 30/min during the cool-down.
	if n := len(startsWithin(t, l, clk, time.Minute, func(int) string { return "slow.example" })); n < 30 || n > 31 {
		t.Errorf("slowed domain: %d starts in a minute, want 30..31", n)
	}
	if got := l.DomainRate("other.example"); got != 60 {
		t.Errorf("other domain rate %v", got)
	}
}

func TestSlowDownFloorAndRecovery(t *testing.T) {
	clk := NewFakeClock(t0)
	l := New(Profile{Connections: 1, DomainRate: 60}, clk)
	l.SlowDown("a.example")
	l.SlowDown("a.example")
	if got := l.DomainRate("a.example"); got != 15 {
		t.Fatalf("after two slow-downs %v, want 15", got)
	}
	clk.Advance(CoolDown - time.Second)
	if got := l.DomainRate("a.example"); got != 15 {
		t.Errorf("recovered before the cool-down ended: %v", got)
	}
	clk.Advance(time.Second)
	if got := l.DomainRate("a.example"); got != 30 {
		t.Errorf("first recovery step %v, want 30", got)
	}
	clk.Advance(CoolDown)
	if got := l.DomainRate("a.example"); got != 60 {
		t.Errorf("second recovery step %v, want 60 (the profile's)", got)
	}
	clk.Advance(10 * CoolDown)
	if got := l.DomainRate("a.example"); got != 60 {
		t.Errorf("recovered past the profile's rate: %v", got)
	}
	for i := 0; i < 20; i++ {
		l.SlowDown("a.example")
	}
	if got := l.DomainRate("a.example"); got != 1 {
		t.Errorf("floor %v, want 1/min", got)
	}
}

func TestSlowDownUnlimitedDomain(t *testing.T) {
	clk := NewFakeClock(t0)
	l := New(Profile{Connections: 1, Rate: 2}, clk)
	if got := l.DomainRate("x.example"); got != 0 {
		t.Fatalf("unlimited domain rate %v", got)
	}
	l.SlowDown("x.example")
	if got := l.DomainRate("x.example"); got != 60 {
		t.Errorf("slowed unlimited domain %v, want 60 (half of 2/s)", got)
	}
	clk.Advance(CoolDown)
	if got := l.DomainRate("x.example"); got != 0 {
		t.Errorf("did not return to unlimited: %v", got)
	}
}

func TestWaitCancelledGivesBackCapacity(t *testing.T) {
	clk := NewFakeClock(t0)
	l := New(Profile{Connections: 1, Rate: 1}, clk)
	ctx := testCtx(t)
	if err := l.Wait(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- l.Wait(wctx, "a") }()
	if err := clk.WaitForSleepers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait returned %v", err)
	}
	// The cancelled slot is free again: after one second one message starts
	// without waiting further.
	clk.Advance(time.Second)
	done := make(chan error, 1)
	go func() { done <- l.Wait(ctx, "a") }()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if clk.Sleepers() != 0 {
		t.Error("a waiter is still asleep")
	}
}

func TestConcurrentWaitersOnManualClock(t *testing.T) {
	clk := NewFakeClock(t0)
	l := New(Profile{Connections: 3, Rate: 1}, clk)
	ctx := testCtx(t)
	var started atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.Wait(ctx, many(i)); err == nil {
				started.Add(1)
			}
		}()
	}
	// One starts at once, two sleep for their slots at +1s and +2s.
	if err := clk.WaitForSleepers(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if n := started.Load(); n != 1 {
		t.Fatalf("%d started before the clock moved", n)
	}
	clk.Advance(time.Second)
	if err := clk.WaitForSleepers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	wg.Wait()
	if n := started.Load(); n != 3 {
		t.Fatalf("%d started", n)
	}
}

func TestIdleDomainsAreForgotten(t *testing.T) {
	clk := NewAutoClock(t0)
	l := New(Profile{Connections: 1, DomainRate: 600}, clk)
	ctx := testCtx(t)
	for i := 0; i < 1000; i++ {
		if err := l.Wait(ctx, many(i)); err != nil {
			t.Fatal(err)
		}
	}
	l.SlowDown("kept.example")
	clk.Advance(idleTTL + time.Second) // an auto clock can be advanced too
	for i := 0; i < sweepEvery; i++ {
		if err := l.Wait(ctx, "busy.example"); err != nil {
			t.Fatal(err)
		}
	}
	if n := l.Domains(); n != 2 {
		t.Errorf("%d domains kept, want 2 (busy and the slowed one)", n)
	}
}

func TestRealClock(t *testing.T) {
	clk := RealClock()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := clk.Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep on a cancelled context: %v", err)
	}
	before := clk.Now()
	if err := clk.Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if clk.Now().Sub(before) < time.Millisecond {
		t.Error("slept less than asked")
	}
}

// Allow takes a start only when Wait would not have waited, and then counts
// exactly as Wait does (rates and the pause rule).
func TestAllow(t *testing.T) {
	ctx := testCtx(t)

	clk := NewFakeClock(t0)
	l := New(Profile{Connections: 1}, clk)
	for i := range 100 {
		if !l.Allow(many(i)) {
			t.Fatalf("unlimited profile refused start %d", i)
		}
	}

	l = New(Profile{Connections: 1, Rate: 1}, clk)
	if err := l.Wait(ctx, "a.example"); err != nil {
		t.Fatal(err)
	}
	if l.Allow("b.example") {
		t.Error("second start in the same second allowed at 1/s")
	}
	clk.Advance(time.Second)
	if !l.Allow("b.example") || l.Allow("c.example") {
		t.Error("after a second: want exactly one more start")
	}

	l = New(Profile{Connections: 1, DomainRate: 60}, clk)
	if !l.Allow("a.example") || l.Allow("a.example") || !l.Allow("b.example") {
		t.Error("60/min per domain: want one start per domain at once, not two")
	}

	l = New(Profile{Connections: 1, PauseEvery: 2, Pause: 10 * time.Second}, clk)
	if !l.Allow("a.example") || !l.Allow("b.example") || l.Allow("c.example") {
		t.Error("pause every 2: want the third start refused")
	}
	clk.Advance(10 * time.Second)
	if !l.Allow("c.example") {
		t.Error("start refused after the pause")
	}
}
