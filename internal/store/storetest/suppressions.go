package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"mailout/internal/queue"
	"mailout/internal/store"
)

func suppressions(t *testing.T, s store.Store) []store.Suppression {
	t.Helper()
	var out []store.Suppression
	if err := s.Suppressions(context.Background(), func(x *store.Suppression) error {
		out = append(out, *x)
		return nil
	}); err != nil {
		t.Fatalf("Suppressions: %v", err)
	}
	return out
}

// The list keeps each entry's details, the first entry for a key wins, a
// domain entry covers every address of the domain, and Unsuppress takes an
// entry off.
func testSuppressionList(t *testing.T, s store.Store) {
	ctx := context.Background()
	at := msNow().Add(-time.Hour)
	entries := []store.Suppression{
		{Key: "b@example.org", Reason: "unsubscribed", Source: "manual", At: at},
		{Key: "@spam.example", Reason: "complaint", Source: "list.csv", At: at},
		{Key: "a@example.org", Reason: store.ReasonHardBounce, Source: store.SourceBounce, Campaign: "spring",
			Code: 550, Enhanced: "5.1.1", Text: "no such user", At: at},
	}
	for _, e := range entries {
		if err := s.Suppress(ctx, e); err != nil {
			t.Fatalf("Suppress(%+v): %v", e, err)
		}
	}
	if err := s.Suppress(ctx, store.Suppression{Key: "a@example.org", Reason: "later"}); err != nil {
		t.Fatal(err)
	}
	got := suppressions(t, s)
	want := []store.Suppression{entries[1], entries[2], entries[0]} // key order
	if len(got) != len(want) {
		t.Fatalf("Suppressions = %+v, want %+v", got, want)
	}
	for i := range want {
		if g, w := got[i], want[i]; g.Key != w.Key || g.Reason != w.Reason || g.Source != w.Source ||
			g.Campaign != w.Campaign || g.Code != w.Code || g.Enhanced != w.Enhanced || g.Text != w.Text || !g.At.Equal(w.At) {
			t.Errorf("entry %d = %+v, want %+v", i, g, w)
		}
	}
	for key, want := range map[string]bool{"a@example.org": true, "x@spam.example": true, "c@example.org": false, "x@sub.spam.example": false} {
		if ok, err := s.IsSuppressed(ctx, key); err != nil || ok != want {
			t.Errorf("IsSuppressed(%q) = %v, %v; want %v", key, ok, err, want)
		}
	}
	if ok, err := s.Unsuppress(ctx, "b@example.org"); err != nil || !ok {
		t.Fatalf("Unsuppress(listed) = %v, %v", ok, err)
	}
	if ok, err := s.Unsuppress(ctx, "b@example.org"); err != nil || ok {
		t.Fatalf("Unsuppress(not listed) = %v, %v", ok, err)
	}
	if ok, _ := s.IsSuppressed(ctx, "b@example.org"); ok {
		t.Fatal("still suppressed after Unsuppress")
	}
}

// A hard bounce recorded with Suppress puts the address on the list in the
// same Record, with the campaign and the reply; a later campaign stores it
// suppressed, and a requeue does not send to it again.
func testHardBounceSuppressed(t *testing.T, s store.Store) {
	ctx := context.Background()
	c := importN(t, s, "bounces", 3)
	now := msNow()
	ds := claim(t, s, c.ID, now, 3)
	record(t, s, 3,
		store.AttemptResult{DeliveryID: ds[0].ID, Attempt: 1, State: queue.Failed, Class: "recipient-unknown",
			Code: 550, Enhanced: "5.1.1", Text: "no such user", Suppress: true, At: now},
		store.AttemptResult{DeliveryID: ds[1].ID, Attempt: 1, State: queue.Failed, Class: "mailbox-full",
			Code: 552, Enhanced: "5.2.2", Text: "over quota", At: now},
		store.AttemptResult{DeliveryID: ds[2].ID, Attempt: 1, State: queue.Delivered, Class: "delivered", At: now})
	// A stale result (the fence no longer holds) suppresses nothing.
	record(t, s, 0, store.AttemptResult{DeliveryID: ds[2].ID, Attempt: 1, State: queue.Failed,
		Class: "recipient-unknown", Suppress: true, At: now})
	got := suppressions(t, s)
	if len(got) != 1 {
		t.Fatalf("suppression list %+v, want only the hard bounce %s", got, ds[0].Key)
	}
	if g := got[0]; g.Key != ds[0].Key || g.Reason != store.ReasonHardBounce || g.Source != store.SourceBounce ||
		g.Campaign != "bounces" || g.Code != 550 || g.Enhanced != "5.1.1" || g.Text != "no such user" || !g.At.Equal(now) {
		t.Errorf("entry %+v: want reason %s, campaign bounces, 550 5.1.1 no such user at %v", g, store.ReasonHardBounce, now)
	}

	// retry: the bounce is not requeued, it is recorded as suppressed.
	if n, err := s.Requeue(ctx, c.ID, nil, now.Add(time.Minute)); err != nil || n != 1 {
		t.Fatalf("Requeue = %d, %v; want only the full mailbox", n, err)
	}
	if d := byID(t, s, c.ID, ds[0].ID); d.State != queue.Suppressed || d.Class != "recipient-unknown" {
		t.Errorf("bounced row after requeue: %s %s, want suppressed with its class kept", d.State, d.Class)
	}

	// A later campaign with the same addresses.
	c2 := importN(t, s, "next", 3)
	for _, d := range all(t, s, c2.ID, store.DeliveryFilter{}) {
		want := queue.Pending
		if d.Key == ds[0].Key {
			want = queue.Suppressed
		}
		if d.State != want {
			t.Errorf("%s in the next campaign: %s, want %s", d.Email, d.State, want)
		}
	}
}

// An address or domain suppressed after the import, while the campaign
// runs, is checked at claim time: it is not returned, it becomes
// suppressed with the reason, and its attempt is not counted.
func testSuppressedAtClaim(t *testing.T, s store.Store) {
	ctx := context.Background()
	c := importN(t, s, "claim-time", 9) // domains d0, d1, d2 in turn
	now := msNow()
	first := claim(t, s, c.ID, now, 3) // r0..r2, range claimed
	if err := s.Suppress(ctx, store.Suppression{Key: recipient(4).Key, Reason: "unsubscribed"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Suppress(ctx, store.Suppression{Key: "@d2.example", Reason: "domain closed"}); err != nil {
		t.Fatal(err)
	}
	// r2 (d2) was claimed before: refunded, it is due again and checked.
	record(t, s, 1, store.AttemptResult{DeliveryID: first[2].ID, Attempt: 1, State: queue.Pending, NextAt: now, Refund: true, At: now})
	got := claim(t, s, c.ID, now.Add(time.Second), 10)
	var emails []string
	for _, d := range got {
		emails = append(emails, d.Email)
	}
	slices.Sort(emails)
	want := []string{"r3@d0.example", "r6@d0.example", "r7@d1.example"}
	if !slices.Equal(emails, want) {
		t.Fatalf("claimed %v, want %v", emails, want)
	}
	for _, d := range all(t, s, c.ID, store.DeliveryFilter{States: []queue.State{queue.Suppressed}}) {
		if d.Attempts != 0 || d.Text == "" {
			t.Errorf("%s: suppressed with %d attempts, text %q; want 0 and the reason", d.Email, d.Attempts, d.Text)
		}
	}
	n := counts(t, s, c.ID)
	if n.ByState[queue.Suppressed] != 4 || n.ByState[queue.Sending] != 5 || n.Total != 9 {
		t.Fatalf("counts %+v; want r2, r4, r5, r8 suppressed and 5 sending", n.ByState)
	}
}
