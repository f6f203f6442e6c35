package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"mailout/internal/store"
)

// A pending subscription is kept as asked, counted per address, confirmed
// once (a second confirmation changes nothing and logs nothing), and its
// confirmation is logged with the request's time, source and address.
func testConsentPending(t *testing.T, s store.Store) {
	ctx := context.Background()
	asked := msNow().Add(-time.Hour)
	p := &store.PendingSubscription{ListID: 7, Email: "Ann@Example.org", Domain: "example.org", Key: "ann@example.org",
		Fields: map[string]string{"name": "Ann"}, Source: "form https://m.example/s/x", IP: "192.0.2.7", CreatedAt: asked}
	if err := s.CreatePending(ctx, p); err != nil {
		t.Fatal(err)
	}
	if p.ID == 0 {
		t.Fatal("CreatePending left ID 0")
	}
	got, err := s.PendingSubscription(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Email != p.Email || got.Key != p.Key || got.Domain != p.Domain || got.Fields["name"] != "Ann" ||
		got.Source != p.Source || got.IP != p.IP || !got.CreatedAt.Equal(asked) || !got.ConfirmedAt.IsZero() || got.Message != nil {
		t.Fatalf("PendingSubscription = %+v, want %+v", got, p)
	}
	if _, err := s.PendingSubscription(ctx, p.ID+100); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("PendingSubscription(unknown) = %v, want ErrNotFound", err)
	}
	if err := s.SetPendingMessage(ctx, p.ID, []byte("Subject: confirm\r\n\r\nhi\r\n")); err != nil {
		t.Fatal(err)
	}
	if got, _ = s.PendingSubscription(ctx, p.ID); string(got.Message) != "Subject: confirm\r\n\r\nhi\r\n" {
		t.Fatalf("Message = %q", got.Message)
	}

	// Two more for the same address in another list, one long ago.
	for _, at := range []time.Time{msNow(), asked.Add(-48 * time.Hour)} {
		if err := s.CreatePending(ctx, &store.PendingSubscription{ListID: 8, Email: "ann@example.org", Domain: "example.org",
			Key: "ann@example.org", CreatedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.PendingCount(ctx, "ann@example.org", asked.Add(-time.Minute)); err != nil || n != 2 {
		t.Fatalf("PendingCount since an hour ago = %d, %v; want 2", n, err)
	}
	if n, err := s.PendingCount(ctx, "bob@example.org", time.Time{}); err != nil || n != 0 {
		t.Fatalf("PendingCount(other address) = %d, %v; want 0", n, err)
	}
	var listed []int64
	if err := s.PendingSubscriptions(ctx, 8, 0, func(p *store.PendingSubscription) error {
		listed = append(listed, p.ID)
		return nil
	}); err != nil || len(listed) != 2 || listed[0] < listed[1] {
		t.Fatalf("PendingSubscriptions(8) = %v, %v; want 2 rows newest first", listed, err)
	}

	confirmed := msNow()
	if ok, err := s.ConfirmPending(ctx, p.ID, confirmed); err != nil || !ok {
		t.Fatalf("ConfirmPending = %v, %v; want true", ok, err)
	}
	if ok, err := s.ConfirmPending(ctx, p.ID, confirmed.Add(time.Minute)); err != nil || ok {
		t.Fatalf("second ConfirmPending = %v, %v; want false", ok, err)
	}
	if _, err := s.ConfirmPending(ctx, p.ID+100, confirmed); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ConfirmPending(unknown) = %v, want ErrNotFound", err)
	}
	if got, _ = s.PendingSubscription(ctx, p.ID); !got.ConfirmedAt.Equal(confirmed) {
		t.Fatalf("ConfirmedAt = %v, want %v", got.ConfirmedAt, confirmed)
	}
	cs := consents(t, s, 7, "")
	if len(cs) != 1 {
		t.Fatalf("consent log has %d entries, want 1: %+v", len(cs), cs)
	}
	c := cs[0]
	if c.ListID != 7 || c.Email != p.Email || c.Key != p.Key || c.Action != store.ConsentSubscribe || c.Source != p.Source ||
		c.IP != p.IP || !c.RequestedAt.Equal(asked) || !c.ConfirmedAt.Equal(confirmed) || c.At.IsZero() {
		t.Fatalf("consent = %+v", c)
	}
}

// The log is appended to and read back per list (with the entries of
// every list) and per address, in the order recorded.
func testConsentLog(t *testing.T, s store.Store) {
	ctx := context.Background()
	at := msNow()
	entries := []store.Consent{
		{ListID: 1, Email: "a@example.org", Key: "a@example.org", Action: store.ConsentSubscribe, Source: "import:a.csv", At: at},
		{ListID: 2, Email: "a@example.org", Key: "a@example.org", Action: store.ConsentSubscribe, Source: store.ConsentManual, At: at},
		{ListID: 0, Email: "a@example.org", Key: "a@example.org", Action: store.ConsentUnsubscribe, Source: "one-click spring", IP: "2001:db8::1", At: at.Add(time.Second)},
		{ListID: 1, Email: "b@example.org", Key: "b@example.org", Action: store.ConsentSubscribe, Source: store.ConsentManual},
	}
	for i := range entries {
		if err := s.AddConsent(ctx, &entries[i]); err != nil {
			t.Fatal(err)
		}
		if entries[i].ID == 0 || entries[i].At.IsZero() {
			t.Fatalf("AddConsent left ID or At unset: %+v", entries[i])
		}
	}
	got := consents(t, s, 1, "")
	if len(got) != 3 || got[0].ID != entries[0].ID || got[1].ID != entries[2].ID || got[2].ID != entries[3].ID {
		t.Fatalf("Consents(list 1) = %+v, want entries 1, 3 and 4", got)
	}
	if got[1].Action != store.ConsentUnsubscribe || got[1].IP != "2001:db8::1" || got[1].Source != "one-click spring" ||
		!got[1].At.Equal(at.Add(time.Second)) || !got[1].RequestedAt.IsZero() {
		t.Fatalf("unsubscribe entry = %+v", got[1])
	}
	if got := consents(t, s, 1, "b@example.org"); len(got) != 1 || got[0].Email != "b@example.org" {
		t.Fatalf("Consents(list 1, b) = %+v", got)
	}
	if got := consents(t, s, 2, "a@example.org"); len(got) != 2 || got[0].ListID != 2 || got[1].ListID != 0 {
		t.Fatalf("Consents(list 2, a) = %+v", got)
	}
}

// An import with consent logs one subscribe entry, with the import's
// source, for each subscriber it added, and none for one it updated; an
// import without consent (its caller logs its own) logs nothing.
func testConsentFromImport(t *testing.T, s store.Store) {
	ctx := context.Background()
	l := newList(t, s, "imported")
	other := newList(t, s, "other")
	importInto(t, s, other.ID, "web", subscriber(2, "old@example.org"))
	importInto(t, s, l.ID, "web", subscriber(2, "old@example.org"))
	if got := consents(t, s, l.ID, ""); len(got) != 0 {
		t.Fatalf("an import without consent logged %+v", got)
	}
	added, updated, err := s.ImportSubscribers(ctx, l.ID, "import:spring.csv", true, rows(
		subscriber(2, "new1@example.org"), subscriber(3, "old@example.org", "name", "Old"), subscriber(4, "new2@example.org")))
	if err != nil || added != 2 || updated != 1 {
		t.Fatalf("import: %d added, %d updated, %v", added, updated, err)
	}
	got := consents(t, s, l.ID, "")
	if len(got) != 2 || got[0].Key != "new1@example.org" || got[1].Key != "new2@example.org" {
		t.Fatalf("consents after the import = %+v, want new1 then new2", got)
	}
	for _, c := range got {
		if c.ListID != l.ID || c.Action != store.ConsentSubscribe || c.Source != "import:spring.csv" || c.At.IsZero() || c.Email != c.Key {
			t.Errorf("consent entry %+v", c)
		}
	}
	if got := consents(t, s, other.ID, ""); len(got) != 0 {
		t.Errorf("the other list got consent entries: %+v", got)
	}
}

func consents(t *testing.T, s store.Store, listID int64, key string) []store.Consent {
	t.Helper()
	var out []store.Consent
	if err := s.Consents(context.Background(), listID, key, func(c *store.Consent) error {
		out = append(out, *c)
		return nil
	}); err != nil {
		t.Fatalf("Consents: %v", err)
	}
	return out
}
