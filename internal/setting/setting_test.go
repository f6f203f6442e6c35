package setting

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"mailout/internal/campaign"
	"mailout/internal/queue"
	"mailout/internal/recipient"
	"mailout/internal/route"
	"mailout/internal/secret"
	"mailout/internal/smtptest"
	"mailout/internal/store"
	"mailout/internal/store/sqlite"
	"mailout/internal/throttle"
)

const storedPassword = "Relay-Pa55word-in-settings"

func newKey(t *testing.T) *secret.Key {
	t.Helper()
	k, err := secret.NewKey(secret.Generate())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func openDB(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func sample() *Settings {
	return &Settings{
		Relays: []RelayAccount{
			{Name: "main", Host: "smtp.example.com", Port: 587, TLS: TLSStartTLS, User: "me@example.com", Password: storedPassword},
			{Name: "lab", Host: "127.0.0.1", Port: 2525, TLS: TLSNone},
		},
		DNS: []string{"127.0.0.1:5354", "9.9.9.9"}, HELO: "mail.example.com",
		FallbackRelay: "main", FallbackAfter: 2,
		Profiles:   []Profile{{Name: "gentle", Rate: 2, Connections: 2, PerDomainConnections: 1, PerDomainRate: 30}},
		Identities: []Identity{{Name: "news", From: "Shop <news@example.com>"}},
	}
}

// A saved relay password is sealed: it is not in the database file, Load
// never hands it back, and RelayPassword gives it to the service.
func TestPasswordSealedAtRest(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "mailout.db")
	db, key := openDB(t, path), newKey(t)
	if err := Save(ctx, db, key, sample()); err != nil {
		t.Fatalf("Save: %v", err)
	}
	s, err := Load(ctx, db, key)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if s.Relays[0].Password != "" || !s.Relays[0].HasPassword || s.Relays[1].HasPassword {
		t.Fatalf("Load gave relays %+v: want no password, HasPassword for main only", s.Relays)
	}
	if p, err := s.RelayPassword(ctx, "main"); err != nil || p != storedPassword {
		t.Fatalf("RelayPassword = %q, %v", p, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(path + "*")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(storedPassword)) {
			t.Fatalf("%s contains the relay password in clear", filepath.Base(f))
		}
	}
}

// Saving an account with an empty password keeps the stored one; a new
// password replaces it; a removed account's password goes with it.
func TestSaveKeepsPassword(t *testing.T) {
	ctx := context.Background()
	db, key := openDB(t, filepath.Join(t.TempDir(), "mailout.db")), newKey(t)
	defer db.Close()
	if err := Save(ctx, db, key, sample()); err != nil {
		t.Fatal(err)
	}
	s, err := Load(ctx, db, key)
	if err != nil {
		t.Fatal(err)
	}
	s.HELO = "mail2.example.com" // edit something else; the password field comes back empty
	if err := Save(ctx, db, key, s); err != nil {
		t.Fatal(err)
	}
	if p, err := s.RelayPassword(ctx, "main"); err != nil || p != storedPassword {
		t.Fatalf("after a save without the password: %q, %v", p, err)
	}
	s.Relays[0].Password = "a-new-password"
	if err := Save(ctx, db, key, s); err != nil {
		t.Fatal(err)
	}
	if p, _ := s.RelayPassword(ctx, "main"); p != "a-new-password" {
		t.Fatalf("after a new password: %q", p)
	}
	s.Relays, s.FallbackRelay = s.Relays[1:], ""
	if err := Save(ctx, db, key, s); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RelayPassword(ctx, "main"); !errors.Is(err, ErrUnknownRelay) {
		t.Fatalf("removed account: %v, want ErrUnknownRelay", err)
	}
}

// Settings sealed with one key are refused under another with the typed
// error, never opened to garbage.
func TestWrongKeyRefused(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, filepath.Join(t.TempDir(), "mailout.db"))
	defer db.Close()
	if err := Save(ctx, db, newKey(t), sample()); err != nil {
		t.Fatal(err)
	}
	other := newKey(t)
	if _, err := Load(ctx, db, other); !errors.Is(err, secret.ErrWrongKey) {
		t.Fatalf("Load with another key = %v, want secret.ErrWrongKey", err)
	}
	if _, err := Secrets(db, other)("main"); !errors.Is(err, secret.ErrWrongKey) {
		t.Fatalf("Secrets with another key = %v, want secret.ErrWrongKey", err)
	}
}

// Each invalid value is refused with the field it is in.
func TestValidateNamesTheField(t *testing.T) {
	for field, edit := range map[string]func(*Settings){
		"relays[0].host":              func(s *Settings) { s.Relays[0].Host = "bad host" },
		"relays[1].port":              func(s *Settings) { s.Relays[1].Port = 65536 },
		"relays[0].port":              func(s *Settings) { s.Relays[0].Port = 0 },
		"relays[0].tls":               func(s *Settings) { s.Relays[0].TLS = "ssl" },
		"relays[1].name":              func(s *Settings) { s.Relays[1].Name = "main" },
		"dns[1]":                      func(s *Settings) { s.DNS[1] = "dns.example" },
		"helo":                        func(s *Settings) { s.HELO = "bad name!" },
		"fallback_relay":              func(s *Settings) { s.FallbackRelay = "nope" },
		"profiles[0].rate":            func(s *Settings) { s.Profiles[0].Rate = -1 },
		"profiles[0].connections":     func(s *Settings) { s.Profiles[0].Connections = 0 },
		"profiles[0].per_domain_rate": func(s *Settings) { s.Profiles[0].PerDomainRate = -3 },
		"identities[0].from":          func(s *Settings) { s.Identities[0].From = "not an address" },
		"public_url":                  func(s *Settings) { s.PublicURL = "http://mail.example.com" },
		"unsubscribe_mailto":          func(s *Settings) { s.PublicURL, s.UnsubscribeMailto = "https://mail.example.com", "not an address" },
	} {
		s := sample()
		edit(s)
		var fe *FieldError
		if err := s.Validate(); !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("%s: Validate = %v, want a FieldError for %s", field, err, field)
		}
	}
	if err := sample().Validate(); err != nil {
		t.Errorf("valid settings: %v", err)
	}
	db := openDB(t, filepath.Join(t.TempDir(), "mailout.db"))
	defer db.Close()
	s := sample()
	s.Relays[0].Port = 70000
	var fe *FieldError
	if err := Save(context.Background(), db, newKey(t), s); !errors.As(err, &fe) {
		t.Fatalf("Save of invalid settings = %v", err)
	}
	if _, err := db.Setting(context.Background(), Key); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("invalid settings were stored: %v", err)
	}
}

// The public address of the app is stored with the settings and checked
// as serve --public-url is: https, or http on loopback only; a mailto goes
// with it.
func TestPublicURLStored(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "mailout.db"))
	defer db.Close()
	key := newKey(t)
	ctx := context.Background()
	for _, ok := range []struct{ url, mailto string }{{"https://mail.example.com/app", "unsub@example.com"}, {"http://127.0.0.1:8080", ""}, {"", ""}} {
		s := sample()
		s.PublicURL, s.UnsubscribeMailto = ok.url, ok.mailto
		if err := Save(ctx, db, key, s); err != nil {
			t.Fatalf("%+v: %v", ok, err)
		}
		got, err := Load(ctx, db, key)
		if err != nil || got.PublicURL != ok.url || got.UnsubscribeMailto != ok.mailto {
			t.Errorf("%+v: loaded %q %q, %v", ok, got.PublicURL, got.UnsubscribeMailto, err)
		}
		if oc := got.OneClick(); oc.PublicURL != ok.url || oc.Mailto != ok.mailto {
			t.Errorf("%+v: OneClick = %+v", ok, oc)
		}
	}
	for _, bad := range []struct{ url, mailto, field string }{
		{"http://mail.example.com", "", "public_url"},
		{"ftp://mail.example.com", "", "public_url"},
		{"", "unsub@example.com", "unsubscribe_mailto"},
		{"https://mail.example.com", "nobody", "unsubscribe_mailto"},
	} {
		s := sample()
		s.PublicURL, s.UnsubscribeMailto = bad.url, bad.mailto
		var fe *FieldError
		if err := Save(ctx, db, key, s); !errors.As(err, &fe) || fe.Field != bad.field {
			t.Errorf("%+v: Save = %v, want a FieldError for %s", bad, err, bad.field)
		}
	}
}

// A custom profile is the normal preset with its values on top, as the
// command line's speed flags make it.
func TestProfileThrottle(t *testing.T) {
	s := sample()
	p, err := s.Profile("gentle")
	if err != nil {
		t.Fatal(err)
	}
	normal, _ := throttle.Lookup("normal")
	want := normal
	want.Name, want.Connections, want.Rate, want.DomainConnections, want.DomainRate = "gentle", 2, 2, 1, 30
	if p != want {
		t.Errorf("Profile(gentle) = %+v, want %+v", p, want)
	}
	if err := p.Validate(); err != nil {
		t.Error(err)
	}
	if p, err := s.Profile("slow"); err != nil || p.Name != "slow" {
		t.Errorf("Profile(slow) = %+v, %v; want the preset", p, err)
	}
	if _, err := s.Profile("nope"); !errors.Is(err, throttle.ErrUnknownProfile) {
		t.Errorf("Profile(nope) = %v", err)
	}
}

// The route config of the settings: relay URLs without the password, the
// password named by its account, the direct route's DNS, HELO and
// fallback.
func TestRouteConfig(t *testing.T) {
	s := sample()
	rc, _ := s.RouteConfig("relay", []string{"main", "lab"})
	if strings.Join(rc.Relays, " ") != "smtp://me%40example.com@smtp.example.com:587 smtp+insecure://127.0.0.1:2525" ||
		strings.Join(rc.RelayPasswordSettings, ",") != "main," || rc.HELO != "mail.example.com" || rc.Route != "relay" {
		t.Errorf("relay route config = %+v", rc)
	}
	rc, _ = s.RouteConfig("direct", nil)
	if len(rc.Relays) != 1 || rc.RelayPasswordSettings[0] != "main" || rc.FallbackAfter != 2 || len(rc.DNS) != 2 {
		t.Errorf("direct route config = %+v", rc)
	}
	if _, _, err := s.Route("relay", []string{"nope"}); !errors.Is(err, ErrUnknownRelay) {
		t.Errorf("Route with an unknown account = %v, want ErrUnknownRelay", err)
	}
}

// A campaign made from the settings' relay account is sent and, in a
// new process, resumed with the password from the settings; the
// campaign's stored settings never hold it.
func TestCampaignResumesWithStoredPassword(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{Auth: map[string]string{"mailout": storedPassword}, RequireAuth: true})
	host, port, _ := strings.Cut(srv.Addr, ":")
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "mailout.db")
	key := newKey(t)
	db := openDB(t, path)
	s := &Settings{Relays: []RelayAccount{{Name: "lab", Host: host, Port: atoi(t, port), TLS: TLSNone, User: "mailout", Password: storedPassword}},
		HELO: "sender.mailout.test"}
	if err := Save(ctx, db, key, s); err != nil {
		t.Fatal(err)
	}
	s, err := Load(ctx, db, key)
	if err != nil {
		t.Fatal(err)
	}
	rc, env := s.RouteConfig("relay", []string{"lab"})
	rt, err := rc.Check(route.Sandbox, env)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	svc := campaign.New(db, campaign.Options{Env: campaign.Env{Secret: Secrets(db, key)}})
	draft, err := campaign.NewCampaign{Name: "spring", Routing: rt, MaxAge: 3600e9, RetryMin: 60e9,
		Message: &store.Message{Template: []byte("From: news@example.com\nSubject: Hi\n\nHello {{.email}}\n"), TemplateName: "m.txt"},
		Profile: throttle.Profile{Name: "test", Connections: 1}}.Check(env)
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := svc.Create(ctx, draft, recipient.Rows(ctx, strings.NewReader("email\na@example.org\nb@example.org\n"), recipient.Options{}, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(c.RouteConfig), storedPassword) {
		t.Fatalf("campaign settings hold the password: %s", c.RouteConfig)
	}
	svc.Close()

	db = openDB(t, path)
	svc = campaign.New(db, campaign.Options{Env: campaign.Env{Secret: Secrets(db, key)}})
	defer svc.Close()
	if _, err := svc.Resume(ctx, c.ID, campaign.RunOptions{Profile: throttle.Profile{Name: "test", Connections: 1}}); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	if n, err := svc.Store().Counts(ctx, c.ID); err != nil || n.ByState[queue.Delivered] != 2 {
		t.Fatalf("counts = %+v, %v; want 2 delivered", n, err)
	}
	for _, m := range srv.Messages() {
		if m.AuthUser != "mailout" {
			t.Errorf("message sent as %q, want authenticated as mailout", m.AuthUser)
		}
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
