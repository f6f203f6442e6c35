package storetest

import (
	"context"
	"testing"
	"time"

	"mailout/internal/outcome"
	"mailout/internal/queue"
	"mailout/internal/store"
)

// testTypedOutcome: the class and step a result carries come back as the
// outcome package's own values, in Deliveries, Counts.ByClass, the class
// filter of Deliveries, and the classes of Requeue and DueNow.
func testTypedOutcome(t *testing.T, s store.Store) {
	ctx := context.Background()
	c := importN(t, s, "typed", 3)
	now := msNow().Add(time.Second)
	ds := claim(t, s, c.ID, now, 3)
	bounced, greylisted, timedOut := ds[0], ds[1], ds[2]
	record(t, s, 3,
		store.AttemptResult{DeliveryID: bounced.ID, Attempt: 1, State: queue.Failed,
			Class: outcome.RecipientUnknown, Step: outcome.StepRcpt, Code: 550, Enhanced: "5.1.1", At: now},
		store.AttemptResult{DeliveryID: greylisted.ID, Attempt: 1, State: queue.Deferred, NextAt: now.Add(time.Hour),
			Class: outcome.Greylisted, Step: outcome.StepRcpt, Code: 450, At: now},
		store.AttemptResult{DeliveryID: timedOut.ID, Attempt: 1, State: queue.Deferred, NextAt: now.Add(time.Hour),
			Class: outcome.ConnectTimeout, Step: outcome.StepConnect, At: now})

	if d := byID(t, s, c.ID, bounced.ID); d.Class != outcome.RecipientUnknown || d.Step != outcome.StepRcpt {
		t.Errorf("stored outcome %q at %q, want %q at %q", d.Class, d.Step, outcome.RecipientUnknown, outcome.StepRcpt)
	}
	if n := counts(t, s, c.ID).ByClass[outcome.RecipientUnknown]; n != 1 {
		t.Errorf("ByClass[%s] = %d, want 1", outcome.RecipientUnknown, n)
	}
	got := all(t, s, c.ID, store.DeliveryFilter{Classes: []outcome.Class{outcome.Greylisted}})
	if len(got) != 1 || got[0].ID != greylisted.ID {
		t.Errorf("filter by class %s = %v, want [%d]", outcome.Greylisted, ids(got), greylisted.ID)
	}
	if n, err := s.DueNow(ctx, c.ID, []outcome.Class{outcome.ConnectTimeout}, now); err != nil || n != 1 {
		t.Errorf("DueNow(%s) = %d, %v; want 1", outcome.ConnectTimeout, n, err)
	}
	if n, err := s.Requeue(ctx, c.ID, []outcome.Class{outcome.RecipientUnknown}, now); err != nil || n != 1 {
		t.Errorf("Requeue(%s) = %d, %v; want 1", outcome.RecipientUnknown, n, err)
	}
}
