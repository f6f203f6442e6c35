package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"mailout/internal/audience"
	"mailout/internal/campaign"
	"mailout/internal/recipient"
	"mailout/internal/route"
	"mailout/internal/secret"
	"mailout/internal/store"
	"mailout/internal/throttle"
)

// unsubscribeLinks creates a campaign with a public URL and returns the
// unsubscribe path (/u/TOKEN) of each recipient, by address.
func (a *app) unsubscribeLinks(name, list string) (*store.Campaign, map[string]string) {
	a.t.Helper()
	ctx := context.Background()
	rt, err := campaign.RouteConfig{}.Check(route.Sandbox, campaign.Env{})
	if err != nil {
		a.t.Fatal(err)
	}
	draft, err := campaign.NewCampaign{Name: name, Routing: rt, MaxAge: 3600e9, RetryMin: 60e9,
		Message:  &store.Message{Template: []byte(testMessage + "Leave: {{unsubscribe_url}}\n"), TemplateName: "message.txt"},
		OneClick: campaign.OneClick{PublicURL: a.srv.URL},
		Profile:  throttle.Profile{Name: "test", Connections: 1, Rate: 1000}}.Check(campaign.Env{})
	if err != nil {
		a.t.Fatal(err)
	}
	c, _, err := a.svc.Create(ctx, draft, recipient.Rows(ctx, strings.NewReader(list), recipient.Options{}, nil), nil)
	if err != nil {
		a.t.Fatal(err)
	}
	k, err := a.svc.UnsubscribeKey(ctx)
	if err != nil {
		a.t.Fatal(err)
	}
	links := map[string]string{}
	err = a.svc.Store().Deliveries(ctx, c.ID, store.DeliveryFilter{}, func(d *store.Delivery) error {
		links[d.Email] = "/u/" + k.Token(c.ID, d.ID)
		return nil
	})
	if err != nil {
		a.t.Fatal(err)
	}
	return c, links
}

func (a *app) suppressed(email string) bool {
	a.t.Helper()
	ok, err := a.svc.Store().IsSuppressed(context.Background(), email)
	if err != nil {
		a.t.Fatal(err)
	}
	return ok
}

// A person opens the link: the page asks in their language and changes
// nothing; its button unsubscribes; the campaign page counts it.
func TestUnsubscribeConfirmationPage(t *testing.T) {
	a := newApp(t)
	c, links := a.unsubscribeLinks("spring", fiveRecipients)
	link := links["b@example.org"]

	res, body := a.do(http.MethodGet, link, nil, http.Header{"Accept-Language": {"es-ES,es;q=0.9"}})
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `lang="es"`) || !strings.Contains(body, "Darme de baja") {
		t.Fatalf("GET in Spanish: %s\n%s", res.Status, body)
	}
	if res.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q", res.Header.Get("Cache-Control"))
	}
	if a.suppressed("b@example.org") {
		t.Fatal("a GET unsubscribed")
	}
	m := regexp.MustCompile(`name="confirm" value="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no confirmation field:\n%s", body)
	}
	// A POST with neither the one-click body nor the page's field asks again.
	if res := a.post(link, url.Values{"confirm": {"0.AAAA"}}, nil); res.StatusCode != http.StatusBadRequest {
		t.Errorf("POST with a wrong confirmation field: %s", res.Status)
	}
	if a.suppressed("b@example.org") {
		t.Fatal("a POST without confirmation unsubscribed")
	}
	res, body = a.do(http.MethodPost, link, strings.NewReader(url.Values{"confirm": {m[1]}}.Encode()),
		http.Header{"Sec-Fetch-Site": {"same-origin"}, "Accept-Language": {"en"}})
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "You are unsubscribed") {
		t.Fatalf("the page's button: %s\n%s", res.Status, body)
	}
	if !a.suppressed("b@example.org") || a.suppressed("a@example.org") {
		t.Fatal("the button did not unsubscribe b@example.org alone")
	}
	a.signIn()
	_, page := a.get("/campaigns/" + itoa(c.ID))
	if !strings.Contains(page, `data-field="unsubscribed">1<`) {
		t.Errorf("the campaign page does not count the unsubscribe:\n%s", page)
	}
}

// A forged link is a 404 page and changes nothing; the cross-origin
// protection lets the one-click POST through and nothing else.
func TestUnsubscribeForgedAndCrossOrigin(t *testing.T) {
	a := newApp(t)
	_, links := a.unsubscribeLinks("spring", fiveRecipients)
	crossSite := http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://mail.provider.example"}}
	oneClick := url.Values{"List-Unsubscribe": {"One-Click"}}
	link := links["c@example.org"]
	forged := link[:len(link)-3] + "AAA"
	if forged == link {
		forged = link[:len(link)-3] + "BBA"
	}
	for _, p := range []string{forged, "/u/AQEBAAAAAAAAAAAAAAAAAAAAAAAA", "/u/" + strings.Repeat("A", 300)} {
		if res, body := a.get(p); res.StatusCode != http.StatusNotFound || !strings.Contains(body, "Link not valid") {
			t.Errorf("GET %s: %s", p, res.Status)
		}
		if res := a.post(p, oneClick, crossSite); res.StatusCode != http.StatusNotFound {
			t.Errorf("POST %s: %s", p, res.Status)
		}
	}
	if a.suppressed("c@example.org") {
		t.Fatal("a forged link unsubscribed")
	}
	// The same cross-site request elsewhere is still refused.
	if res := a.post("/lang", url.Values{"lang": {"es"}, "next": {"/"}}, crossSite); res.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site POST /lang: %s, want 403", res.Status)
	}
	// RFC 8058 §3.2 allows multipart/form-data too.
	body := "--XX\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--XX--\r\n"
	h := http.Header{"Content-Type": {"multipart/form-data; boundary=XX"}, "Sec-Fetch-Site": {"cross-site"}}
	for range 2 {
		if res, page := a.do(http.MethodPost, link, strings.NewReader(body), h); res.StatusCode != http.StatusOK {
			t.Fatalf("multipart one-click POST: %s\n%s", res.Status, page)
		}
	}
	if !a.suppressed("c@example.org") {
		t.Fatal("the one-click POST did not unsubscribe")
	}
}

// newComposeAppWith is newComposeApp with the app's Config adjusted.
func newComposeAppWith(t *testing.T, csv string, adjust func(*Config)) *composeApp {
	t.Helper()
	key, err := secret.NewKey(secret.Generate())
	if err != nil {
		t.Fatal(err)
	}
	a := newApp(t, appOptions{doctor: func(c *Config) { c.SecretKey = key; adjust(c) }})
	a.signIn()
	ctx := context.Background()
	ca := &composeApp{app: a}
	aud := audience.New(a.svc.Store())
	if ca.list, err = aud.Create(ctx, "members"); err != nil {
		t.Fatal(err)
	}
	if _, err := aud.Import(ctx, ca.list.ID, strings.NewReader(csv), "test", recipient.Options{}); err != nil {
		t.Fatal(err)
	}
	if ca.subs, err = aud.Subscribers(ctx, ca.list.ID, store.SubscriberFilter{}); err != nil {
		t.Fatal(err)
	}
	return ca
}

// serve's --public-url reaches the campaigns made on the compose page:
// the preview shows the link's form, the campaign keeps the URL and its
// messages carry each recipient's link. Without it {{unsubscribe_url}}
// is refused with the reason.
func TestComposeUsesServesPublicURL(t *testing.T) {
	a := newComposeAppWith(t, threeSubscribers, func(c *Config) { c.OneClick = campaign.OneClick{PublicURL: "https://mail.example.com/"} })
	v := a.form("preview")
	v.Set("text", "Dear {{.first_name}},\r\nleave: {{unsubscribe_url}}\r\n")
	res, body := a.postForm("/campaigns/new", v)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "leave: https://mail.example.com/u/preview") {
		t.Fatalf("preview: %s\n%s", res.Status, body)
	}
	v.Set("action", "create")
	if res, body := a.postForm("/campaigns/new", v); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("create: %s\n%s", res.Status, body)
	}
	cs := a.campaigns()
	if len(cs) != 1 {
		t.Fatalf("%d campaigns", len(cs))
	}
	c := a.campaign(cs[0].ID)
	if s, err := campaign.SettingsOf(c); err != nil || s.PublicURL != "https://mail.example.com" {
		t.Fatalf("stored settings %+v, %v", s, err)
	}
	if _, err := a.svc.Run(context.Background(), c, campaign.RunOptions{Profile: throttle.Profile{Name: "test", Connections: 1}}); err != nil {
		t.Fatal(err)
	}
	n := 0
	err := a.svc.Store().Messages(context.Background(), c.ID, func(_ int64, email, _ string, data []byte) error {
		n++
		m := regexp.MustCompile(`(?m)^List-Unsubscribe: <(https://mail\.example\.com/u/[A-Za-z0-9_-]+)>\r$`).FindSubmatch(data)
		if m == nil {
			t.Errorf("message to %s has no List-Unsubscribe:\n%s", email, data)
			return nil
		}
		if !strings.Contains(string(data), "leave: "+string(m[1])) {
			t.Errorf("message to %s: the body's link is not the header's", email)
		}
		t, err := a.svc.UnsubscribeTarget(context.Background(), strings.TrimPrefix(string(m[1]), "https://mail.example.com/u/"))
		if err != nil || t.Delivery.Email != email {
			return fmt.Errorf("message to %s: link names %+v, %v", email, t, err)
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Fatalf("%d messages, %v", n, err)
	}

	b := newComposeAppWith(t, threeSubscribers, func(*Config) {})
	v.Set("name", "summer")
	if res, body := b.postForm("/campaigns/new", v); res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "needs a public URL") {
		t.Errorf("{{unsubscribe_url}} without a public URL: %s\n%s", res.Status, body)
	}
}
