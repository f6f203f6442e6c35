package web

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"mailout/internal/browsertest"
)

// Double opt-in end to end in a real browser, through the sandbox route:
// the form switched on in the list's page, the public form filled in, the
// confirmation message read from the sandbox on the list's page, its link
// followed (in Spanish) and confirmed; the subscriber is in the list with
// its consent record. No serious accessibility violation or resource
// refused by the Content Security Policy on the pages.
func TestOptInInABrowser(t *testing.T) {
	a := newApp(t)
	a.signIn()
	if res := a.post("/settings/public", url.Values{"public_url": {a.srv.URL}}, nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("public URL: %s", res.Status)
	}
	l := a.newList("Newsletter", "")
	b := browsertest.New(t)
	check := func(name string) {
		t.Helper()
		b.AssertNoSeriousA11y(t)
		b.AssertNoCSPViolations(t)
		b.Screenshot(name)
	}
	b.Navigate(a.srv.URL + "/login")
	b.Fill("#email", adminEmail)
	b.Fill("#password", adminPassword)
	b.ClickAndWaitLoad("main button[type=submit]")

	b.Navigate(a.srv.URL + listURL(l.ID))
	b.Click("#optin-enabled")
	b.Fill("#optin-from", "News <news@example.com>")
	b.ClickAndWaitLoad("form[action$='/form'] button[type=submit]")
	if got := b.Text("[role=status]"); got != "The subscription form is saved." {
		t.Fatalf("saving the form: %q", got)
	}
	check("list-form")
	if got := b.Value("#optin-body"); !strings.Contains(got, "{{.confirm_url}}") {
		t.Fatalf("the saved form's message text is %q; want the text that is sent, with its link", got)
	}
	formURL := b.Text("#optin-url")
	if !strings.HasPrefix(formURL, a.srv.URL+"/s/") {
		t.Fatalf("form address %q", formURL)
	}

	b.Navigate(formURL)
	check("subscribe-form")
	b.Fill("#email", "reader@example.org")
	b.ClickAndWaitLoad("main button[type=submit]")
	if got := b.Text("h1"); got != "Check your inbox" {
		t.Fatalf("after the form: %q", got)
	}
	check("subscribe-sent")

	b.Navigate(a.srv.URL + listURL(l.ID))
	b.ClickAndWaitLoad("#optin tbody a")
	msg := b.Text("pre.message")
	if !strings.Contains(msg, "Subject: Please confirm your subscription to Newsletter") {
		t.Fatalf("confirmation message:\n%s", msg)
	}
	check("confirmation-message")
	link := regexp.MustCompile(regexp.QuoteMeta(a.srv.URL) + `/c/[A-Za-z0-9_-]+`).FindString(msg)
	if link == "" {
		t.Fatalf("no confirmation link in:\n%s", msg)
	}

	b.SetAcceptLanguage("es")
	b.Navigate(link)
	if got := b.Text("main button[type=submit]"); got != "Confirmar" {
		t.Fatalf("confirmation button %q", got)
	}
	if n := len(a.subscribers(l.ID)); n != 0 {
		t.Fatal("opening the link subscribed the address")
	}
	check("confirm-es")
	b.ClickAndWaitLoad("main button[type=submit]")
	if got := b.Text("h1"); got != "Suscripción confirmada" {
		t.Fatalf("after confirming: %q", got)
	}
	check("confirmed-es")

	subs := a.subscribers(l.ID)
	if len(subs) != 1 || subs[0].Email != "reader@example.org" {
		t.Fatalf("subscribers = %+v", subs)
	}
	b.SetAcceptLanguage("en")
	b.Navigate(a.srv.URL + listURL(l.ID) + "/subscribers/" + itoa(subs[0].ID))
	if got := b.Text("main table tbody"); !strings.Contains(got, "Subscribed") || !strings.Contains(got, "form "+formURL) {
		t.Fatalf("consent records: %q", got)
	}
	check("subscriber-consent")
}
