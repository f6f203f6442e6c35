package optin

import (
	"context"
	"errors"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"mailout/internal/audience"
	"mailout/internal/campaign"
	"mailout/internal/store"
	"mailout/internal/unsubscribe"
)

type fixture struct {
	svc  *Service
	st   store.Store
	list *store.List
	slug string
	now  time.Time
}

func newFixture(t *testing.T, o Options) *fixture {
	t.Helper()
	ctx := context.Background()
	camp, err := campaign.Open(ctx, filepath.Join(t.TempDir(), "mailout.db"), true, campaign.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { camp.Close() })
	aud := audience.New(camp.Store())
	l, err := aud.Create(ctx, "News")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: camp.Store(), list: l, now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	o.Now = func() time.Time { return f.now }
	f.svc = New(camp, aud, o)
	form := DefaultForm("en")
	form.Enabled, form.From = true, "News <news@example.com>"
	if err := f.svc.SaveForm(ctx, l.ID, form); err != nil {
		t.Fatal(err)
	}
	f.slug = Slug(l.ID, form)
	return f
}

func (f *fixture) subscribe(t *testing.T, email, ip string) error {
	t.Helper()
	return f.svc.Subscribe(context.Background(), Request{Slug: f.slug, Email: email, IP: ip,
		Source: "form http://127.0.0.1/s/" + f.slug, PublicURL: "http://127.0.0.1:8025"})
}

var linkRE = regexp.MustCompile(`http://127\.0\.0\.1:8025/c/([A-Za-z0-9_-]+)`)

// lastToken is the token of the newest confirmation message of the list.
func (f *fixture) lastToken(t *testing.T) string {
	t.Helper()
	var tok string
	err := f.st.PendingSubscriptions(context.Background(), f.list.ID, 1, func(p *store.PendingSubscription) error {
		if m := linkRE.FindSubmatch(p.Message); m != nil {
			tok = string(m[1])
		}
		return nil
	})
	if err != nil || tok == "" {
		t.Fatalf("no confirmation link in the sandbox (%v)", err)
	}
	return tok
}

func TestTokenRefusesForgedAlteredAndExpired(t *testing.T) {
	k, err := unsubscribe.NewKey(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	tok := token(k, 42, now.Add(TokenLife))
	if id, err := parseToken(k, tok, now); err != nil || id != 42 {
		t.Fatalf("parseToken = %d, %v; want 42", id, err)
	}
	other, _ := unsubscribe.NewKey(append(make([]byte, 31), 1))
	b := []byte(tok)
	b[3] ^= 1
	for name, bad := range map[string]string{
		"other key":   token(other, 42, now.Add(TokenLife)),
		"altered":     string(b),
		"truncated":   tok[:len(tok)-2],
		"unsubscribe": k.Token(1, 42),
	} {
		if _, err := parseToken(k, bad, now); !errors.Is(err, ErrBadToken) {
			t.Errorf("%s: parseToken = %v, want ErrBadToken", name, err)
		}
	}
	if _, err := parseToken(k, tok, now.Add(TokenLife)); !errors.Is(err, ErrBadToken) {
		t.Errorf("expired: parseToken = %v, want ErrBadToken", err)
	}
}

func TestSubscribeConfirmAddsOnceWithConsent(t *testing.T) {
	f := newFixture(t, Options{})
	ctx := context.Background()
	if err := f.subscribe(t, "Ann@Example.org", "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	subs, _ := audience.New(f.st).Subscribers(ctx, f.list.ID, store.SubscriberFilter{})
	if len(subs) != 0 {
		t.Fatalf("subscribed before confirmation: %+v", subs)
	}
	tok := f.lastToken(t)
	f.now = f.now.Add(time.Hour)
	for range 2 {
		if _, _, err := f.svc.Confirm(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	subs, _ = audience.New(f.st).Subscribers(ctx, f.list.ID, store.SubscriberFilter{})
	if len(subs) != 1 || subs[0].Email != "Ann@example.org" {
		t.Fatalf("subscribers = %+v, want Ann@example.org once", subs)
	}
	var cs []store.Consent
	_ = f.st.Consents(ctx, f.list.ID, "", func(c *store.Consent) error { cs = append(cs, *c); return nil })
	if len(cs) != 1 || cs[0].IP != "192.0.2.1" || cs[0].Action != store.ConsentSubscribe ||
		!cs[0].ConfirmedAt.Equal(f.now) || !cs[0].RequestedAt.Equal(f.now.Add(-time.Hour)) {
		t.Fatalf("consents = %+v", cs)
	}
}

func TestHoneypotAndSuppressedSendNothing(t *testing.T) {
	f := newFixture(t, Options{})
	ctx := context.Background()
	err := f.svc.Subscribe(ctx, Request{Slug: f.slug, Email: "bot@example.org", Honeypot: "http://spam.example", IP: "192.0.2.2",
		PublicURL: "http://127.0.0.1:8025"})
	if err != nil {
		t.Fatalf("honeypot: Subscribe = %v, want the ordinary answer", err)
	}
	if err := f.st.Suppress(ctx, store.Suppression{Key: "gone@example.org", Reason: "unsubscribed", Source: "manual"}); err != nil {
		t.Fatal(err)
	}
	if err := f.subscribe(t, "gone@example.org", "192.0.2.2"); err != nil {
		t.Fatalf("suppressed: Subscribe = %v, want the ordinary answer", err)
	}
	n := 0
	_ = f.st.PendingSubscriptions(ctx, f.list.ID, 0, func(*store.PendingSubscription) error { n++; return nil })
	if n != 0 {
		t.Fatalf("%d confirmation messages made, want none", n)
	}
}

func TestRateLimits(t *testing.T) {
	f := newFixture(t, Options{RequestsPerMinute: 5, MailsPerDay: 3})
	for i := range 3 {
		if err := f.subscribe(t, "victim@example.org", "192.0.2.3"); err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
	}
	var rl *RateLimitError
	if err := f.subscribe(t, "victim@example.org", "192.0.2.4"); !errors.As(err, &rl) || rl.RetryAfter <= 0 {
		t.Fatalf("4th mail to one address in a day: %v, want a RateLimitError", err)
	}
	for _, email := range []string{"other@example.org", "fourth@example.org"} {
		if err := f.subscribe(t, email, "192.0.2.3"); err != nil {
			t.Fatalf("request of one client to %s: %v", email, err)
		}
	}
	if err := f.subscribe(t, "third@example.org", "192.0.2.3"); !errors.As(err, &rl) || rl.RetryAfter > time.Minute {
		t.Fatalf("6th request of one client in a minute: %v, want a RateLimitError", err)
	}
	f.now = f.now.Add(time.Minute)
	if err := f.subscribe(t, "third@example.org", "192.0.2.3"); err != nil {
		t.Fatalf("a minute later: %v", err)
	}
}

func TestUnknownOrSwitchedOffForm(t *testing.T) {
	f := newFixture(t, Options{})
	ctx := context.Background()
	for _, slug := range []string{"", "1", f.slug + "x", "999-" + f.slug[2:]} {
		if err := f.svc.Subscribe(ctx, Request{Slug: slug, Email: "a@example.org"}); !errors.Is(err, ErrNoForm) {
			t.Errorf("slug %q: %v, want ErrNoForm", slug, err)
		}
	}
	form, _ := f.svc.Form(ctx, f.list.ID, "en")
	form.Enabled = false
	if err := f.svc.SaveForm(ctx, f.list.ID, form); err != nil {
		t.Fatal(err)
	}
	if err := f.subscribe(t, "a@example.org", "192.0.2.5"); !errors.Is(err, ErrNoForm) {
		t.Fatalf("switched off: %v, want ErrNoForm", err)
	}
}

// Addresses of one IPv6 /64 count as one client.
func TestRateLimitPerIPv6Prefix(t *testing.T) {
	f := newFixture(t, Options{RequestsPerMinute: 2})
	for i, ip := range []string{"2001:db8:1:2::1", "2001:db8:1:2::2"} {
		if err := f.subscribe(t, "a"+strconv.Itoa(i)+"@example.org", ip); err != nil {
			t.Fatal(err)
		}
	}
	var rl *RateLimitError
	if err := f.subscribe(t, "c@example.org", "2001:db8:1:2:ffff::3"); !errors.As(err, &rl) {
		t.Fatalf("third address of one /64: %v, want a RateLimitError", err)
	}
	if err := f.subscribe(t, "d@example.org", "2001:db8:1:3::1"); err != nil {
		t.Fatalf("another /64: %v", err)
	}
}
