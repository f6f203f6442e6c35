package audience_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"mailout/internal/audience"
	"mailout/internal/campaign"
	"mailout/internal/queue"
	"mailout/internal/recipient"
	"mailout/internal/route"
	"mailout/internal/store"
	"mailout/internal/throttle"
)

// A list is a campaign's recipients: created from aud.Rows and run on the
// sandbox route, every subscriber gets the message with their own merge
// fields, and a suppressed subscriber is stored suppressed, not sent.
func TestCampaignFromAList(t *testing.T) {
	ctx := context.Background()
	svc, err := campaign.Open(ctx, filepath.Join(t.TempDir(), "mailout.db"), true, campaign.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	aud := audience.New(svc.Store())
	l, err := aud.Create(ctx, "customers")
	if err != nil {
		t.Fatal(err)
	}
	list := "first_name,email\nAna,ana@example.org\nBo,bo@example.net\nCy,cy@example.com\nDee,dee@example.org\n"
	if res, err := aud.Import(ctx, l.ID, strings.NewReader(list), "import:customers.csv", recipient.Options{}); err != nil || res.Added != 4 {
		t.Fatalf("Import: %+v, %v", res, err)
	}
	if err := svc.Store().Suppress(ctx, store.Suppression{Key: "dee@example.org", Reason: "unsubscribed", Source: "manual"}); err != nil {
		t.Fatal(err)
	}

	rt, err := campaign.RouteConfig{}.Check(route.Sandbox, campaign.Env{})
	if err != nil {
		t.Fatal(err)
	}
	msg := "From: Shop <news@example.com>\nSubject: Hello {{.first_name}}\n\nDear {{.first_name}},\nyour address is {{.email}}.\n"
	draft, err := campaign.NewCampaign{Name: "spring", Routing: rt, MaxAge: 3600e9, RetryMin: 60e9,
		Message: &store.Message{Template: []byte(msg), TemplateName: "message.txt"},
		Profile: throttle.Profile{Name: "test", Connections: 1}}.Check(campaign.Env{})
	if err != nil {
		t.Fatal(err)
	}
	c, n, err := svc.Create(ctx, draft, aud.Rows(ctx, l.ID), nil)
	if err != nil || n != 4 {
		t.Fatalf("Create from the list: %d imported, %v", n, err)
	}
	if _, err := svc.Run(ctx, c, campaign.RunOptions{}); err != nil {
		t.Fatal(err)
	}

	states := map[string]queue.State{}
	if err := svc.Store().Deliveries(ctx, c.ID, store.DeliveryFilter{}, func(d *store.Delivery) error {
		states[d.Email] = d.State
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := map[string]queue.State{"ana@example.org": queue.Delivered, "bo@example.net": queue.Delivered,
		"cy@example.com": queue.Delivered, "dee@example.org": queue.Suppressed}
	for email, st := range want {
		if states[email] != st {
			t.Errorf("%s is %q, want %q", email, states[email], st)
		}
	}
	var sent []string
	if err := svc.Store().Messages(ctx, c.ID, func(_ int64, email, _ string, data []byte) error {
		sent = append(sent, email)
		name := map[string]string{"ana@example.org": "Ana", "bo@example.net": "Bo", "cy@example.com": "Cy"}[email]
		for _, s := range []string{"Subject: Hello " + name, "Dear " + name + ",", "your address is " + email + "."} {
			if !strings.Contains(string(data), s) {
				t.Errorf("the message to %s lacks %q:\n%s", email, s, data)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sent, []string{"ana@example.org", "bo@example.net", "cy@example.com"}) {
		t.Errorf("messages kept for %v, want the three subscribers not suppressed", sent)
	}
}
