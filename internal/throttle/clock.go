package throttle

import (
	"context"
	"sync"
	"time"
)

// Clock is the time source of a Limiter. Real code uses RealClock(); tests use
// a FakeClock so that they never sleep and always count the same.
type Clock interface {
	Now() time.Time
	// Sleep returns after d has passed on this clock, or with ctx's error
	// when ctx ends first.
	Sleep(ctx context.Context, d time.Duration) error
}

// RealClock returns the wall clock.
func RealClock() Clock { return realClock{} }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Sleep waits d on a timer, or until ctx ends.
func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// FakeClock is a Clock for tests. Its time moves only when told:
//
//   - manual (NewFakeClock): Sleep blocks until Advance moves the clock to
//     or past its deadline; use WaitForSleepers to know that goroutines are
//     parked before advancing. For tests with several goroutines.
//   - auto (NewAutoClock): Sleep moves the clock forward by d and returns at
//     once. For tests that drive a limiter from one goroutine; with several
//     goroutines the sleeps would add up.
type FakeClock struct {
	mu       sync.Mutex
	now      time.Time
	auto     bool
	sleepers []*sleeper
	changed  chan struct{} // closed and replaced when sleepers change
}

type sleeper struct {
	until time.Time
	done  chan struct{}
}

// NewFakeClock returns a manual fake clock at start.
func NewFakeClock(start time.Time) *FakeClock {
	return &FakeClock{now: start, changed: make(chan struct{})}
}

// NewAutoClock returns a fake clock whose Sleep advances it.
func NewAutoClock(start time.Time) *FakeClock {
	c := NewFakeClock(start)
	c.auto = true
	return c
}

// Now returns the fake time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Sleep waits until the fake time reaches now+d (see FakeClock).
func (c *FakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	if d <= 0 {
		c.mu.Unlock()
		return nil
	}
	if c.auto {
		c.now = c.now.Add(d)
		c.mu.Unlock()
		return nil
	}
	s := &sleeper{until: c.now.Add(d), done: make(chan struct{})}
	c.sleepers = append(c.sleepers, s)
	c.notifyLocked()
	c.mu.Unlock()

	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		c.mu.Lock()
		for i, x := range c.sleepers {
			if x == s {
				c.sleepers = append(c.sleepers[:i], c.sleepers[i+1:]...)
				c.notifyLocked()
				break
			}
		}
		c.mu.Unlock()
		return ctx.Err()
	}
}

// Advance moves the clock forward by d and wakes the sleepers that are due.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.sleepers[:0]
	woke := false
	for _, s := range c.sleepers {
		if !s.until.After(c.now) {
			close(s.done)
			woke = true
			continue
		}
		kept = append(kept, s)
	}
	c.sleepers = kept
	if woke {
		c.notifyLocked()
	}
}

// Sleepers returns how many goroutines are blocked in Sleep.
func (c *FakeClock) Sleepers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sleepers)
}

// WaitForSleepers blocks until at least n goroutines are blocked in Sleep,
// or ctx ends. It does not sleep: it is woken by every change.
func (c *FakeClock) WaitForSleepers(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		if len(c.sleepers) >= n {
			c.mu.Unlock()
			return nil
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (c *FakeClock) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}
