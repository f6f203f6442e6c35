package storetest

import (
	"context"
	"testing"
	"time"

	"mailout/internal/store"
)

// testScheduled: a campaign created with a start time keeps it, and Claim
// hands out none of its deliveries before that time.
func testScheduled(t *testing.T, s store.Store) {
	ctx := context.Background()
	start := msNow().Add(time.Hour)
	c := &store.Campaign{Name: "later", Route: "sandbox", StartAt: start,
		Message: store.Message{Template: []byte("Subject: s\r\n\r\nbody"), TemplateName: "later.eml"}}
	if err := s.ImportCampaign(ctx, c, recipients(3)); err != nil {
		t.Fatal(err)
	}
	got, err := s.Campaign(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.StartAt.Equal(start) {
		t.Errorf("Campaign StartAt = %v, want %v", got.StartAt, start)
	}
	list, err := s.Campaigns(ctx)
	if err != nil || len(list) != 1 || !list[0].StartAt.Equal(start) {
		t.Fatalf("Campaigns = %+v, %v; want one with StartAt %v", list, err, start)
	}
	if early, err := s.Claim(ctx, c.ID, "w", start.Add(-time.Second), time.Minute, 10); err != nil || len(early) != 0 {
		t.Fatalf("Claim before the start time = %d rows, %v; want none", len(early), err)
	}
	if due, err := s.Claim(ctx, c.ID, "w", start, time.Minute, 10); err != nil || len(due) != 3 {
		t.Fatalf("Claim at the start time = %d rows, %v; want 3", len(due), err)
	}

	now := importN(t, s, "now", 1)
	if got, err := s.Campaign(ctx, now.ID); err != nil || !got.StartAt.IsZero() {
		t.Fatalf("unscheduled campaign StartAt = %v, %v; want zero", got.StartAt, err)
	}
}
