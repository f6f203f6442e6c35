package web

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"mailout/internal/campaign"
	"mailout/internal/recipient"
	"mailout/internal/route"
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
