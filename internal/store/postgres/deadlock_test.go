package postgres_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"mailout/internal/peertest"
	"mailout/internal/queue"
	"mailout/internal/store"
)

// A worker records a batch while another process releases the same rows'
// ended leases: each locks the rows it writes, and if they took them in
// different orders PostgreSQL would abort one of them as a deadlock.
// Results arrive in any order (the order sends finish), here highest id
// first; neither call may fail.
func TestRecordWhileReleasing(t *testing.T) {
	ctx := context.Background()
	dsn := peertest.Postgres(t).Schema(t)
	worker, sweeper := open(t, dsn), open(t, dsn)
	c := importN(t, worker, "sweep", 3000)

	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		done = make(chan struct{})
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			// Every lease has ended: lease 0 below.
			if _, err := sweeper.ReleaseLeases(ctx, c.ID, time.Now().Add(time.Hour)); err != nil {
				fail(err)
				return
			}
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ds, err := worker.Claim(ctx, c.ID, "w", time.Now(), 0, 100)
		if err != nil {
			fail(err)
			break
		}
		if len(ds) == 0 {
			break
		}
		rs := make([]store.AttemptResult, len(ds))
		for i, d := range ds {
			rs[i] = store.AttemptResult{DeliveryID: d.ID, Attempt: d.Attempts, State: queue.Delivered, Class: "delivered"}
		}
		slices.Reverse(rs)
		if _, err := worker.Record(ctx, rs); err != nil {
			fail(err)
			break
		}
	}
	close(done)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}
