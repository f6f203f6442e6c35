package storetest

import (
	"context"
	"testing"
	"time"

	"mailout/internal/outcome"
	"mailout/internal/queue"
	"mailout/internal/store"
)

// A recipient whose sending crashes the process at every run is failed as
// crash-loop at the CrashLimit-th release, while the recipients that were
// in flight with it at the first crash are sent one by one and delivered:
// no innocent row is failed.
func testCrashLoop(t *testing.T, s store.Store) {
	ctx := context.Background()
	c := importN(t, s, "crash-loop", 5)
	ds := claim(t, s, c.ID, msNow(), 5) // the whole list in flight
	poison := ds[2].ID
	releases := 0
	crash := func() {
		t.Helper()
		releases++
		if _, err := s.ReleaseLeases(ctx, c.ID, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	crash()
	for _, d := range all(t, s, c.ID, store.DeliveryFilter{}) {
		if d.State != queue.Pending || d.Crashes != 1 {
			t.Fatalf("after one crash row %d is %s with %d crashes; want pending with 1", d.ID, d.State, d.Crashes)
		}
	}
	for range 20 {
		got := claim(t, s, c.ID, msNow().Add(time.Second), 5)
		if len(got) == 0 {
			break
		}
		if len(got) != 1 {
			t.Fatalf("claimed %v together; a row released by a crash is claimed alone", ids(got))
		}
		if got[0].Crashes == 0 {
			t.Fatalf("claimed row %d has no crash counted", got[0].ID)
		}
		if got[0].ID == poison {
			crash()
			continue
		}
		record(t, s, 1, store.AttemptResult{DeliveryID: got[0].ID, Attempt: got[0].Attempts, State: queue.Delivered, Class: "delivered"})
	}
	if releases != store.CrashLimit {
		t.Errorf("the poison row crashed %d times, want %d", releases, store.CrashLimit)
	}
	for _, d := range all(t, s, c.ID, store.DeliveryFilter{}) {
		if d.ID == poison {
			if d.State != queue.Failed || d.Class != "crash-loop" || d.Text == "" || !d.PossibleDuplicate {
				t.Errorf("poison row: %s %s %q dup %v; want failed crash-loop with a reason, possible duplicate", d.State, d.Class, d.Text, d.PossibleDuplicate)
			}
			continue
		}
		if d.State != queue.Delivered || d.Crashes != 0 {
			t.Errorf("row %d: %s with %d crashes; want delivered, count reset", d.ID, d.State, d.Crashes)
		}
	}
	if n := counts(t, s, c.ID); n.ByClass["crash-loop"] != 1 || n.ByState[queue.Delivered] != 4 {
		t.Errorf("counts %v %v; want 4 delivered and 1 crash-loop", n.ByState, n.ByClass)
	}
	// retry --class crash-loop starts a new count.
	if n, err := s.Requeue(ctx, c.ID, []outcome.Class{"crash-loop"}, msNow()); err != nil || n != 1 {
		t.Fatalf("Requeue(crash-loop) = %d, %v", n, err)
	}
	if d := byID(t, s, c.ID, poison); d.State != queue.Pending || d.Crashes != 0 {
		t.Errorf("requeued poison row: %s with %d crashes; want pending with 0", d.State, d.Crashes)
	}
}
