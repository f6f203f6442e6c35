package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"mailout/internal/peertest"
	"mailout/internal/queue"
	"mailout/internal/store"
	"mailout/internal/store/postgres"
)

// recipients returns a next function over n generated recipients, over
// domains d0…d9.example.
func recipients(n int) func() (*store.NewRecipient, error) {
	i := 0
	return func() (*store.NewRecipient, error) {
		if i == n {
			return nil, nil
		}
		domain := fmt.Sprintf("d%d.example", i%10)
		email := fmt.Sprintf("r%d@%s", i, domain)
		i++
		return &store.NewRecipient{Line: i + 1, Email: email, Domain: domain, Key: email,
			Fields: map[string]string{"name": fmt.Sprintf("Recipient %d", i)}}, nil
	}
}

func importN(t *testing.T, db *postgres.DB, name string, n int) *store.Campaign {
	t.Helper()
	c := &store.Campaign{Name: name, Route: "sandbox"}
	if err := db.ImportCampaign(context.Background(), c, recipients(n)); err != nil {
		t.Fatalf("ImportCampaign(%d recipients): %v", n, err)
	}
	return c
}

// Workers are separate processes, each with its own connection pool:
// claimers on four pools, several goroutines each, take every row of the
// campaign exactly once.
func TestClaimAcrossPools(t *testing.T) {
	const rows, pools, perPool = 2000, 4, 3
	dsn := peertest.Postgres(t).Schema(t)
	dbs := make([]*postgres.DB, pools)
	for i := range dbs {
		dbs[i] = open(t, dsn)
	}
	c := importN(t, dbs[0], "fleet", rows)
	now := time.UnixMilli(time.Now().UnixMilli()).Add(time.Second)

	var (
		mu   sync.Mutex
		seen = map[int64]string{}
		errs []error
		wg   sync.WaitGroup
	)
	for p, db := range dbs {
		for g := range perPool {
			owner := fmt.Sprintf("worker-%d/%d", p, g)
			wg.Go(func() {
				for {
					ds, err := db.Claim(context.Background(), c.ID, owner, now, time.Minute, 25)
					mu.Lock()
					if err != nil {
						errs = append(errs, err)
						mu.Unlock()
						return
					}
					for _, d := range ds {
						if prev, dup := seen[d.ID]; dup {
							errs = append(errs, fmt.Errorf("row %d claimed by %s and by %s", d.ID, prev, owner))
						}
						seen[d.ID] = owner
					}
					mu.Unlock()
					if len(ds) == 0 {
						return
					}
				}
			})
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if len(seen) != rows {
		t.Fatalf("%d distinct rows claimed, want %d", len(seen), rows)
	}
	n, err := dbs[0].Counts(context.Background(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if n.ByState[queue.Sending] != rows {
		t.Fatalf("counts %v, want all %d rows sending", n.ByState, rows)
	}
}

// A claimer does not wait for rows another one holds locked (it is in
// the middle of claiming them): it takes the next due rows at once.
func TestClaimSkipsLockedRows(t *testing.T) {
	ctx := context.Background()
	dsn := peertest.Postgres(t).Schema(t)
	db := open(t, dsn)
	c := importN(t, db, "locked", 10)

	tx, err := db.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // the test's own lock
	var locked []int64
	rows, err := tx.Query(ctx, `SELECT id FROM deliveries WHERE campaign_id = $1 ORDER BY id LIMIT 3 FOR UPDATE`, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		locked = append(locked, id)
	}
	if rows.Close(); rows.Err() != nil {
		t.Fatal(rows.Err())
	}

	other := open(t, dsn)
	wait, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ds, err := other.Claim(wait, c.ID, "w2", time.Now().Add(time.Second), time.Minute, 5)
	if err != nil {
		t.Fatalf("Claim while 3 rows are locked: %v (it waited for the lock)", err)
	}
	if len(ds) != 5 {
		t.Fatalf("claimed %d rows, want 5 of the 7 unlocked ones", len(ds))
	}
	for _, d := range ds {
		for _, id := range locked {
			if d.ID == id {
				t.Fatalf("claimed row %d, which another transaction holds locked", id)
			}
		}
	}
}

// A worker whose lease ended and whose row was released and claimed by
// another worker (another process, another pool) cannot record its late
// result: the fence skips it, hard bounce included, and the new owner's
// result applies.
func TestStaleRecordAfterReclaim(t *testing.T) {
	ctx := context.Background()
	dsn := peertest.Postgres(t).Schema(t)
	a, b := open(t, dsn), open(t, dsn)
	c := importN(t, a, "stale", 1)
	now := time.UnixMilli(time.Now().UnixMilli())

	first, err := a.Claim(ctx, c.ID, "worker-a", now, time.Minute, 1)
	if err != nil || len(first) != 1 {
		t.Fatalf("first claim = %v, %v", first, err)
	}
	if n, err := b.ReleaseLeases(ctx, c.ID, now.Add(2*time.Minute)); err != nil || n != 1 {
		t.Fatalf("ReleaseLeases = %d, %v; want 1", n, err)
	}
	second, err := b.Claim(ctx, c.ID, "worker-b", now.Add(2*time.Minute), time.Minute, 1)
	if err != nil || len(second) != 1 || second[0].ID != first[0].ID || second[0].Attempts != 2 {
		t.Fatalf("re-claim = %+v, %v; want row %d at attempt 2", second, err, first[0].ID)
	}

	late := store.AttemptResult{DeliveryID: first[0].ID, Attempt: first[0].Attempts, State: queue.Failed,
		Class: "recipient-unknown", Code: 550, Enhanced: "5.1.1", Text: "no such user", Suppress: true, At: now}
	if n, err := a.Record(ctx, []store.AttemptResult{late}); err != nil || n != 0 {
		t.Fatalf("late Record = %d, %v; want 0 applied", n, err)
	}
	if ok, err := a.IsSuppressed(ctx, first[0].Key); err != nil || ok {
		t.Fatalf("IsSuppressed after the stale hard bounce = %v, %v; want false", ok, err)
	}
	var got *store.Delivery
	if err := a.Deliveries(ctx, c.ID, store.DeliveryFilter{}, func(d *store.Delivery) error { got = d; return nil }); err != nil {
		t.Fatal(err)
	}
	if got.State != queue.Sending || got.Attempts != 2 || got.LeaseOwner != "worker-b" || got.Class != "" {
		t.Fatalf("row after the late result: %s attempt %d owner %q class %q; want worker-b's attempt 2 untouched",
			got.State, got.Attempts, got.LeaseOwner, got.Class)
	}

	current := store.AttemptResult{DeliveryID: first[0].ID, Attempt: 2, State: queue.Delivered, Class: "delivered", Code: 250, At: now}
	if n, err := b.Record(ctx, []store.AttemptResult{current}); err != nil || n != 1 {
		t.Fatalf("current Record = %d, %v; want 1 applied", n, err)
	}
}
