package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"mailout/internal/outcome"
	"mailout/internal/queue"
	"mailout/internal/store"
)

// A bounce read after delivery fails the delivered row with the bounce's
// class, keeps its DeliveredAt, suppresses a hard bounce once; a complaint
// suppresses with reason complaint; a second application changes nothing.
func testBounceAfterDelivery(t *testing.T, s store.Store) {
	ctx := context.Background()
	c := importN(t, s, "late", 3)
	now := msNow()
	ds := claim(t, s, c.ID, now, 3)
	record(t, s, 3,
		store.AttemptResult{DeliveryID: ds[0].ID, Attempt: 1, State: queue.Delivered, Class: outcome.Delivered, MessageID: "m0@example.com", At: now},
		store.AttemptResult{DeliveryID: ds[1].ID, Attempt: 1, State: queue.Delivered, Class: outcome.Delivered, MessageID: "m1@example.com", At: now},
		store.AttemptResult{DeliveryID: ds[2].ID, Attempt: 1, State: queue.Delivered, Class: outcome.Delivered, MessageID: "m2@example.com", At: now})

	d, err := s.DeliveryByMessageID(ctx, "m1@example.com")
	if err != nil || d.ID != ds[1].ID || d.CampaignID != c.ID {
		t.Fatalf("DeliveryByMessageID = %+v, %v; want delivery %d", d, err, ds[1].ID)
	}
	if _, err := s.DeliveryByMessageID(ctx, "nope@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DeliveryByMessageID(unknown) = %v, want ErrNotFound", err)
	}

	later := now.Add(time.Hour)
	hard := store.Bounce{CampaignID: c.ID, DeliveryID: ds[0].ID, Attempt: 1, Class: outcome.RecipientUnknown,
		Code: 550, Enhanced: "5.1.1", Text: "user unknown", Suppress: true, At: later}
	for i, want := range []bool{true, false} {
		if ok, err := s.ApplyBounce(ctx, hard); err != nil || ok != want {
			t.Fatalf("ApplyBounce #%d = %v, %v; want %v", i+1, ok, err, want)
		}
	}
	// The wrong campaign is no match.
	if ok, err := s.ApplyBounce(ctx, store.Bounce{CampaignID: c.ID + 1, DeliveryID: ds[1].ID, Class: outcome.RecipientUnknown}); err != nil || ok {
		t.Fatalf("ApplyBounce(other campaign) = %v, %v", ok, err)
	}
	complaint := store.Bounce{CampaignID: c.ID, DeliveryID: ds[2].ID, Complaint: true, Suppress: true, At: later}
	for i, want := range []bool{true, false} {
		if ok, err := s.ApplyBounce(ctx, complaint); err != nil || ok != want {
			t.Fatalf("ApplyBounce(complaint) #%d = %v, %v; want %v", i+1, ok, err, want)
		}
	}

	b := byID(t, s, c.ID, ds[0].ID)
	if b.State != queue.Failed || b.Class != outcome.RecipientUnknown || b.Code != 550 || b.Enhanced != "5.1.1" ||
		!b.BouncedAt.Equal(later) || !b.DeliveredAt.Equal(now) {
		t.Errorf("bounced row %s %s %d %s bounced %v delivered %v; want failed recipient-unknown 550 5.1.1 bounced %v delivered %v",
			b.State, b.Class, b.Code, b.Enhanced, b.BouncedAt, b.DeliveredAt, later, now)
	}
	cr := byID(t, s, c.ID, ds[2].ID)
	if cr.State != queue.Delivered || !cr.ComplainedAt.Equal(later) || !cr.BouncedAt.IsZero() {
		t.Errorf("complained row %s complained %v bounced %v; want delivered, complained %v", cr.State, cr.ComplainedAt, cr.BouncedAt, later)
	}
	got := suppressions(t, s)
	if len(got) != 2 {
		t.Fatalf("suppression list %+v, want the hard bounce and the complaint", got)
	}
	reasons := map[string]store.Suppression{}
	for _, g := range got {
		reasons[g.Key] = g
	}
	if g := reasons[ds[0].Key]; g.Reason != store.ReasonHardBounce || g.Source != store.SourceBounce || g.Campaign != "late" || g.Enhanced != "5.1.1" {
		t.Errorf("hard bounce entry %+v", g)
	}
	if g := reasons[ds[2].Key]; g.Reason != store.ReasonComplaint || g.Source != store.SourceFeedbackLoop || g.Campaign != "late" {
		t.Errorf("complaint entry %+v", g)
	}
	counts, err := s.Counts(ctx, c.ID)
	if err != nil || counts.ByState[queue.Delivered] != 2 || counts.ByState[queue.Failed] != 1 || counts.ByClass[outcome.RecipientUnknown] != 1 {
		t.Errorf("counts %+v, %v; want 2 delivered, 1 failed recipient-unknown", counts, err)
	}
}

// Messages kept for review are kept once per mailbox and UID; a mailbox's
// processed UIDs are remembered.
func testBounceReviewsAndSeen(t *testing.T, s store.Store) {
	ctx := context.Background()
	r := store.Review{Mailbox: "pop3://bounces@mail.example", UID: "u1", Reason: "not a bounce", Subject: "Out of office", Sender: "a@example.org", Data: []byte("raw")}
	for i, want := range []bool{true, false} {
		if ok, err := s.KeepForReview(ctx, r); err != nil || ok != want {
			t.Fatalf("KeepForReview #%d = %v, %v; want %v", i+1, ok, err, want)
		}
	}
	var got []store.Review
	if err := s.Reviews(ctx, func(r *store.Review) error { got = append(got, *r); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].UID != "u1" || string(got[0].Data) != "raw" || got[0].Subject != "Out of office" || got[0].At.IsZero() {
		t.Fatalf("Reviews = %+v", got)
	}
	if ok, err := s.MailboxSeen(ctx, "m", "1"); err != nil || ok {
		t.Fatalf("MailboxSeen before = %v, %v", ok, err)
	}
	for range 2 {
		if err := s.MarkMailboxSeen(ctx, "m", "1", msNow()); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := s.MailboxSeen(ctx, "m", "1"); err != nil || !ok {
		t.Fatalf("MailboxSeen after = %v, %v", ok, err)
	}
	if ok, _ := s.MailboxSeen(ctx, "other", "1"); ok {
		t.Fatal("seen in another mailbox")
	}
}
