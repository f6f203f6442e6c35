package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"mailout/internal/peertest"
	"mailout/internal/queue"
	"mailout/internal/store"
	"mailout/internal/store/postgres"
)

// A worker records a batch while another process releases the same rows'
// ended leases: each locks the rows it writes, and if they took them in
// different orders PostgreSQL would abort one of them as a deadlock.
// Results arrive in any order (the order sends finish), here highest id
// first; neither call may fail.
func TestRecordWhileReleasing(t *testing.T) {
	recordWhile(t, func(ctx context.Context, sweeper *postgres.DB, c int64) error {
		// Every lease has ended: lease 0 below.
		_, err := sweeper.ReleaseLeases(ctx, c, time.Now().Add(time.Hour))
		return err
	})
}

// A worker's lease renewals run beside its own Record of the same rows:
// they lock them in the same order, and neither is aborted as a deadlock.
func TestRecordWhileRenewing(t *testing.T) {
	recordWhile(t, func(ctx context.Context, renewer *postgres.DB, c int64) error {
		_, err := renewer.RenewLeases(ctx, c, "w", time.Now().Add(time.Hour))
		return err
	})
}

// recordWhile claims and records (in reverse id order) a campaign's rows
// as owner "w" while other, in a loop on another pool, works on them.
func recordWhile(t *testing.T, other func(ctx context.Context, db *postgres.DB, campaign int64) error) {
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
			if err := other(ctx, sweeper, c.ID); err != nil {
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

// Two workers record hard bounces for the same addresses (two campaigns
// to one list) in opposite orders: both batches put the same keys on the
// suppression list, and neither may be aborted as a deadlock.
func TestHardBouncesOfTheSameKeysAtOnce(t *testing.T) {
	ctx := context.Background()
	dsn := peertest.Postgres(t).Schema(t)
	a, b := open(t, dsn), open(t, dsn)
	for round := range 5 {
		// Clear the list so each round imports and suppresses every key again.
		if _, err := a.Pool().Exec(ctx, `DELETE FROM suppressions`); err != nil {
			t.Fatal(err)
		}
		var batches [2][]store.AttemptResult
		for i, db := range []interface {
			ImportCampaign(context.Context, *store.Campaign, func() (*store.NewRecipient, error)) error
			Claim(context.Context, int64, string, time.Time, time.Duration, int) ([]store.Delivery, error)
		}{a, b} {
			c := &store.Campaign{Name: fmt.Sprintf("bounce-%d-%d", round, i), Route: "sandbox"}
			if err := db.ImportCampaign(ctx, c, recipients(500)); err != nil {
				t.Fatal(err)
			}
			ds, err := db.Claim(ctx, c.ID, "w", time.Now().Add(time.Second), time.Minute, 500)
			if err != nil || len(ds) != 500 {
				t.Fatalf("Claim = %d rows, %v", len(ds), err)
			}
			for _, d := range ds {
				batches[i] = append(batches[i], store.AttemptResult{DeliveryID: d.ID, Attempt: 1, State: queue.Failed,
					Class: "recipient-unknown", Code: 550, Suppress: true})
			}
		}
		slices.Reverse(batches[1])
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, db := range []*postgres.DB{a, b} {
			wg.Go(func() {
				_, errs[i] = db.Record(ctx, batches[i])
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
}
