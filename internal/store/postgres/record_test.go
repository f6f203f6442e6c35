package postgres_test

import (
	"context"
	"testing"
	"time"

	"mailout/internal/peertest"
	"mailout/internal/queue"
	"mailout/internal/store"
)

// A batch that names a row twice is applied in the order given: the first
// result applies and moves the row out of sending, so the second one's
// fence no longer holds, even when the second is a refund (which a batch
// of distinct rows writes before the other results).
func TestRecordSameRowTwice(t *testing.T) {
	ctx := context.Background()
	db := open(t, peertest.Postgres(t).Schema(t))
	c := importN(t, db, "twice", 2)
	now := time.UnixMilli(time.Now().UnixMilli())
	ds, err := db.Claim(ctx, c.ID, "w", now, time.Minute, 2)
	if err != nil || len(ds) != 2 {
		t.Fatalf("Claim = %d rows, %v", len(ds), err)
	}
	x, y := ds[0], ds[1]
	later := now.Add(time.Hour)
	n, err := db.Record(ctx, []store.AttemptResult{
		{DeliveryID: x.ID, Attempt: 1, State: queue.Deferred, NextAt: later, Class: "greylisted", Code: 451, At: now},
		{DeliveryID: y.ID, Attempt: 1, State: queue.Delivered, Class: "delivered", Code: 250, At: now},
		{DeliveryID: x.ID, Attempt: 1, State: queue.Pending, NextAt: now, Refund: true, At: now},
		{DeliveryID: y.ID, Attempt: 1, State: queue.Failed, Class: "recipient-unknown", Code: 550, At: now},
	})
	if err != nil || n != 2 {
		t.Fatalf("Record = %d, %v; want the first result of each row applied", n, err)
	}
	want := map[int64]struct {
		state    queue.State
		attempts int
		code     int
	}{x.ID: {queue.Deferred, 1, 451}, y.ID: {queue.Delivered, 1, 250}}
	err = db.Deliveries(ctx, c.ID, store.DeliveryFilter{}, func(d *store.Delivery) error {
		if w := want[d.ID]; d.State != w.state || d.Attempts != w.attempts || d.Code != w.code {
			t.Errorf("row %d: %s attempts %d code %d; want %s %d %d", d.ID, d.State, d.Attempts, d.Code, w.state, w.attempts, w.code)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
