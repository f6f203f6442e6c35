package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"mailout/internal/outcome"
	"mailout/internal/queue"
	"mailout/internal/store"
)

func testImportRoundTrip(t *testing.T, s store.Store) {
	ctx := context.Background()
	c := &store.Campaign{
		Name:         "spring",
		Status:       store.CampaignRunning,
		Route:        "relay",
		RouteConfig:  []byte(`{"host":"smtp.example","port":587}`),
		Profile:      []byte(`{"name":"slow"}`),
		MaxAge:       72 * time.Hour,
		RetryMin:     5 * time.Minute,
		StatusReason: "",
		Message: store.Message{
			Template:     []byte("Subject: Hi {{.name}}\r\n\r\nHello\r\n.\r\n"),
			TemplateName: "spring.eml",
			HTML:         []byte("<p>Hello</p>"),
			HTMLName:     "spring.html",
			Attachments: []store.Attachment{
				{Name: "b.pdf", ContentType: "application/pdf", Data: []byte{0, 1, 2, 0xff}},
				{Name: "a.txt", ContentType: "text/plain", Data: []byte("text")},
			},
		},
	}
	before := msNow()
	if err := s.ImportCampaign(ctx, c, recipients(5)); err != nil {
		t.Fatalf("ImportCampaign: %v", err)
	}
	if c.ID == 0 {
		t.Fatal("ImportCampaign did not set the ID")
	}
	if c.CreatedAt.Before(before) || c.CreatedAt.After(time.Now()) {
		t.Fatalf("CreatedAt = %v, want between %v and now", c.CreatedAt, before)
	}
	for _, get := range []struct {
		name string
		fn   func() (*store.Campaign, error)
	}{
		{"Campaign", func() (*store.Campaign, error) { return s.Campaign(ctx, c.ID) }},
		{"CampaignByName", func() (*store.Campaign, error) { return s.CampaignByName(ctx, c.Name) }},
	} {
		got, err := get.fn()
		if err != nil {
			t.Fatalf("%s: %v", get.name, err)
		}
		if err := sameCampaign(got, c, true); err != nil {
			t.Errorf("%s: %v", get.name, err)
		}
	}
	ds := all(t, s, c.ID, store.DeliveryFilter{})
	if len(ds) != 5 {
		t.Fatalf("got %d deliveries, want 5", len(ds))
	}
	for i, d := range ds {
		r := recipient(i)
		if d.CampaignID != c.ID || d.Line != r.Line || d.Email != r.Email || d.Domain != r.Domain || d.Key != r.Key {
			t.Errorf("delivery %d = %+v, want recipient %+v", i, d, r)
		}
		if !maps.Equal(d.Fields, r.Fields) {
			t.Errorf("delivery %d fields = %v, want %v", i, d.Fields, r.Fields)
		}
		if d.State != queue.Pending || d.Attempts != 0 || d.PossibleDuplicate || d.LeaseOwner != "" {
			t.Errorf("delivery %d: state %s attempts %d dup %v owner %q, want a fresh pending row", i, d.State, d.Attempts, d.PossibleDuplicate, d.LeaseOwner)
		}
		if d.NextAt.After(time.Now()) || d.CreatedAt.IsZero() {
			t.Errorf("delivery %d: NextAt %v CreatedAt %v: want due at once", i, d.NextAt, d.CreatedAt)
		}
		if i > 0 && d.ID <= ds[i-1].ID {
			t.Errorf("deliveries not in id order: %d after %d", d.ID, ds[i-1].ID)
		}
	}
}

// sameCampaign compares what a caller set; withBody compares the message.
func sameCampaign(got, want *store.Campaign, withBody bool) error {
	switch {
	case got.ID != want.ID, got.Name != want.Name, !got.CreatedAt.Equal(want.CreatedAt),
		got.Status != want.Status, got.StatusReason != want.StatusReason, got.Route != want.Route,
		!bytes.Equal(got.RouteConfig, want.RouteConfig), !bytes.Equal(got.Profile, want.Profile),
		got.MaxAge != want.MaxAge, got.RetryMin != want.RetryMin, !bytes.Equal(got.Diagnosis, want.Diagnosis),
		got.Message.TemplateName != want.Message.TemplateName, got.Message.HTMLName != want.Message.HTMLName:
		return fmt.Errorf("got %+v, want %+v", got, want)
	}
	if !withBody {
		if got.Message.Template != nil || got.Message.HTML != nil || got.Message.Attachments != nil {
			return errors.New("campaign list carries message bodies")
		}
		return nil
	}
	if !bytes.Equal(got.Message.Template, want.Message.Template) || !bytes.Equal(got.Message.HTML, want.Message.HTML) {
		return fmt.Errorf("message bodies differ: got %q / %q", got.Message.Template, got.Message.HTML)
	}
	if len(got.Message.Attachments) != len(want.Message.Attachments) {
		return fmt.Errorf("got %d attachments, want %d", len(got.Message.Attachments), len(want.Message.Attachments))
	}
	for i, a := range got.Message.Attachments {
		w := want.Message.Attachments[i]
		if a.Name != w.Name || a.ContentType != w.ContentType || !bytes.Equal(a.Data, w.Data) {
			return fmt.Errorf("attachment %d = %q %q %x, want %q %q %x", i, a.Name, a.ContentType, a.Data, w.Name, w.ContentType, w.Data)
		}
	}
	return nil
}

func testImportAtomic(t *testing.T, s store.Store) {
	ctx := context.Background()
	broken := errors.New("csv: bad quote")
	for _, failAt := range []int{0, 5, 250} {
		i := 0
		next := func() (*store.NewRecipient, error) {
			if i == failAt {
				return nil, broken
			}
			i++
			return recipient(i - 1), nil
		}
		err := s.ImportCampaign(ctx, &store.Campaign{Name: "half"}, next)
		if !errors.Is(err, broken) {
			t.Fatalf("import failing at %d: err = %v, want it to wrap %v", failAt, err, broken)
		}
		if _, err := s.CampaignByName(ctx, "half"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("after a failed import: CampaignByName err = %v, want ErrNotFound", err)
		}
		cs, err := s.Campaigns(ctx)
		if err != nil || len(cs) != 0 {
			t.Fatalf("after a failed import: Campaigns = %v, %v; want none", cs, err)
		}
	}
	// The name is free and no orphan recipient joins the next import.
	c := importN(t, s, "half", 3)
	if got := counts(t, s, c.ID).Total; got != 3 {
		t.Fatalf("Total = %d after a clean import of 3", got)
	}
}

func testDuplicateName(t *testing.T, s store.Store) {
	c := importN(t, s, "dup", 2)
	err := s.ImportCampaign(context.Background(), &store.Campaign{Name: "dup"}, recipients(7))
	if !errors.Is(err, store.ErrExists) {
		t.Fatalf("second import of the same name: err = %v, want ErrExists", err)
	}
	if got := counts(t, s, c.ID).Total; got != 2 {
		t.Fatalf("first campaign has %d deliveries after the refused import, want 2", got)
	}
}

func testSuppressedAtImport(t *testing.T, s store.Store) {
	ctx := context.Background()
	key := recipient(1).Key
	if ok, err := s.IsSuppressed(ctx, key); err != nil || ok {
		t.Fatalf("IsSuppressed before Suppress = %v, %v", ok, err)
	}
	for range 2 { // idempotent
		if err := s.Suppress(ctx, store.Suppression{Key: key, Reason: "hard bounce 5.1.1"}); err != nil {
			t.Fatalf("Suppress: %v", err)
		}
	}
	if ok, err := s.IsSuppressed(ctx, key); err != nil || !ok {
		t.Fatalf("IsSuppressed after Suppress = %v, %v", ok, err)
	}
	if ok, _ := s.IsSuppressed(ctx, recipient(2).Key); ok {
		t.Fatal("another key reported suppressed")
	}
	c := importN(t, s, "with-suppressed", 4)
	for _, d := range all(t, s, c.ID, store.DeliveryFilter{}) {
		want := queue.Pending
		if d.Key == key {
			want = queue.Suppressed
		}
		if d.State != want {
			t.Errorf("%s: state %s, want %s", d.Email, d.State, want)
		}
	}
	n := counts(t, s, c.ID)
	if n.ByState[queue.Suppressed] != 1 || n.ByState[queue.Pending] != 3 || n.Total != 4 {
		t.Fatalf("counts = %+v, want 1 suppressed and 3 pending", n)
	}
	got := claim(t, s, c.ID, msNow(), 10)
	if len(got) != 3 || slices.ContainsFunc(got, func(d store.Delivery) bool { return d.Key == key }) {
		t.Fatalf("claimed %v, want the 3 unsuppressed rows", ids(got))
	}
}

func testMessages(t *testing.T, s store.Store) {
	ctx := context.Background()
	c := importN(t, s, "sandbox", 3)
	other := importN(t, s, "other", 1)
	ds := all(t, s, c.ID, store.DeliveryFilter{})
	// Bytes a text round trip would damage: CRLF, a lone dot line, NUL,
	// invalid UTF-8, a bare CR.
	raw := []byte("Subject: x\r\n\r\n.\r\nline\x00\xff\xfe\rend\r\n")
	msgs := map[int64][]byte{ds[2].ID: raw, ds[0].ID: []byte("first\r\n")}
	for id, data := range msgs {
		if err := s.SaveMessage(ctx, c.ID, id, fmt.Sprintf("<%d@mailout.test>", id), data); err != nil {
			t.Fatalf("SaveMessage: %v", err)
		}
	}
	msgs[ds[0].ID] = []byte("replaced\r\n")
	if err := s.SaveMessage(ctx, c.ID, ds[0].ID, "<new@mailout.test>", msgs[ds[0].ID]); err != nil {
		t.Fatalf("SaveMessage (replace): %v", err)
	}
	otherID := all(t, s, other.ID, store.DeliveryFilter{})[0].ID
	for _, id := range []int64{otherID, ds[2].ID + 1000} {
		if err := s.SaveMessage(ctx, c.ID, id, "<x@y>", raw); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("SaveMessage for delivery %d not in the campaign: err = %v, want ErrNotFound", id, err)
		}
	}
	var got []int64
	err := s.Messages(ctx, c.ID, func(id int64, email, mid string, data []byte) error {
		got = append(got, id)
		want := msgs[id]
		wantMID := fmt.Sprintf("<%d@mailout.test>", id)
		if id == ds[0].ID {
			wantMID = "<new@mailout.test>"
		}
		if !bytes.Equal(data, want) || mid != wantMID || email != byID(t, s, c.ID, id).Email {
			t.Errorf("message %d = %q %q %q, want %q %q", id, email, mid, data, wantMID, want)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Messages: %v", err)
	}
	if want := []int64{ds[0].ID, ds[2].ID}; !slices.Equal(got, want) {
		t.Fatalf("messages of deliveries %v, want %v in delivery order", got, want)
	}
	if err := s.Messages(ctx, other.ID, func(int64, string, string, []byte) error {
		return errors.New("the other campaign has no messages")
	}); err != nil {
		t.Fatal(err)
	}
}

func testCampaignsStatus(t *testing.T, s store.Store) {
	ctx := context.Background()
	var made []*store.Campaign
	for _, name := range []string{"one", "two", "three"} {
		c := &store.Campaign{Name: name, Route: "sandbox", Message: store.Message{Template: []byte("Subject: s\r\n\r\nbody"), TemplateName: name + ".eml"}}
		if err := s.ImportCampaign(ctx, c, recipients(1)); err != nil {
			t.Fatal(err)
		}
		if c.Status != store.CampaignRunning {
			t.Errorf("new campaign status %q, want running", c.Status)
		}
		made = append(made, c)
	}
	if err := s.SetCampaignStatus(ctx, made[1].ID, store.CampaignPaused, "nothing gets out: port 25 blocked"); err != nil {
		t.Fatalf("SetCampaignStatus: %v", err)
	}
	made[1].Status, made[1].StatusReason = store.CampaignPaused, "nothing gets out: port 25 blocked"
	list, err := s.Campaigns(ctx)
	if err != nil {
		t.Fatalf("Campaigns: %v", err)
	}
	if len(list) != 3 {
		t.Fatalf("Campaigns listed %d, want 3", len(list))
	}
	for i, c := range list {
		if err := sameCampaign(&c, made[2-i], false); err != nil {
			t.Errorf("Campaigns[%d] (newest first): %v", i, err)
		}
	}
	for _, st := range []store.CampaignStatus{store.CampaignRunning, store.CampaignDone, store.CampaignCancelled} {
		if err := s.SetCampaignStatus(ctx, made[0].ID, st, ""); err != nil {
			t.Fatalf("SetCampaignStatus(%s): %v", st, err)
		}
		if c, err := s.Campaign(ctx, made[0].ID); err != nil || c.Status != st || c.StatusReason != "" {
			t.Fatalf("after SetCampaignStatus(%s): %+v, %v", st, c, err)
		}
	}
	if err := s.SetCampaignStatus(ctx, made[0].ID, "exploded", ""); err == nil {
		t.Error("SetCampaignStatus accepted an unknown status")
	}
	if err := s.SetCampaignStatus(ctx, 9999, store.CampaignPaused, ""); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetCampaignStatus(unknown) err = %v, want ErrNotFound", err)
	}
}

func testDiagnosis(t *testing.T, s store.Store) {
	ctx := context.Background()
	c := importN(t, s, "diag", 1)
	diag := []byte(`{"checks":[{"code":"port25-blocked","severity":"error"}],"note":"ñ"}`)
	if err := s.SetDiagnosis(ctx, c.ID, diag); err != nil {
		t.Fatalf("SetDiagnosis: %v", err)
	}
	got, err := s.Campaign(ctx, c.ID)
	if err != nil || !bytes.Equal(got.Diagnosis, diag) {
		t.Fatalf("Diagnosis = %q, %v; want %q", got.Diagnosis, err, diag)
	}
	if err := s.SetDiagnosis(ctx, 9999, diag); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetDiagnosis(unknown) err = %v, want ErrNotFound", err)
	}
}

func testSetRouteConfig(t *testing.T, s store.Store) {
	ctx := context.Background()
	c := importN(t, s, "fix", 1)
	cfg := []byte(`{"relays":["smtps://u@relay.example:465?password-env=P"],"message_id_salt":"x"}`)
	if err := s.SetRouteConfig(ctx, c.ID, cfg); err != nil {
		t.Fatalf("SetRouteConfig: %v", err)
	}
	got, err := s.Campaign(ctx, c.ID)
	if err != nil || !bytes.Equal(got.RouteConfig, cfg) || got.Route != c.Route {
		t.Fatalf("RouteConfig = %q (route %q), %v; want %q, route kept", got.RouteConfig, got.Route, err, cfg)
	}
	if err := s.SetRouteConfig(ctx, 9999, cfg); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetRouteConfig(unknown) err = %v, want ErrNotFound", err)
	}
}

func testDomains(t *testing.T, s store.Store) {
	c := importN(t, s, "domains", 7)
	importN(t, s, "other", 1)
	got, err := s.Domains(context.Background(), c.ID)
	if want := []string{"d0.example", "d1.example", "d2.example"}; err != nil || !slices.Equal(got, want) {
		t.Fatalf("Domains = %v, %v; want %v", got, err, want)
	}
}

func testDomainTallies(t *testing.T, s store.Store) {
	c := importN(t, s, "tallies", 7) // d0: 3 recipients, d1 and d2: 2
	importN(t, s, "tallies-other", 1)
	now := msNow().Add(time.Second)
	ds := claim(t, s, c.ID, now, 7)
	if ds[0].Domain != "d0.example" || ds[3].Domain != "d0.example" || ds[1].Domain != "d1.example" {
		t.Fatalf("claimed domains %s %s %s, want d0 d0 d1", ds[0].Domain, ds[3].Domain, ds[1].Domain)
	}
	record(t, s, 3,
		store.AttemptResult{DeliveryID: ds[0].ID, Attempt: 1, State: queue.Delivered, Class: "delivered", Host: "mx1.d0.example", At: now},
		store.AttemptResult{DeliveryID: ds[3].ID, Attempt: 1, State: queue.Failed, Class: "recipient-unknown", Host: "mx1.d0.example", At: now},
		store.AttemptResult{DeliveryID: ds[1].ID, Attempt: 1, State: queue.Deferred, Class: "greylisted", Host: "mx.d1.example",
			NextAt: now.Add(time.Hour), At: now})
	got, err := s.DomainTallies(context.Background(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	type key struct {
		domain string
		state  queue.State
		class  outcome.Class
		host   string
	}
	sum := map[key]int{}
	for i, tl := range got {
		if i > 0 && got[i-1].Domain > tl.Domain {
			t.Errorf("tallies not sorted by domain: %q after %q", tl.Domain, got[i-1].Domain)
		}
		state := tl.State
		if state == queue.Sending {
			state = queue.Pending // a store may keep claimed rows as pending
		}
		sum[key{tl.Domain, state, tl.Class, tl.Host}] += tl.N
	}
	want := map[key]int{
		{"d0.example", queue.Delivered, "delivered", "mx1.d0.example"}:      1,
		{"d0.example", queue.Failed, "recipient-unknown", "mx1.d0.example"}: 1,
		{"d0.example", queue.Pending, "", ""}:                               1,
		{"d1.example", queue.Deferred, "greylisted", "mx.d1.example"}:       1,
		{"d1.example", queue.Pending, "", ""}:                               1,
		{"d2.example", queue.Pending, "", ""}:                               2,
	}
	if !maps.Equal(sum, want) {
		t.Errorf("DomainTallies = %v, want %v", sum, want)
	}
}

func testUnknownCampaign(t *testing.T, s store.Store) {
	ctx := context.Background()
	const id = 4242
	now := msNow()
	calls := map[string]func() error{
		"Campaign":       func() error { _, err := s.Campaign(ctx, id); return err },
		"CampaignByName": func() error { _, err := s.CampaignByName(ctx, "nope"); return err },
		"Claim":          func() error { _, err := s.Claim(ctx, id, "w", now, time.Minute, 10); return err },
		"ReleaseLeases":  func() error { _, err := s.ReleaseLeases(ctx, id, now); return err },
		"Requeue":        func() error { _, err := s.Requeue(ctx, id, nil, now); return err },
		"Counts":         func() error { _, err := s.Counts(ctx, id); return err },
		"Domains":        func() error { _, err := s.Domains(ctx, id); return err },
		"DomainTallies":  func() error { _, err := s.DomainTallies(ctx, id); return err },
		"Deliveries": func() error {
			return s.Deliveries(ctx, id, store.DeliveryFilter{}, func(*store.Delivery) error { return nil })
		},
		"Messages": func() error {
			return s.Messages(ctx, id, func(int64, string, string, []byte) error { return nil })
		},
	}
	for _, name := range slices.Sorted(maps.Keys(calls)) {
		if err := calls[name](); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s of an unknown campaign: err = %v, want ErrNotFound", name, err)
		}
	}
	if n, err := s.Record(ctx, []store.AttemptResult{{DeliveryID: 777, Attempt: 1, State: queue.Delivered}}); err != nil || n != 0 {
		t.Errorf("Record for an unknown delivery = %d, %v; want 0, nil (skipped by the fence)", n, err)
	}
}
