package web

import (
	"encoding/csv"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mailout/internal/store"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// optinApp is an app with a public address, a list and its form switched
// on (sandbox route), and a clock the test moves.
func optinApp(t *testing.T) (*app, *store.List, string, *clock) {
	t.Helper()
	clk := &clock{t: time.Now()}
	a := newApp(t, appOptions{doctor: func(c *Config) { c.Now = clk.Now }})
	a.signIn()
	if res := a.post("/settings/public", url.Values{"public_url": {a.srv.URL}}, nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("public URL: %s", res.Status)
	}
	l := a.newList("Newsletter", "email,first_name\nold@example.org,Old\n")
	res := a.post(listURL(l.ID)+"/form", url.Values{"enabled": {"on"}, "from": {"News <news@example.com>"},
		"subject": {"Confirm {{.list}}"}, "body": {"Hello,\nconfirm here: {{.confirm_url}}\n"}, "route": {"sandbox"}}, nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("saving the form: %s", res.Status)
	}
	_, page := a.get(listURL(l.ID))
	m := regexp.MustCompile(`href="(/s/[^"]+)" id="optin-url"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("the list's page shows no form address")
	}
	return a, l, m[1], clk
}

// public sends a request without the admin's cookies.
func (a *app) public(method, path, body string, h http.Header) (*http.Response, string) {
	a.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, a.srv.URL+path, r)
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range h {
		req.Header[k] = v
	}
	res, err := a.srv.Client().Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// sandboxLinks are the confirmation links of the messages the sandbox
// kept for the list, newest first.
func (a *app) sandboxLinks(l *store.List) []string {
	a.t.Helper()
	var out []string
	re := regexp.MustCompile(regexp.QuoteMeta(a.srv.URL) + `(/c/[A-Za-z0-9_-]+)`)
	_ = a.svc.Store().PendingSubscriptions(a.t.Context(), l.ID, 0, func(p *store.PendingSubscription) error {
		if m := re.FindSubmatch(p.Message); m != nil {
			out = append(out, string(m[1]))
		}
		return nil
	})
	return out
}

// The form over HTTP: a request gets "check your inbox" and a message in
// the sandbox; the link's GET changes nothing, its POST subscribes, once;
// the consent record shows on the subscriber's page and in the export.
func TestOptInFormConfirmsByPost(t *testing.T) {
	a, l, form, _ := optinApp(t)
	res, body := a.public("GET", form, "", nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `name="website"`) || !strings.Contains(body, "Newsletter") {
		t.Fatalf("GET form: %s\n%s", res.Status, body)
	}
	res, body = a.public("POST", form, "email=new%40example.org&website=", nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "Check your inbox") {
		t.Fatalf("POST form: %s\n%s", res.Status, body)
	}
	links := a.sandboxLinks(l)
	if len(links) != 1 {
		t.Fatalf("%d confirmation messages in the sandbox, want 1", len(links))
	}
	if n := len(a.subscribers(l.ID)); n != 1 {
		t.Fatalf("%d subscribers before confirmation, want 1", n)
	}
	res, body = a.public("GET", links[0], "", nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "new@example.org") || !strings.Contains(body, `<form method="post"`) {
		t.Fatalf("GET link: %s\n%s", res.Status, body)
	}
	if n := len(a.subscribers(l.ID)); n != 1 {
		t.Fatal("a GET of the link subscribed the address")
	}
	for range 2 {
		res, body = a.public("POST", links[0], "", nil)
		if res.StatusCode != http.StatusOK || !strings.Contains(body, "You are subscribed") {
			t.Fatalf("POST link: %s\n%s", res.Status, body)
		}
	}
	var sub *store.Subscriber
	for _, s := range a.subscribers(l.ID) {
		if s.Email == "new@example.org" {
			sub = &s
		}
	}
	if sub == nil || len(a.subscribers(l.ID)) != 2 {
		t.Fatalf("subscribers after confirmation: %+v", a.subscribers(l.ID))
	}
	_, page := a.get(listURL(l.ID) + "/subscribers/" + strconv.FormatInt(sub.ID, 10))
	if !strings.Contains(page, "Consent records") || !strings.Contains(page, "127.0.0.1") || !strings.Contains(page, "form "+a.srv.URL+form) {
		t.Fatalf("the subscriber's page shows no consent record:\n%s", page)
	}
	_, export := a.get(listURL(l.ID) + "/consents.csv")
	rows, err := csv.NewReader(strings.NewReader(export)).ReadAll()
	// The first row is the import of old@ (source "test"), the last the
	// confirmed subscription.
	if err != nil || len(rows) != 3 || rows[1][0] != "old@example.org" || rows[1][2] != "test" ||
		rows[2][0] != "new@example.org" || rows[2][1] != "subscribe" || rows[2][3] != "127.0.0.1" ||
		rows[2][4] == "" || rows[2][5] == "" {
		t.Fatalf("consent export = %q (%v)", rows, err)
	}
}

// A forged, altered or expired link is refused and subscribes nobody.
func TestOptInLinkForgedOrExpired(t *testing.T) {
	a, l, form, clk := optinApp(t)
	a.public("POST", form, "email=late%40example.org", nil)
	links := a.sandboxLinks(l)
	if len(links) != 1 {
		t.Fatalf("%d confirmation messages", len(links))
	}
	tok := strings.TrimPrefix(links[0], "/c/")
	altered := []byte(tok)
	altered[2] ^= 1
	for name, path := range map[string]string{
		"forged":  "/c/AQEBAQEBAQEBAQEBAQEBAQEBAQE",
		"altered": "/c/" + string(altered),
	} {
		if res, _ := a.public("POST", path, "", nil); res.StatusCode != http.StatusNotFound {
			t.Errorf("%s link: POST %s, want 404", name, res.Status)
		}
	}
	clk.add(7*24*time.Hour + time.Second)
	if res, body := a.public("GET", links[0], "", nil); res.StatusCode != http.StatusNotFound || !strings.Contains(body, "expired") {
		t.Errorf("expired link: GET %s", res.Status)
	}
	if res, _ := a.public("POST", links[0], "", nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("expired link: POST %s, want 404", res.Status)
	}
	if n := len(a.subscribers(l.ID)); n != 1 {
		t.Fatalf("%d subscribers, want the first one only", n)
	}
}

// The same answer whatever the address: a bot that fills the honeypot,
// an address already subscribed and a suppressed one all read "check your
// inbox"; the honeypot and the suppressed address get no message.
func TestOptInSameAnswerNothingSent(t *testing.T) {
	a, l, form, _ := optinApp(t)
	if err := a.svc.Store().Suppress(t.Context(), store.Suppression{Key: "gone@example.org", Reason: "unsubscribed", Source: "manual"}); err != nil {
		t.Fatal(err)
	}
	_, want := a.public("POST", form, "email=fresh%40example.org", nil)
	for _, body := range []string{"email=bot%40example.org&website=http%3A%2F%2Fspam.example", "email=old%40example.org", "email=gone%40example.org"} {
		res, got := a.public("POST", form, body, nil)
		if res.StatusCode != http.StatusOK || got != want {
			t.Errorf("%s: %s, a different answer:\n%s", body, res.Status, got)
		}
	}
	var mailed []string
	_ = a.svc.Store().PendingSubscriptions(t.Context(), l.ID, 0, func(p *store.PendingSubscription) error {
		mailed = append(mailed, p.Email)
		return nil
	})
	if strings.Join(mailed, ",") != "old@example.org,fresh@example.org" {
		t.Fatalf("confirmation messages to %v; want old and fresh only", mailed)
	}
}

// Limits: the fourth message to one address in a day, and the eleventh
// request of one client in a minute, are 429 with Retry-After, as a page
// and as JSON.
func TestOptInRateLimited(t *testing.T) {
	a, _, form, clk := optinApp(t)
	for i := range 3 {
		if res, _ := a.public("POST", form, "email=victim%40example.org", nil); res.StatusCode != http.StatusOK {
			t.Fatalf("request %d: %s", i+1, res.Status)
		}
	}
	res, body := a.public("POST", form, "email=victim%40example.org", nil)
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" || !strings.Contains(body, "Too many") {
		t.Fatalf("4th message to one address: %s Retry-After %q", res.Status, res.Header.Get("Retry-After"))
	}
	for i := 5; i <= 10; i++ {
		a.public("POST", form+"/json", "email=p"+strconv.Itoa(i)+"%40example.org", nil)
	}
	res, body = a.public("POST", form+"/json", "email=p11%40example.org", nil)
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Content-Type") != "application/json" ||
		!strings.Contains(body, `"error":"rate_limited"`) {
		t.Fatalf("11th request in a minute: %s %s", res.Status, body)
	}
	if sec, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || sec < 1 || sec > 60 {
		t.Fatalf("Retry-After %q, want 1..60 seconds", res.Header.Get("Retry-After"))
	}
	clk.add(time.Minute)
	if res, _ := a.public("POST", form+"/json", "email=p12%40example.org", nil); res.StatusCode != http.StatusAccepted {
		t.Fatalf("a minute later: %s", res.Status)
	}
}

// The JSON endpoint takes a website's own form from another origin (JSON
// or urlencoded), answers readable JSON (CORS), and refuses a bad address
// with 422; the HTML form itself stays same-origin.
func TestOptInJSONEndpoint(t *testing.T) {
	a, l, form, _ := optinApp(t)
	cross := http.Header{"Origin": {"https://www.example.com"}, "Sec-Fetch-Site": {"cross-site"}}
	res, body := a.public("OPTIONS", form+"/json", "", http.Header{"Origin": {"https://www.example.com"},
		"Access-Control-Request-Method": {"POST"}, "Access-Control-Request-Headers": {"content-type"}})
	if res.StatusCode != http.StatusNoContent || res.Header.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(res.Header.Get("Access-Control-Allow-Headers"), "Content-Type") {
		t.Fatalf("preflight: %s %v", res.Status, res.Header)
	}
	h := cross.Clone()
	h.Set("Content-Type", "application/json")
	res, body = a.public("POST", form+"/json", `{"email":"web@example.org"}`, h)
	if res.StatusCode != http.StatusAccepted || res.Header.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(body, `"status":"pending"`) {
		t.Fatalf("JSON post: %s %s", res.Status, body)
	}
	res, body = a.public("POST", form+"/json", "email=not-an-address", cross)
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `"error":"invalid_email"`) {
		t.Fatalf("bad address: %s %s", res.Status, body)
	}
	if res, _ := a.public("POST", "/s/1-nosuchform/json", "email=a%40example.org", cross); res.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown form: %s", res.Status)
	}
	if res, _ := a.public("POST", form, "email=x%40example.org", cross); res.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site POST to the HTML form: %s, want 403", res.Status)
	}
	links := a.sandboxLinks(l)
	if len(links) != 1 {
		t.Fatalf("%d confirmation messages, want 1", len(links))
	}
	a.public("POST", links[0], "", nil)
	var cs []store.Consent
	_ = a.svc.Store().Consents(t.Context(), l.ID, "web@example.org", func(c *store.Consent) error { cs = append(cs, *c); return nil })
	if len(cs) != 1 || !strings.HasPrefix(cs[0].Source, "json ") {
		t.Fatalf("consents = %+v", cs)
	}
}

// The consent log also records a subscriber added and removed by hand on
// the list's page, and a one-click unsubscribe from a campaign (for every
// list); the subscriber's page shows the unsubscribe, the export holds
// them all.
func TestConsentLogManualAndOneClick(t *testing.T) {
	a := newApp(t)
	a.signIn()
	l := a.newList("Newsletter", "")
	if res := a.post(listURL(l.ID)+"/subscribers", url.Values{"email": {"ann@example.org"}}, nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("add: %s", res.Status)
	}
	if res := a.post(listURL(l.ID)+"/subscribers", url.Values{"email": {"bob@example.org"}}, nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("add: %s", res.Status)
	}
	_, links := a.unsubscribeLinks("spring", "email,first_name\nann@example.org,Ann\nbob@example.org,Bob\n")
	res, _ := a.public("POST", links["ann@example.org"], "List-Unsubscribe=One-Click", nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("one-click: %s", res.Status)
	}
	subs := a.subscribers(l.ID)
	var bob int64
	for _, s := range subs {
		if s.Email == "bob@example.org" {
			bob = s.ID
		}
	}
	if res := a.post(listURL(l.ID)+"/subscribers/"+strconv.FormatInt(bob, 10)+"/delete", url.Values{}, nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("delete: %s", res.Status)
	}
	_, export := a.get(listURL(l.ID) + "/consents.csv")
	rows, err := csv.NewReader(strings.NewReader(export)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rows[1:] {
		got = append(got, r[0]+" "+r[1]+" "+strings.Fields(r[2])[0]+" "+r[7])
	}
	want := "ann@example.org subscribe manual this|bob@example.org subscribe manual this|ann@example.org unsubscribe one-click all|bob@example.org unsubscribe manual this"
	if strings.Join(got, "|") != want {
		t.Fatalf("consent export:\n%s\nwant %s", strings.Join(got, "\n"), want)
	}
	if !strings.Contains(export, "manual "+adminEmail) || !strings.Contains(export, "one-click spring") {
		t.Fatalf("sources lack the user or the campaign:\n%s", export)
	}
}
