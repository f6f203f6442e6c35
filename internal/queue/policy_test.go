package queue

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"mailout/internal/outcome"
)

func TestBackoffTable(t *testing.T) {
	p := Policy{RetryMin: time.Minute, RetryMax: time.Hour, Factor: 2, Jitter: 0.2}
	cases := []struct {
		n    int
		rnd  float64
		want time.Duration
	}{
		{1, 0.5, time.Minute},
		{2, 0.5, 2 * time.Minute},
		{3, 0.5, 4 * time.Minute},
		{7, 0.5, time.Hour},         // 64m capped at 1h
		{1000, 0.5, time.Hour},      // no overflow
		{1, 0, 48 * time.Second},    // -20%
		{1, 0.75, 66 * time.Second}, // +10%
		{0, 0.5, time.Minute},       // n < 1 counts as 1
		{2, 1.5, 2 * time.Minute},   // out-of-range draw: no jitter
	}
	for _, c := range cases {
		if got := p.Backoff(c.n, c.rnd); got != c.want {
			t.Errorf("Backoff(%d, %v) = %v, want %v", c.n, c.rnd, got, c.want)
		}
	}
}

func TestBackoffDefaults(t *testing.T) {
	var p Policy
	if got := p.Backoff(1, 0.5); got != DefaultRetryMin {
		t.Errorf("first delay %v, want %v", got, DefaultRetryMin)
	}
	if got := p.Backoff(50, 0.5); got != DefaultRetryMax {
		t.Errorf("capped delay %v, want %v", got, DefaultRetryMax)
	}
	if got := (Policy{Jitter: -1}).Backoff(1, 0); got != DefaultRetryMin {
		t.Errorf("negative jitter should disable jitter, got %v", got)
	}
}

// Property: for any policy and draw, the delays (without jitter) never
// shrink from one attempt to the next, and each jittered delay stays within
// ±Jitter of its unjittered value and so within RetryMax·(1+Jitter).
func TestBackoffProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 500; i++ {
		p := Policy{
			RetryMin: time.Duration(1+rng.IntN(600)) * time.Second,
			RetryMax: time.Duration(1+rng.IntN(8)) * time.Hour,
			Factor:   1 + rng.Float64()*3,
			Jitter:   rng.Float64() * 0.5,
		}
		prev := time.Duration(0)
		for n := 1; n <= 40; n++ {
			mid := p.Backoff(n, 0.5)
			if mid < prev {
				t.Fatalf("%+v: delay shrank at n=%d: %v < %v", p, n, mid, prev)
			}
			if mid > p.RetryMax {
				t.Fatalf("%+v: n=%d delay %v over RetryMax", p, n, mid)
			}
			prev = mid
			r := rng.Float64()
			d := p.Backoff(n, r)
			lo := time.Duration(float64(mid) * (1 - p.Jitter))
			hi := time.Duration(float64(mid) * (1 + p.Jitter))
			if d < lo-1 || d > hi+1 {
				t.Fatalf("%+v: n=%d rnd=%v delay %v outside [%v, %v]", p, n, r, d, lo, hi)
			}
		}
	}
}

func TestNext(t *testing.T) {
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := Policy{RetryMin: time.Hour, RetryMax: 4 * time.Hour, MaxAge: 72 * time.Hour, Jitter: -1}
	res := func(c outcome.Class, k outcome.Kind) outcome.Result {
		return outcome.Result{Class: c, Kind: k, Code: 450, Enhanced: "4.2.0"}
	}
	cases := []struct {
		name     string
		r        outcome.Result
		attempts int
		now      time.Time
		state    State
		nextAt   time.Time
		reason   string
	}{
		{"delivered", outcome.Result{Class: outcome.Delivered, Kind: outcome.KindDone}, 1, created, Delivered, time.Time{}, "delivered"},
		{"permanent", res(outcome.RecipientUnknown, outcome.KindPermanent), 1, created, Failed, time.Time{}, "recipient-unknown"},
		{"permanent for run keeps the recipient", res(outcome.AuthFailed, outcome.KindPermanentForRun), 1, created.Add(time.Hour), Pending, created.Add(time.Hour), "not this recipient"},
		{"greylisted first retry", res(outcome.Greylisted, outcome.KindTemporary), 1, created, Deferred, created.Add(time.Hour), "deferred after attempt 1"},
		{"temporary third attempt", res(outcome.Temporary, outcome.KindTemporary), 3, created.Add(10 * time.Hour), Deferred, created.Add(14 * time.Hour), "deferred"},
		{"unknown kind is retried", outcome.Result{Class: "new-class"}, 1, created, Deferred, created.Add(time.Hour), "deferred"},
		// Max-age edge: next due exactly at createdAt+MaxAge is still allowed,
		// one nanosecond later is not.
		{"due exactly at max age", res(outcome.MailboxFull, outcome.KindTemporary), 10, created.Add(68 * time.Hour), Deferred, created.Add(72 * time.Hour), "deferred"},
		{"one ns past max age", res(outcome.MailboxFull, outcome.KindTemporary), 10, created.Add(68*time.Hour + 1), Failed, time.Time{}, "gave up after 3 days (max age)"},
		{"greylisting past max age", res(outcome.Greylisted, outcome.KindTemporary), 20, created.Add(71 * time.Hour), Failed, time.Time{}, "gave up after 3 days"},
		{"rate limited past max age", res(outcome.RateLimited, outcome.KindTemporary), 20, created.Add(100 * time.Hour), Failed, time.Time{}, "max age"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := p.Next(c.r, c.attempts, created, c.now, 0.5)
			if tr.State != c.state || !tr.NextAt.Equal(c.nextAt) {
				t.Errorf("got %s at %v, want %s at %v (%s)", tr.State, tr.NextAt, c.state, c.nextAt, tr.Reason)
			}
			if !strings.Contains(tr.Reason, c.reason) {
				t.Errorf("reason %q does not contain %q", tr.Reason, c.reason)
			}
		})
	}
}

func TestNextAmbiguousSaysDuplicate(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tr := Policy{}.Next(outcome.Result{Class: outcome.ProtocolError, Kind: outcome.KindTemporary, Ambiguous: true}, 1, now, now, 0.5)
	if tr.State != Deferred || !strings.Contains(tr.Reason, "possible duplicate") {
		t.Errorf("got %+v", tr)
	}
}

// A whole life: a greylisted-then-full mailbox is retried with growing
// delays and failed at max age, never later.
func TestNextLifecycleStopsAtMaxAge(t *testing.T) {
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := Policy{}
	now := created
	r := outcome.Result{Class: outcome.MailboxFull, Kind: outcome.KindTemporary}
	var last time.Duration
	for n := 1; ; n++ {
		tr := p.Next(r, n, created, now, 0.5)
		if tr.State == Failed {
			if now.Sub(created) > DefaultMaxAge {
				t.Fatalf("failed only at %v", now.Sub(created))
			}
			if n < 10 {
				t.Fatalf("gave up after only %d attempts", n)
			}
			return
		}
		if tr.State != Deferred {
			t.Fatalf("attempt %d: %s", n, tr.State)
		}
		d := tr.NextAt.Sub(now)
		if d < last {
			t.Fatalf("delay shrank: %v < %v", d, last)
		}
		last = d
		now = tr.NextAt
	}
}
