package storetest

import (
	"context"
	"testing"
	"time"

	"mailout/internal/outcome"
	"mailout/internal/queue"
	"mailout/internal/store"
)

// Feedback counts the accepted messages (a later bounce included), the
// complaints and the later bounces of one campaign only.
func testFeedback(t *testing.T, s store.Store) {
	ctx := context.Background()
	c := importN(t, s, "feedback", 5)
	other := importN(t, s, "other", 2)
	now := msNow()
	ds := claim(t, s, c.ID, now, 5)
	var rs []store.AttemptResult
	for i, d := range ds {
		st, cl := queue.Delivered, outcome.Delivered
		if i == 4 {
			st, cl = queue.Failed, outcome.RecipientUnknown
		}
		rs = append(rs, store.AttemptResult{DeliveryID: d.ID, Attempt: 1, State: st, Class: cl, At: now})
	}
	record(t, s, 5, rs...)
	od := claim(t, s, other.ID, now, 2)
	record(t, s, 1, store.AttemptResult{DeliveryID: od[0].ID, Attempt: 1, State: queue.Delivered, Class: outcome.Delivered, At: now})
	later := now.Add(time.Hour)
	for _, b := range []store.Bounce{
		{CampaignID: c.ID, DeliveryID: ds[0].ID, Complaint: true, At: later},
		{CampaignID: c.ID, DeliveryID: ds[1].ID, Class: outcome.RecipientUnknown, Code: 550, At: later},
		{CampaignID: other.ID, DeliveryID: od[0].ID, Complaint: true, At: later},
	} {
		if _, err := s.ApplyBounce(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	f, err := s.Feedback(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := (store.Feedback{Delivered: 4, Complaints: 1, LaterBounces: 1}); f != want {
		t.Fatalf("Feedback = %+v, want %+v", f, want)
	}
	if f, err := s.Feedback(ctx, c.ID+other.ID+10); err != nil || f != (store.Feedback{}) {
		t.Fatalf("Feedback(unknown campaign) = %+v, %v; want zeros", f, err)
	}
}
