package scheduler

import (
	"context"
	"sync"
	"testing"
	"time"

	"mailout/internal/outcome"
	"mailout/internal/store"
	"mailout/internal/throttle"
)

// In a fleet one worker stopping (a signal) or tripping its breaker
// leaves the campaign's status to the fleet: the run stores neither the
// "interrupted" pause nor the breaker's pause, and still reports why it
// stopped.
func TestSharedRunStoresNoPause(t *testing.T) {
	t.Run("interrupted", func(t *testing.T) {
		st, c := setup(t, 200)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		tr := newFake(func(string, int) outcome.Result { return delivered })
		var once sync.Once
		tr.answer = func(string, int) outcome.Result {
			if tr.total.Load() >= 20 {
				once.Do(cancel)
			}
			return delivered
		}
		cfg := config(st, c, tr, throttle.RealClock())
		cfg.Shared = true
		res, err := Run(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if res.Stop != StopInterrupted {
			t.Fatalf("stop %s, want interrupted", res.Stop)
		}
		if got, _ := st.Campaign(context.Background(), c.ID); got.Status != store.CampaignRunning {
			t.Fatalf("campaign %s (%q) after one worker stopped; want running for the others", got.Status, got.StatusReason)
		}
	})
	t.Run("breaker", func(t *testing.T) {
		st, c := setup(t, 50)
		tr := newFake(func(string, int) outcome.Result { return authFailed })
		cfg := config(st, c, tr, throttle.NewAutoClock(time.Now()))
		cfg.Shared = true
		res, err := Run(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if res.Stop != StopPaused || res.PauseResult == nil || res.Reason == "" {
			t.Fatalf("stop %s pause %+v reason %q; want paused with its cause", res.Stop, res.PauseResult, res.Reason)
		}
		if got, _ := st.Campaign(context.Background(), c.ID); got.Status != store.CampaignRunning {
			t.Fatalf("campaign %s: the shared run stored the pause itself", got.Status)
		}
	})
}
