package sqlite

import (
	"context"
	"fmt"
	"testing"
	"time"

	"mailout/internal/queue"
	"mailout/internal/store"
)

func importFresh(t *testing.T, db *DB, name string, n int) *store.Campaign {
	t.Helper()
	c := &store.Campaign{Name: name, Status: store.CampaignRunning, Route: "sandbox"}
	i := 0
	if err := db.ImportCampaign(t.Context(), c, func() (*store.NewRecipient, error) {
		if i == n {
			return nil, nil
		}
		i++
		e := fmt.Sprintf("r%d@example.org", i)
		return &store.NewRecipient{Line: i + 1, Email: e, Domain: "example.org", Key: e, Fields: map[string]string{}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	return c
}

func listed(t *testing.T, db *DB, c *store.Campaign) map[int64]store.Delivery {
	t.Helper()
	out := map[int64]store.Delivery{}
	if err := db.Deliveries(t.Context(), c.ID, store.DeliveryFilter{}, func(d *store.Delivery) error {
		out[d.ID] = *d
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// A crash with a range claim in flight (0002_claims.sql): what got a result
// stays as recorded; what was refunded is simply due again; the rest comes
// back flagged as possible duplicates with its attempt counted, and goes
// out as attempt 2. Nothing is lost and nothing else is flagged.
func TestRangeClaimCrashAndRefund(t *testing.T) {
	db := openTemp(t)
	c := importFresh(t, db, "crash", 20)
	now := time.UnixMilli(time.Now().UnixMilli())
	ds, err := db.Claim(t.Context(), c.ID, "w1", now, time.Minute, 10)
	if err != nil || len(ds) != 10 {
		t.Fatalf("claim: %d rows, %v", len(ds), err)
	}
	n, err := db.Record(t.Context(), []store.AttemptResult{
		{DeliveryID: ds[0].ID, Attempt: 1, State: queue.Delivered, Class: "delivered", At: now},
		{DeliveryID: ds[1].ID, Attempt: 1, State: queue.Deferred, NextAt: now.Add(time.Hour), Class: "greylisted", At: now},
		{DeliveryID: ds[2].ID, Attempt: 1, State: queue.Pending, NextAt: now, Refund: true, At: now},
	})
	if err != nil || n != 3 {
		t.Fatalf("record: %d, %v", n, err)
	}
	if got := counts(t, db, c).ByState; got[queue.Sending] != 7 || got[queue.Pending] != 11 {
		t.Fatalf("counts after results: %v, want 7 sending, 11 pending", got)
	}
	// The process dies; the next run releases every lease.
	released, err := db.ReleaseLeases(t.Context(), c.ID, time.Time{})
	if err != nil || released != 7 {
		t.Fatalf("released %d, %v; want the 7 rows without a result", released, err)
	}
	rows := listed(t, db, c)
	for i, d := range ds {
		got := rows[d.ID]
		switch i {
		case 0:
			if got.State != queue.Delivered || got.Attempts != 1 || got.PossibleDuplicate {
				t.Errorf("delivered row: %+v", got)
			}
		case 1:
			if got.State != queue.Deferred || got.Attempts != 1 || got.PossibleDuplicate {
				t.Errorf("deferred row: %+v", got)
			}
		case 2:
			if got.State != queue.Pending || got.Attempts != 0 || got.PossibleDuplicate {
				t.Errorf("refunded row: state %s attempts %d dup %v; want pending, 0, not flagged", got.State, got.Attempts, got.PossibleDuplicate)
			}
		default:
			if got.State != queue.Pending || got.Attempts != 1 || !got.PossibleDuplicate || got.LeaseOwner != "" {
				t.Errorf("row in flight at the crash: state %s attempts %d dup %v owner %q", got.State, got.Attempts, got.PossibleDuplicate, got.LeaseOwner)
			}
		}
	}
	// A late result of the dead run for a released row does not apply.
	if n, err := db.Record(t.Context(), []store.AttemptResult{{DeliveryID: ds[5].ID, Attempt: 1, State: queue.Delivered, At: now}}); err != nil || n != 0 {
		t.Fatalf("late result applied: %d, %v", n, err)
	}
	// Next run: each released row alone (attempt 2, one crash counted),
	// then the fresh rows (attempt 1) with the refunded one (attempt 1).
	later := now.Add(time.Second)
	var all []store.Delivery
	var sizes []int
	for {
		got, err := db.Claim(t.Context(), c.ID, "w2", later, time.Minute, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			break
		}
		all, sizes = append(all, got...), append(sizes, len(got))
	}
	if fmt.Sprint(sizes) != "[1 1 1 1 1 1 1 11]" {
		t.Errorf("claims of %v rows; want the 7 released rows one by one, then the other 11", sizes)
	}
	for _, d := range all[:7] {
		if d.Crashes != 1 || d.Attempts != 2 {
			t.Errorf("released row %d claimed with %d crashes, attempt %d; want 1 and 2", d.ID, d.Crashes, d.Attempts)
		}
	}
	attempts := map[int64]int{}
	for _, d := range all {
		attempts[d.ID] = d.Attempts
	}
	if len(all) != 18 {
		t.Fatalf("second claim got %d rows, want 18 (all but the delivered and the deferred)", len(all))
	}
	for i, d := range ds {
		want := 2
		switch i {
		case 0, 1:
			want = 0 // not due
		case 2:
			want = 1
		}
		if attempts[d.ID] != want {
			t.Errorf("row %d claimed as attempt %d, want %d", i, attempts[d.ID], want)
		}
	}
	for _, d := range all[7:17] {
		if d.Attempts != 1 || d.ID <= ds[9].ID {
			t.Errorf("first of the second claim: row %d attempt %d; want the fresh rows after the first claim, attempt 1", d.ID, d.Attempts)
		}
	}
}

// A campaign imported before range claims (next_at = import time) is sent
// by per-row claims as before.
func TestRowsImportedBeforeRangeClaims(t *testing.T) {
	db := openTemp(t)
	c := importFresh(t, db, "old", 5)
	if _, err := db.w.ExecContext(context.Background(), `UPDATE deliveries SET next_at = created_at WHERE campaign_id = ?`, c.ID); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Add(time.Second)
	ds, err := db.Claim(t.Context(), c.ID, "w1", now, time.Minute, 10)
	if err != nil || len(ds) != 5 {
		t.Fatalf("claim: %d rows, %v", len(ds), err)
	}
	var claims int
	if err := db.w.QueryRow(`SELECT count(*) FROM claims`).Scan(&claims); err != nil || claims != 0 {
		t.Fatalf("%d range claims for rows claimed before, %v", claims, err)
	}
	if n, err := db.Record(t.Context(), []store.AttemptResult{{DeliveryID: ds[0].ID, Attempt: 1, State: queue.Delivered, At: now}}); err != nil || n != 1 {
		t.Fatalf("record: %d, %v", n, err)
	}
}

func counts(t *testing.T, db *DB, c *store.Campaign) *store.Counts {
	t.Helper()
	n, err := db.Counts(t.Context(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
