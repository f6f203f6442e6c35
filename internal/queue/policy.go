package queue

import (
	"fmt"
	"math"
	"time"

	"mailout/internal/outcome"
)

// Defaults for a zero Policy field.
const (
	DefaultRetryMin = 5 * time.Minute
	DefaultRetryMax = 4 * time.Hour
	DefaultMaxAge   = 72 * time.Hour
	DefaultFactor   = 2.0
	DefaultJitter   = 0.2
)

// Policy is a campaign's retry schedule. A zero field takes its default;
// a negative Jitter means no jitter.
type Policy struct {
	// RetryMin is the delay after the first attempt.
	RetryMin time.Duration
	// RetryMax caps one delay (default 4h).
	RetryMax time.Duration
	// MaxAge: a delivery still not done this long after it was created is
	// failed instead of deferred again (default 3 days, within the 4–5 days
	// RFC 5321 §4.5.4.1 suggests as the give-up time).
	MaxAge time.Duration
	// Factor multiplies the delay after each attempt (default 2).
	Factor float64
	// Jitter spreads each delay by ±Jitter×delay (default 0.2), so that the
	// deferred recipients of one domain do not all come back at once.
	Jitter float64
}

func (p Policy) withDefaults() Policy {
	if p.RetryMin <= 0 {
		p.RetryMin = DefaultRetryMin
	}
	if p.RetryMax <= 0 {
		p.RetryMax = DefaultRetryMax
	}
	if p.RetryMax < p.RetryMin {
		p.RetryMax = p.RetryMin
	}
	if p.MaxAge <= 0 {
		p.MaxAge = DefaultMaxAge
	}
	if !(p.Factor >= 1) || math.IsInf(p.Factor, 0) {
		p.Factor = DefaultFactor
	}
	switch {
	case p.Jitter < 0:
		p.Jitter = 0
	case p.Jitter == 0 || math.IsNaN(p.Jitter):
		p.Jitter = DefaultJitter
	case p.Jitter > 1:
		p.Jitter = 1
	}
	return p
}

// Backoff is the delay before attempt n+1 after n attempts (n ≥ 1):
// RetryMin·Factor^(n-1), capped at RetryMax, then spread by the jitter:
// rnd in [0,1) maps to a factor in [1-Jitter, 1+Jitter).
func (p Policy) Backoff(n int, rnd float64) time.Duration {
	p = p.withDefaults()
	if n < 1 {
		n = 1
	}
	if !(rnd >= 0 && rnd < 1) {
		rnd = 0.5 // no jitter for an out-of-range or NaN draw
	}
	base := float64(p.RetryMin) * math.Pow(p.Factor, float64(n-1))
	if base > float64(p.RetryMax) || math.IsInf(base, 0) || math.IsNaN(base) {
		base = float64(p.RetryMax)
	}
	d := base * (1 + p.Jitter*(2*rnd-1))
	return time.Duration(d)
}

// Transition is what an attempt's result does to a delivery row.
type Transition struct {
	State State
	// NextAt is when the row is due again (Pending, Deferred); zero for a
	// final state.
	NextAt time.Time
	// Reason says why, for the event log, e.g. "gave up after 3 days (max
	// age)".
	Reason string
}

// Next decides what the result of attempt number attempts (≥ 1, counting
// this one) does to a delivery created at createdAt:
//
//   - delivered → Delivered;
//   - permanent → Failed;
//   - permanent-for-run (auth, relay denied: the route or campaign is stopped
//     elsewhere) → Pending, due now: the recipient is not blamed and is sent
//     when the route works again;
//   - temporary → Deferred at now+Backoff, or Failed when that would pass
//     createdAt+MaxAge (mailbox-full and greylisting included).
//
// An unknown kind is treated as temporary: a duplicate is acceptable, a loss
// is not.
func (p Policy) Next(r outcome.Result, attempts int, createdAt, now time.Time, rnd float64) Transition {
	p = p.withDefaults()
	what := string(r.Class)
	if r.Code != 0 {
		what = fmt.Sprintf("%s (%d %s)", r.Class, r.Code, r.Enhanced)
	}
	switch r.Kind {
	case outcome.KindDone:
		return Transition{State: Delivered, Reason: "delivered"}
	case outcome.KindPermanent:
		return Transition{State: Failed, Reason: "failed: " + what}
	case outcome.KindPermanentForRun:
		return Transition{State: Pending, NextAt: now, Reason: "kept for a later run: " + what + " stops the route, not this recipient"}
	}
	next := now.Add(p.Backoff(attempts, rnd))
	deadline := createdAt.Add(p.MaxAge)
	if next.After(deadline) {
		return Transition{State: Failed, Reason: fmt.Sprintf("gave up after %s (max age): last %s", human(p.MaxAge), what)}
	}
	reason := fmt.Sprintf("deferred after attempt %d: %s", attempts, what)
	if r.Ambiguous {
		reason += "; possible duplicate (no reply after the final \".\")"
	}
	return Transition{State: Deferred, NextAt: next, Reason: reason}
}

// human prints whole days as "3 days", other durations as Go does.
func human(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d == day:
		return "1 day"
	case d%day == 0:
		return fmt.Sprintf("%d days", d/day)
	}
	return d.String()
}
