package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"mailout/internal/campaign"
	"mailout/internal/store"
)

// Every response carries the security headers: pages, assets, errors,
// redirects and the health check.
func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	a := newApp(t)
	a.signIn()
	c := a.newCampaign("spring", campaign.RouteConfig{}, fiveRecipients, false)
	for _, path := range []string{"/healthz", "/login", "/static/app.css", "/static/progress.js", "/campaigns",
		"/campaigns/" + itoa(c.ID), "/doctor", "/inbox", "/campaigns/999", "/nope", "/campaigns/new", "/static/compose.js"} {
		res, _ := a.get(path)
		h := res.Header
		if got := h.Get("Content-Security-Policy"); got != CSP {
			t.Errorf("%s: CSP %q, want %q", path, got, CSP)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "same-origin" {
			t.Errorf("%s: nosniff %q, referrer %q", path, h.Get("X-Content-Type-Options"), h.Get("Referrer-Policy"))
		}
	}
	if !strings.Contains(CSP, "script-src 'self'") || !strings.Contains(CSP, "frame-ancestors 'none'") || strings.Contains(CSP, "unsafe") {
		t.Errorf("CSP %q allows too much", CSP)
	}
}

// The pages hold no inline script or style that the CSP would block: every
// script is a file of /static/, and no element has a style or on* attribute.
func TestPagesHaveNoInlineScriptOrStyle(t *testing.T) {
	a := newApp(t)
	a.signIn()
	c := a.newCampaign("spring", campaign.RouteConfig{}, fiveRecipients, true)
	l := a.newList("news", "email,name\na@example.org,A\n")
	sub := a.subscribers(l.ID)[0]
	a.post("/settings/relays", relayValues("-1", "main", "smtp.example.com", "587", "me", relayPassword), nil)
	for _, path := range []string{"/campaigns", "/campaigns/" + itoa(c.ID), "/campaigns/" + itoa(c.ID) + "/recipients", "/doctor", "/inbox",
		"/lists", listURL(l.ID), listURL(l.ID) + "/delete", listURL(l.ID) + "/subscribers/" + itoa(sub.ID), "/settings", "/settings?edit=relay.0", "/campaigns/new"} {
		res, body := a.get(path)
		if res.StatusCode != http.StatusOK {
			t.Errorf("%s: %s", path, res.Status)
		}
		low := strings.ToLower(body)
		for _, bad := range []string{"<script>", "<style", " style=", " onclick=", " onload=", " onchange=", "javascript:"} {
			if strings.Contains(low, bad) {
				t.Errorf("%s holds %q", path, bad)
			}
		}
		if !strings.Contains(body, `<script src="/static/app.js" defer></script>`) {
			t.Errorf("%s does not load its script from /static/", path)
		}
	}
}

// Without a session every page sends to the sign-in page and every
// state-changing request is refused; the health check and the assets
// stay open.
func TestEveryPageNeedsASession(t *testing.T) {
	a := newApp(t)
	c := a.newCampaign("spring", campaign.RouteConfig{}, fiveRecipients, false)
	id := itoa(c.ID)
	l := a.newList("news", "email\na@example.org\n")
	lid, sid := itoa(l.ID), itoa(a.subscribers(l.ID)[0].ID)
	for _, path := range []string{"/", "/campaigns", "/campaigns/" + id, "/campaigns/" + id + "/events",
		"/campaigns/" + id + "/export.csv", "/campaigns/" + id + "/recipients", "/doctor", "/inbox", "/inbox/" + id,
		"/lists", "/lists/" + lid, "/lists/" + lid + "/delete", "/lists/" + lid + "/export.csv", "/lists/" + lid + "/subscribers/" + sid, "/settings",
		"/campaigns/new", "/campaigns/new/preview/0123456789abcdef"} {
		res, _ := a.get(path)
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login" {
			t.Errorf("GET %s without a session: %s to %q, want 303 to /login", path, res.Status, res.Header.Get("Location"))
		}
	}
	for _, path := range append(stateChanging(id), audienceRoutes(lid, sid)...) {
		res := a.post(path, audienceForm(), nil)
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("POST %s without a session: %s, want 401", path, res.Status)
		}
	}
	a.audienceUnchanged(l.ID)
	if got := a.campaign(c.ID).Status; got != store.CampaignRunning {
		t.Errorf("an unauthenticated request changed the campaign to %s", got)
	}
	for _, path := range []string{"/healthz", "/static/app.css", "/setup"} {
		if res, _ := a.get(path); res.StatusCode != http.StatusOK {
			t.Errorf("GET %s without a session: %s, want 200", path, res.Status)
		}
	}
}

// audienceRoutes are the state-changing routes of the lists and settings
// pages, for list lid and its subscriber sid.
func audienceRoutes(lid, sid string) []string {
	return []string{"/lists", "/lists/" + lid + "/rename", "/lists/" + lid + "/delete", "/lists/" + lid + "/import",
		"/lists/" + lid + "/subscribers", "/lists/" + lid + "/subscribers/" + sid, "/lists/" + lid + "/subscribers/" + sid + "/delete",
		"/settings/relays", "/settings/relays/0/delete", "/settings/relays/0/move", "/settings/direct", "/settings/profiles",
		"/settings/profiles/0/delete", "/settings/identities", "/settings/identities/0/delete", "/settings/tokens", "/settings/tokens/delete",
		"/settings/public"}
}

// audienceForm is a form each of audienceRoutes would act on.
func audienceForm() url.Values {
	return url.Values{"class": {"content-rejected"}, "name": {"changed"}, "email": {"changed@example.org"}, "index": {"-1"},
		"host": {"smtp.example.com"}, "port": {"587"}, "tls": {"starttls"}, "helo": {"changed.example.org"}, "from": {"changed@example.org"},
		"connections": {"1"}, "token_name": {"changed"}, "dir": {"down"}, "public_url": {"https://changed.example.org"}}
}

// audienceUnchanged fails the test when a refused request changed list
// id (one subscriber, a@example.org), the settings or the tokens.
func (a *app) audienceUnchanged(id int64) {
	a.t.Helper()
	l, err := a.svc.Store().List(context.Background(), id)
	if err != nil || l.Name != "news" {
		a.t.Errorf("a refused request changed the list: %+v, %v", l, err)
	}
	if subs := a.subscribers(id); len(subs) != 1 || subs[0].Email != "a@example.org" {
		a.t.Errorf("a refused request changed the subscribers: %+v", subs)
	}
	if ls, _ := a.svc.Store().Lists(context.Background()); len(ls) != 1 {
		a.t.Errorf("a refused request made a list: %d lists", len(ls))
	}
	if s := a.settings(); len(s.Relays)+len(s.Profiles)+len(s.Identities) != 0 || s.HELO != "" || s.PublicURL != "" {
		a.t.Errorf("a refused request changed the settings: %+v", s)
	}
	if ts, _ := a.acc.Tokens(context.Background()); len(ts) != 0 {
		a.t.Errorf("a refused request made a token: %+v", ts)
	}
}

func stateChanging(id string) []string {
	return []string{"/campaigns/" + id + "/start", "/campaigns/" + id + "/resume", "/campaigns/" + id + "/pause",
		"/campaigns/" + id + "/cancel", "/campaigns/" + id + "/requeue", "/campaigns/" + id + "/fix", "/doctor", "/doctor/discover", "/doctor/sender", "/logout",
		"/campaigns/new", "/campaigns/new/preview"}
}

// A state-changing request from another site is refused, signed in or not:
// the browser says so in Sec-Fetch-Site, or its Origin is not the app's.
func TestCrossSiteRequestsAreRefused(t *testing.T) {
	a := newApp(t)
	a.signIn()
	c := a.newCampaign("spring", campaign.RouteConfig{}, fiveRecipients, false)
	id := itoa(c.ID)
	l := a.newList("news", "email\na@example.org\n")
	paths := append(stateChanging(id), "/login", "/setup", "/lang")
	paths = append(paths, audienceRoutes(itoa(l.ID), itoa(a.subscribers(l.ID)[0].ID))...)
	form := audienceForm()
	form.Set("lang", "es")
	form.Set("email", adminEmail)
	form.Set("password", adminPassword)
	for _, h := range []http.Header{
		{"Sec-Fetch-Site": {"cross-site"}},
		{"Origin": {"https://evil.example"}},
	} {
		for _, path := range paths {
			res := a.post(path, form, h)
			if res.StatusCode != http.StatusForbidden {
				t.Errorf("POST %s with %v: %s, want 403", path, h, res.Status)
			}
		}
	}
	if got := a.campaign(c.ID).Status; got != store.CampaignRunning {
		t.Errorf("a cross-site request changed the campaign to %s", got)
	}
	a.audienceUnchanged(l.ID)
	// The same request from the app's own pages goes through.
	res := a.post("/campaigns/"+id+"/pause", nil, http.Header{"Sec-Fetch-Site": {"same-origin"}, "Origin": {a.srv.URL}})
	if res.StatusCode != http.StatusSeeOther || a.campaign(c.ID).Status != store.CampaignPaused {
		t.Errorf("same-origin pause: %s, status %s", res.Status, a.campaign(c.ID).Status)
	}
}

// First run: with no user, the app asks for the admin; creating it signs
// in with a session cookie that scripts cannot read.
func TestFirstRunCreatesTheAdminAndSignsIn(t *testing.T) {
	a := newApp(t)
	res, _ := a.get("/login")
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/setup" {
		t.Fatalf("sign-in page before any user: %s to %q, want the set-up page", res.Status, res.Header.Get("Location"))
	}
	if res := a.post("/setup", url.Values{"email": {adminEmail}, "password": {"short"}, "password2": {"short"}}, nil); res.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("a short password: %s, want 422", res.Status)
	}
	res = a.post("/setup", url.Values{"email": {adminEmail}, "password": {adminPassword}, "password2": {adminPassword}}, nil)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/campaigns" {
		t.Fatalf("set-up: %s to %q", res.Status, res.Header.Get("Location"))
	}
	ck := cookieOf(res, sessionCookie)
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Secure {
		t.Fatalf("session cookie %+v, want HttpOnly, SameSite=Lax, Path=/, not Secure over plain HTTP", ck)
	}
	if res, body := a.get("/campaigns"); res.StatusCode != http.StatusOK || !strings.Contains(body, "Campaigns") {
		t.Errorf("after set-up: %s", res.Status)
	}
	// The set-up page is gone for good.
	if res := a.post("/setup", url.Values{"email": {"x@example.org"}, "password": {adminPassword}, "password2": {adminPassword}}, nil); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login" {
		t.Errorf("second set-up: %s to %q, want the sign-in page", res.Status, res.Header.Get("Location"))
	}
	// Sign out ends the session.
	a.post("/logout", nil, nil)
	if res, _ := a.get("/campaigns"); res.StatusCode != http.StatusSeeOther {
		t.Errorf("after sign-out: %s, want a redirect to sign in", res.Status)
	}
}

// Over TLS the session cookie is Secure.
func TestSessionCookieIsSecureOverTLS(t *testing.T) {
	a := newApp(t, appOptions{tls: true})
	if _, err := a.acc.CreateAdmin(t.Context(), adminEmail, adminPassword); err != nil {
		t.Fatal(err)
	}
	res := a.post("/login", url.Values{"email": {adminEmail}, "password": {adminPassword}}, nil)
	if ck := cookieOf(res, sessionCookie); ck == nil || !ck.Secure || !ck.HttpOnly {
		t.Errorf("session cookie over TLS %+v, want Secure and HttpOnly", ck)
	}
}

// A wrong password reads "wrong e-mail address or password"; too many
// read "too many attempts"; neither echoes the password.
func TestSignInFailures(t *testing.T) {
	a := newApp(t, appOptions{maxFails: 2})
	if _, err := a.acc.CreateAdmin(t.Context(), adminEmail, adminPassword); err != nil {
		t.Fatal(err)
	}
	form := url.Values{"email": {adminEmail}, "password": {"not the password"}}
	for i, want := range []int{http.StatusUnauthorized, http.StatusUnauthorized, http.StatusTooManyRequests} {
		res, body := a.do(http.MethodPost, "/login", strings.NewReader(form.Encode()), nil)
		if res.StatusCode != want {
			t.Errorf("attempt %d: %s, want %d", i+1, res.Status, want)
		}
		if strings.Contains(body, "not the password") {
			t.Errorf("attempt %d: the page echoes the password", i+1)
		}
		if cookieOf(res, sessionCookie) != nil {
			t.Errorf("attempt %d set a session cookie", i+1)
		}
		wantText := map[int]string{401: "Wrong e-mail address or password.", 429: "Too many attempts."}[want]
		if !strings.Contains(body, wantText) {
			t.Errorf("attempt %d: page does not say %q", i+1, wantText)
		}
	}
}

func cookieOf(res *http.Response, name string) *http.Cookie {
	for _, c := range res.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}
