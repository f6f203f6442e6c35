package throttle

import (
	"context"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

const (
	// CoolDown is how long a SlowDown holds a domain at the reduced rate;
	// after it, the rate doubles once per further CoolDown without a new
	// SlowDown, back to the profile's value.
	CoolDown = 10 * time.Minute
	// minDomainRate is the floor of SlowDown: one message a minute.
	minDomainRate = 1.0
	// unlimitedDomainRate is the per-minute rate a SlowDown halves when
	// neither the profile's domain rate nor its global rate is set.
	unlimitedDomainRate = 120.0
	// idleTTL: a domain without sessions, slow-down or messages for this
	// long is forgotten (its bucket would be full again anyway), which keeps
	// the per-domain state bounded by the domains active in the last
	// idleTTL.
	idleTTL = 10 * time.Minute
	// sweepEvery: how many Wait calls between sweeps of idle domains.
	sweepEvery = 256
)

// Limiter paces the messages and sessions of one campaign (or one worker)
// according to a Profile. It is safe for concurrent use.
type Limiter struct {
	p   Profile
	clk Clock

	mu         sync.Mutex
	global     *rate.Limiter
	started    int64     // messages allowed to start (pause-every)
	pauseUntil time.Time // no start before this
	domains    map[string]*domainState
	calls      int
}

type domainState struct {
	lim       *rate.Limiter // nil: unlimited
	perMin    float64       // current rate; 0 = unlimited
	slowed    bool          // below the profile's rate
	coolUntil time.Time     // while slowed: the next recovery step
	lastUsed  time.Time
}

// New returns a Limiter for p on clk. p should have passed Validate.
func New(p Profile, clk Clock) *Limiter {
	g := rate.Inf
	if p.Rate > 0 {
		g = rate.Limit(p.Rate)
	}
	return &Limiter{
		p:       p,
		clk:     clk,
		global:  rate.NewLimiter(g, 1), // burst 1: starts are spaced evenly
		domains: make(map[string]*domainState),
	}
}

// Profile returns the limiter's profile.
func (l *Limiter) Profile() Profile { return l.p }

// Wait blocks (on the clock) until one more message to domain may start,
// honouring the global rate, the domain's rate (and any SlowDown of it) and
// the pause-every rule. It returns ctx's error if ctx ends first.
//
// The domain's slot is reserved first, so waiters for one domain queue in
// order and a slow domain holds no global capacity while it waits; then the
// global slot and the pause rule are applied at the time the domain allows.
func (l *Limiter) Wait(ctx context.Context, domain string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := l.clk.Now()
	l.mu.Lock()
	l.sweepLocked(now)
	ds := l.domainLocked(domain, now)
	var rd *rate.Reservation
	var dd time.Duration
	if ds.lim != nil {
		rd = ds.lim.ReserveN(now, 1)
		dd = rd.DelayFrom(now)
	}
	ds.lastUsed = now.Add(dd)
	l.mu.Unlock()

	cancel := func(rs ...*rate.Reservation) {
		l.mu.Lock()
		at := l.clk.Now()
		for _, r := range rs {
			if r != nil {
				r.CancelAt(at)
			}
		}
		l.mu.Unlock()
	}
	if dd > 0 {
		if err := l.clk.Sleep(ctx, dd); err != nil {
			cancel(rd)
			return err
		}
	}
	for {
		now := l.clk.Now()
		l.mu.Lock()
		if now.Before(l.pauseUntil) {
			d := l.pauseUntil.Sub(now)
			l.mu.Unlock()
			if err := l.clk.Sleep(ctx, d); err != nil {
				cancel(rd)
				return err
			}
			continue
		}
		rg := l.global.ReserveN(now, 1)
		delay := rg.DelayFrom(now)
		l.startLocked(now.Add(delay))
		l.mu.Unlock()
		if delay <= 0 {
			return nil
		}
		if err := l.clk.Sleep(ctx, delay); err != nil {
			cancel(rg, rd)
			l.mu.Lock()
			l.started--
			l.mu.Unlock()
			return err
		}
		return nil
	}
}

// Allow is Wait without the waiting: when the global rate, domain's rate
// and the pause rule let one more message to domain start now, it takes
// that start (as Wait would) and reports true; otherwise it changes nothing.
// The scheduler uses it to add messages to a batch only while the profile
// would not have made them wait.
func (l *Limiter) Allow(domain string) bool {
	now := l.clk.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Before(l.pauseUntil) {
		return false
	}
	ds := l.domainLocked(domain, now)
	if ds.lim != nil && ds.lim.TokensAt(now) < 1 {
		return false
	}
	if !l.global.AllowN(now, 1) {
		return false
	}
	if ds.lim != nil {
		ds.lim.AllowN(now, 1)
	}
	ds.lastUsed = now
	l.startLocked(now)
	return true
}

// startLocked counts a message starting at at for the pause-every rule:
// every PauseEvery-th start makes the next ones wait Pause after it.
func (l *Limiter) startLocked(at time.Time) {
	l.started++
	if l.p.PauseEvery > 0 && l.p.Pause > 0 && l.started%int64(l.p.PauseEvery) == 0 {
		l.pauseUntil = at.Add(l.p.Pause)
	}
}

// domainLocked returns the state of domain, creating it, and applies any
// recovery from a SlowDown that is due at now.
func (l *Limiter) domainLocked(domain string, now time.Time) *domainState {
	ds, ok := l.domains[domain]
	if !ok {
		ds = &domainState{perMin: l.p.DomainRate, lastUsed: now}
		if l.p.DomainRate > 0 {
			ds.lim = rate.NewLimiter(rate.Limit(l.p.DomainRate/60), 1)
		}
		l.domains[domain] = ds
	}
	// Recover gradually: the rate doubles once per CoolDown after the
	// cool-down period, up to the profile's rate.
	for ds.slowed && !now.Before(ds.coolUntil) {
		ds.perMin *= 2
		ds.coolUntil = ds.coolUntil.Add(CoolDown)
		if base := l.p.DomainRate; base > 0 && ds.perMin >= base {
			ds.perMin, ds.slowed = base, false
		} else if base == 0 && ds.perMin >= l.slowDownCeiling() {
			ds.perMin, ds.slowed = 0, false
		}
		if ds.perMin == 0 {
			ds.lim = nil
		} else {
			ds.lim.SetLimitAt(now, rate.Limit(ds.perMin/60))
		}
	}
	return ds
}

// slowDownCeiling is the per-minute rate a domain without its own limit is
// considered to have when it is slowed down.
func (l *Limiter) slowDownCeiling() float64 {
	if l.p.Rate > 0 {
		return l.p.Rate * 60
	}
	return unlimitedDomainRate
}

// SlowDown halves domain's rate (floor: one message a minute) for CoolDown,
// after a rate-limited answer from it; other domains are
// not affected. Afterwards the rate recovers gradually (see CoolDown).
func (l *Limiter) SlowDown(domain string) {
	now := l.clk.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	ds := l.domainLocked(domain, now)
	cur := ds.perMin
	if cur == 0 {
		cur = l.slowDownCeiling()
	}
	ds.perMin = math.Max(cur/2, minDomainRate)
	ds.slowed = true
	ds.coolUntil = now.Add(CoolDown)
	ds.lastUsed = now
	if ds.lim == nil {
		// Start with no token: the answer just received was the last
		// message for a while.
		ds.lim = rate.NewLimiter(rate.Limit(ds.perMin/60), 1)
		ds.lim.ReserveN(now, 1)
	} else {
		ds.lim.SetLimitAt(now, rate.Limit(ds.perMin/60))
	}
}

// DomainRate returns domain's current rate in messages per minute (0 =
// unlimited), after any recovery due now. For reports and tests.
func (l *Limiter) DomainRate(domain string) float64 {
	now := l.clk.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.domainLocked(domain, now).perMin
}

// Domains returns how many domains the limiter holds state for.
func (l *Limiter) Domains() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.domains)
}

// sweepLocked forgets domains idle for idleTTL, every sweepEvery calls.
func (l *Limiter) sweepLocked(now time.Time) {
	l.calls++
	if l.calls%sweepEvery != 0 {
		return
	}
	for name, ds := range l.domains {
		if !ds.slowed && now.Sub(ds.lastUsed) > idleTTL {
			delete(l.domains, name)
		}
	}
}
