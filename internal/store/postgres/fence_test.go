package postgres_test

import (
	"context"
	"testing"
	"time"

	"mailout/internal/outcome"
	"mailout/internal/peertest"
	"mailout/internal/queue"
	"mailout/internal/store"
)

// A worker whose lease expired (it stalled, or lost the database for a
// while) cannot overwrite the result of the worker that took its row
// over: the attempt fence skips its late result.
func TestLateWorkerCannotOverwriteNewerResult(t *testing.T) {
	pg := peertest.Postgres(t)
	db := open(t, pg.Schema(t))
	ctx := context.Background()
	c := &store.Campaign{Name: "fence", Status: store.CampaignRunning, Route: "relay", MaxAge: time.Hour, RetryMin: time.Minute,
		Message: store.Message{Template: []byte("From: a@example.com\n\nhi\n")}}
	done := false
	if err := db.ImportCampaign(ctx, c, func() (*store.NewRecipient, error) {
		if done {
			return nil, nil
		}
		done = true
		return &store.NewRecipient{Line: 2, Email: "bob@example.org", Domain: "example.org", Key: "bob@example.org"}, nil
	}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	slow, err := db.Claim(ctx, c.ID, "slow", t0, time.Second, 10)
	if err != nil || len(slow) != 1 {
		t.Fatalf("claim: %v %v", slow, err)
	}
	// The slow worker's lease ends; another worker takes the row back
	// and sends it: a temporary failure, deferred.
	if n, err := db.ReleaseLeases(ctx, c.ID, t0.Add(2*time.Second)); err != nil || n != 1 {
		t.Fatalf("release: %d %v", n, err)
	}
	fast, err := db.Claim(ctx, c.ID, "fast", t0.Add(2*time.Second), time.Minute, 10)
	if err != nil || len(fast) != 1 {
		t.Fatalf("claim by the other worker: %v %v", fast, err)
	}
	newer := store.AttemptResult{DeliveryID: fast[0].ID, Attempt: fast[0].Attempts, State: queue.Delivered,
		Class: outcome.Delivered, Code: 250, Via: "relay:b", At: t0.Add(3 * time.Second)}
	if n, err := db.Record(ctx, []store.AttemptResult{newer}); err != nil || n != 1 {
		t.Fatalf("record the newer result: %d %v", n, err)
	}
	late := store.AttemptResult{DeliveryID: slow[0].ID, Attempt: slow[0].Attempts, State: queue.Failed,
		Class: outcome.RecipientUnknown, Code: 550, Via: "relay:a", At: t0.Add(4 * time.Second)}
	if n, err := db.Record(ctx, []store.AttemptResult{late}); err != nil || n != 0 {
		t.Fatalf("the late result was applied (%d, %v); want it skipped", n, err)
	}
	var got *store.Delivery
	if err := db.Deliveries(ctx, c.ID, store.DeliveryFilter{}, func(d *store.Delivery) error { got = d; return nil }); err != nil {
		t.Fatal(err)
	}
	if got.State != queue.Delivered || got.Via != "relay:b" || got.Code != 250 {
		t.Fatalf("stored %s via %s (%d); want the newer worker's delivery", got.State, got.Via, got.Code)
	}
}
