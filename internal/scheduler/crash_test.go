package scheduler

import (
	"context"
	"sync"
	"testing"
	"time"

	"mailout/internal/outcome"
	"mailout/internal/queue"
	"mailout/internal/store"
	"mailout/internal/throttle"
)

// isolationStore checks, at every Claim after one that returned a row
// released by a crash, that the row is no longer in flight: its result
// was recorded before anything else was claimed.
type isolationStore struct {
	store.Store
	campaign int64
	mu       sync.Mutex
	suspect  bool
	overlaps int
	alone    int
}

func (s *isolationStore) Claim(ctx context.Context, id int64, owner string, now time.Time, lease time.Duration, limit int) ([]store.Delivery, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.suspect {
		n, err := s.Store.Counts(ctx, s.campaign)
		if err != nil {
			return nil, err
		}
		if n.ByState[queue.Sending] != 0 {
			s.overlaps++
		}
	}
	ds, err := s.Store.Claim(ctx, id, owner, now, lease, limit)
	s.suspect = len(ds) == 1 && ds[0].Crashes > 0
	if s.suspect {
		s.alone++
	}
	return ds, err
}

// After a crash with a batch in flight, the next run sends each released
// recipient alone and records it before claiming the next.
func TestRowsReleasedByACrashAreSentAlone(t *testing.T) {
	st, c := setup(t, 30)
	ctx := t.Context()
	if _, err := st.Claim(ctx, c.ID, "dead", time.Now(), time.Minute, 10); err != nil {
		t.Fatal(err)
	}
	if n, err := st.ReleaseLeases(ctx, c.ID, time.Time{}); err != nil || n != 10 {
		t.Fatalf("ReleaseLeases = %d, %v", n, err)
	}
	is := &isolationStore{Store: st, campaign: c.ID}
	tr := newFake(func(string, int) outcome.Result { return delivered })
	res, err := Run(ctx, config(is, c, tr, throttle.RealClock()))
	if err != nil {
		t.Fatal(err)
	}
	if res.Stop != StopDone || res.Counts.ByState[queue.Delivered] != 30 {
		t.Fatalf("stop %s, counts %v", res.Stop, res.Counts.ByState)
	}
	if is.alone != 10 || is.overlaps != 0 {
		t.Fatalf("%d released rows claimed alone (want 10); %d times the next claim came while one was in flight (want 0)", is.alone, is.overlaps)
	}
}
