package web

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mailout/internal/setting"
)

const relayPassword = "relay-pass-0xC0FFEE"

func (a *app) settings() *setting.Settings {
	a.t.Helper()
	s, err := setting.Load(context.Background(), a.svc.Store(), a.key)
	if err != nil {
		a.t.Fatal(err)
	}
	return s
}

func relayValues(index, name, host, port, user, password string) url.Values {
	return url.Values{"index": {index}, "name": {name}, "host": {host}, "port": {port}, "tls": {"starttls"},
		"user": {user}, "password": {password}}
}

// dbBytes are the database's files (with its write-ahead log) as stored.
func (a *app) dbBytes() []byte {
	a.t.Helper()
	var all []byte
	names, _ := filepath.Glob(a.dbPath + "*")
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			a.t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

// A relay password is stored sealed and never sent back: not on the
// page, not in the edit form, not on an error; an empty field keeps it,
// also across a rename.
func TestRelayPasswordIsNeverShown(t *testing.T) {
	a := newApp(t)
	a.signIn()
	res, body := a.do(http.MethodPost, "/settings/relays", strings.NewReader(relayValues("-1", "main", "smtp.example.com", "587", "me", relayPassword).Encode()), nil)
	if res.StatusCode != http.StatusSeeOther || strings.Contains(body, relayPassword) {
		t.Fatalf("save: %s", res.Status)
	}
	if got, err := a.settings().RelayPassword(context.Background(), "main"); err != nil || got != relayPassword {
		t.Fatalf("stored password %q, %v", got, err)
	}
	var bodies []string
	_, body = a.get("/settings")
	bodies = append(bodies, body)
	if !strings.Contains(body, "<td>main</td><td>smtp.example.com</td><td>587</td>") || !strings.Contains(body, "<td>Stored</td>") {
		t.Errorf("the settings page does not list the account with its password marker:\n%s", body)
	}
	_, body = a.get("/settings?edit=relay.0")
	bodies = append(bodies, body)
	if !strings.Contains(body, `value="smtp.example.com"`) || !strings.Contains(body, "A password is stored. Leave this empty to keep it") {
		t.Errorf("the edit form is not filled:\n%s", body)
	}
	// Errors, with the password typed again.
	for _, f := range []url.Values{relayValues("0", "main", "smtp.example.com", "0", "me", relayPassword),
		relayValues("0", "main", "bad host!", "587", "me", relayPassword),
		relayValues("-1", "main", "smtp.example.com", "587", "me", relayPassword)} {
		res, body := a.do(http.MethodPost, "/settings/relays", strings.NewReader(f.Encode()), nil)
		if res.StatusCode != http.StatusUnprocessableEntity {
			t.Errorf("%v: %s, want 422", f, res.Status)
		}
		bodies = append(bodies, body)
	}
	// An empty password keeps the stored one, also under a new name.
	res = a.post("/settings/relays", relayValues("0", "primary", "smtp2.example.com", "465", "me", ""), nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("edit: %s", res.Status)
	}
	if got, err := a.settings().RelayPassword(context.Background(), "primary"); err != nil || got != relayPassword {
		t.Errorf("after an edit with an empty password field: %q, %v; want the stored password", got, err)
	}
	_, body = a.get("/settings")
	bodies = append(bodies, body)
	for i, b := range bodies {
		if strings.Contains(b, relayPassword) {
			t.Errorf("response %d holds the relay password", i)
		}
	}
	if bytes.Contains(a.dbBytes(), []byte(relayPassword)) {
		t.Error("the database file holds the relay password in clear")
	}
}

// Relay accounts keep their order, which is the failover order: moved up
// and down, deleted; the fallback relay follows a rename and goes with a
// delete.
func TestRelayAccountsOrderAndFallback(t *testing.T) {
	a := newApp(t)
	a.signIn()
	for _, n := range []string{"a", "b", "c"} {
		if res := a.post("/settings/relays", relayValues("-1", n, n+".example.com", "587", "", ""), nil); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("add %s: %s", n, res.Status)
		}
	}
	names := func() string {
		var out []string
		for _, r := range a.settings().Relays {
			out = append(out, r.Name)
		}
		return strings.Join(out, ",")
	}
	a.post("/settings/relays/0/move", url.Values{"dir": {"down"}}, nil)
	a.post("/settings/relays/2/move", url.Values{"dir": {"up"}}, nil)
	if got := names(); got != "b,c,a" {
		t.Errorf("after moves: %s, want b,c,a", got)
	}
	if res := a.post("/settings/direct", url.Values{"dns": {"127.0.0.1:5354, 127.0.0.2"}, "helo": {"mail.example.com"}, "fallback_relay": {"a"}, "fallback_after": {"3"}}, nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("direct: %s", res.Status)
	}
	s := a.settings()
	if strings.Join(s.DNS, " ") != "127.0.0.1:5354 127.0.0.2" || s.HELO != "mail.example.com" || s.FallbackRelay != "a" || s.FallbackAfter != 3 {
		t.Errorf("direct settings %v %q %q %d", s.DNS, s.HELO, s.FallbackRelay, s.FallbackAfter)
	}
	if _, body := a.get("/settings"); !strings.Contains(body, `<option value="a" selected>a</option>`) || !strings.Contains(body, `value="127.0.0.1:5354 127.0.0.2"`) {
		t.Errorf("the direct form does not show the stored values:\n%s", body)
	}
	a.post("/settings/relays", relayValues("2", "alpha", "a.example.com", "587", "", ""), nil)
	if got := a.settings().FallbackRelay; got != "alpha" {
		t.Errorf("fallback after a rename: %q, want alpha", got)
	}
	if res := a.post("/settings/relays/2/delete", nil, nil); res.StatusCode != http.StatusSeeOther || names() != "b,c" || a.settings().FallbackRelay != "" {
		t.Errorf("delete: %s, relays %s, fallback %q", res.Status, names(), a.settings().FallbackRelay)
	}
	if res := a.post("/settings/relays/7/delete", nil, nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("delete of no account: %s, want 404", res.Status)
	}
}

// A refused value is shown next to its field, with the form as typed.
func TestSettingsErrorsAreShownNextToTheField(t *testing.T) {
	a := newApp(t)
	a.signIn()
	for _, tc := range []struct {
		path  string
		form  url.Values
		field string // the id of the field the error follows
		typed string
	}{
		{"/settings/relays", relayValues("-1", "x", "smtp.example.com", "99999", "", ""), "r-port", `value="99999"`},
		{"/settings/relays", relayValues("-1", "x", "smtp.example.com", "five", "", ""), "r-port", `value="five"`},
		{"/settings/relays", relayValues("-1", "x", "smtp.example.com", "587", "", "pw-without-user"), "r-user", `value="x"`},
		{"/settings/direct", url.Values{"dns": {"not-an-ip"}}, "d-dns", `value="not-an-ip"`},
		{"/settings/direct", url.Values{"helo": {"bad helo"}}, "d-helo", `value="bad helo"`},
		{"/settings/direct", url.Values{"fallback_relay": {"nope"}}, "d-fallback", ""},
		{"/settings/direct", url.Values{"fallback_after": {"-1"}}, "d-after", `value="-1"`},
		{"/settings/profiles", url.Values{"index": {"-1"}, "name": {"slow"}, "rate": {"1"}, "connections": {"0"}}, "p-conns", `value="slow"`},
		{"/settings/profiles", url.Values{"index": {"-1"}, "name": {"slow"}, "rate": {"fast"}, "connections": {"1"}}, "p-rate", `value="fast"`},
		{"/settings/identities", url.Values{"index": {"-1"}, "name": {"shop"}, "from": {"not an address"}}, "i-from", `value="not an address"`},
	} {
		res, body := a.do(http.MethodPost, tc.path, strings.NewReader(tc.form.Encode()), nil)
		if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "see the reason next to the field") {
			t.Errorf("%s %v: %s, want 422", tc.path, tc.form, res.Status)
			continue
		}
		i := strings.Index(body, `id="`+tc.field+`"`)
		j := strings.Index(body, `class="field-error"`)
		if i < 0 || j < i || strings.Count(body, `class="field-error"`) != 1 || strings.Contains(body[i:j], "</p>") {
			t.Errorf("%s %v: the error is not next to #%s", tc.path, tc.form, tc.field)
		}
		if !strings.Contains(body, tc.typed) {
			t.Errorf("%s %v: the form lost what was typed (%s)", tc.path, tc.form, tc.typed)
		}
	}
	if s := a.settings(); len(s.Relays)+len(s.Profiles)+len(s.Identities)+len(s.DNS) != 0 || s.HELO != "" {
		t.Errorf("refused settings were stored: %+v", s)
	}
	// The page after a refusal lists what is stored, not the refused item.
	_, body := a.do(http.MethodPost, "/settings/relays", strings.NewReader(relayValues("-1", "refused", "smtp.example.com", "0", "", "").Encode()), nil)
	if strings.Contains(body, "<td>refused</td>") || !strings.Contains(body, "No relay accounts yet.") {
		t.Error("the page after a refusal lists the refused account as if stored")
	}
}

// Speed profiles and sender identities are added, edited and deleted.
func TestSettingsProfilesAndIdentities(t *testing.T) {
	a := newApp(t)
	a.signIn()
	a.post("/settings/profiles", url.Values{"index": {"-1"}, "name": {"gentle"}, "rate": {"2.5"}, "connections": {"4"}, "per_domain_connections": {"2"}, "per_domain_rate": {"30"}}, nil)
	a.post("/settings/identities", url.Values{"index": {"-1"}, "name": {"shop"}, "from": {"Shop <news@example.com>"}}, nil)
	s := a.settings()
	if len(s.Profiles) != 1 || s.Profiles[0] != (setting.Profile{Name: "gentle", Rate: 2.5, Connections: 4, PerDomainConnections: 2, PerDomainRate: 30}) {
		t.Errorf("profiles %+v", s.Profiles)
	}
	if len(s.Identities) != 1 || s.Identities[0] != (setting.Identity{Name: "shop", From: "Shop <news@example.com>"}) {
		t.Errorf("identities %+v", s.Identities)
	}
	_, body := a.get("/settings?edit=profile.0")
	if !strings.Contains(body, `id="p-rate" name="rate" inputmode="decimal" value="2.5"`) {
		t.Errorf("profile edit form not filled:\n%s", body)
	}
	_, body = a.get("/settings?edit=identity.0")
	if !strings.Contains(body, `value="Shop &lt;news@example.com&gt;"`) {
		t.Errorf("identity edit form not filled")
	}
	a.post("/settings/profiles", url.Values{"index": {"0"}, "name": {"gentle"}, "rate": {"1"}, "connections": {"1"}}, nil)
	a.post("/settings/identities", url.Values{"index": {"0"}, "name": {"shop"}, "from": {"news@example.net"}}, nil)
	s = a.settings()
	if s.Profiles[0].Rate != 1 || s.Identities[0].From != "news@example.net" {
		t.Errorf("after edits: %+v %+v", s.Profiles, s.Identities)
	}
	a.post("/settings/profiles/0/delete", nil, nil)
	a.post("/settings/identities/0/delete", nil, nil)
	if s := a.settings(); len(s.Profiles)+len(s.Identities) != 0 {
		t.Errorf("after deletes: %+v %+v", s.Profiles, s.Identities)
	}
}

// An API token is shown once when created, listed by name after, and
// opens /metrics until it is deleted.
func TestAPITokensOnTheSettingsPage(t *testing.T) {
	a := newApp(t, appOptions{doctor: func(c *Config) {
		c.Metrics = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("mailout_send_rate 0\n")) })
	}})
	a.signIn()
	res, body := a.do(http.MethodPost, "/settings/tokens", strings.NewReader(url.Values{"token_name": {"grafana"}}.Encode()), nil)
	if res.StatusCode != http.StatusOK || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("create: %s", res.Status)
	}
	i := strings.Index(body, `value="mo_`)
	if i < 0 {
		t.Fatalf("the token is not shown:\n%s", body)
	}
	token := body[i+len(`value="`):]
	token = token[:strings.IndexByte(token, '"')]
	if _, err := a.acc.CheckToken(context.Background(), token); err != nil {
		t.Fatalf("the token shown does not work: %v", err)
	}
	_, body = a.get("/settings")
	if strings.Contains(body, token) || !strings.Contains(body, "<td>grafana</td>") {
		t.Errorf("the settings page shows the token again, or does not list it")
	}
	if res := a.post("/settings/tokens", url.Values{"token_name": {"grafana"}}, nil); res.StatusCode != http.StatusConflict {
		t.Errorf("a second token of that name: %s, want 409", res.Status)
	}
	if res := a.post("/settings/tokens", url.Values{"token_name": {"two words"}}, nil); res.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("a bad token name: %s, want 422", res.Status)
	}

	scrape := func(auth string) int {
		req, _ := http.NewRequest(http.MethodGet, a.srv.URL+"/metrics", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, err := http.DefaultClient.Do(req) // no session cookie
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if got := scrape("Bearer " + token); got != http.StatusOK {
		t.Errorf("/metrics with the token: %d", got)
	}
	if got := scrape(""); got != http.StatusUnauthorized {
		t.Errorf("/metrics without a token or session: %d, want 401", got)
	}
	if got := scrape("Bearer mo_wrong"); got != http.StatusUnauthorized {
		t.Errorf("/metrics with a wrong token: %d, want 401", got)
	}
	if res, body := a.get("/metrics"); res.StatusCode != http.StatusOK || body != "mailout_send_rate 0\n" {
		t.Errorf("/metrics signed in: %s %q", res.Status, body)
	}
	if _, body = a.get("/settings"); !strings.Contains(body, "<td>grafana</td>") || strings.Contains(body, "<td>Never</td>") {
		t.Errorf("the token's last use is not shown")
	}
	if res := a.post("/settings/tokens/delete", url.Values{"name": {"grafana"}}, nil); res.StatusCode != http.StatusSeeOther {
		t.Errorf("delete: %s", res.Status)
	}
	if got := scrape("Bearer " + token); got != http.StatusUnauthorized {
		t.Errorf("/metrics with a deleted token: %d, want 401", got)
	}
	if res := a.post("/settings/tokens/delete", url.Values{"name": {"grafana"}}, nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("delete again: %s, want 404", res.Status)
	}
}

// The JSON API is served under /api/v1/ without the session check (it
// checks its own token) and without the cross-site refusal getting in
// the way of a program.
func TestAPIIsMountedOutsideTheSession(t *testing.T) {
	a := newApp(t, appOptions{doctor: func(c *Config) {
		c.API = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"path":"` + r.URL.Path + `"}`))
		})
	}})
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		res, body := a.do(m, "/api/v1/campaigns", strings.NewReader("{}"), http.Header{"Content-Type": {"application/json"}})
		if res.StatusCode != http.StatusOK || body != `{"path":"/api/v1/campaigns"}` {
			t.Errorf("%s /api/v1/campaigns without a session: %s %q, want the API's answer", m, res.Status, body)
		}
	}
	if res, _ := a.get("/api/v2/x"); res.StatusCode != http.StatusSeeOther {
		t.Errorf("outside /api/v1/: %s, want the sign-in redirect", res.Status)
	}
}

// Without a secret key the settings page says so instead of storing
// passwords it could not read back.
func TestSettingsWithoutSecretKey(t *testing.T) {
	a := newApp(t, appOptions{doctor: func(c *Config) { c.SecretKey = nil }})
	a.signIn()
	res, body := a.get("/settings")
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "secret key") {
		t.Errorf("settings without a key: %s", res.Status)
	}
}
