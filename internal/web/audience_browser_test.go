package web

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mailout/internal/browsertest"
	"mailout/internal/store"
)

// The lists and settings pages in a real browser: signed in through the
// form, a CSV imported through the file field, a relay account saved;
// no serious accessibility violation or resource refused by the
// Content Security Policy on any of them.
func TestAudiencePagesInABrowser(t *testing.T) {
	a := newApp(t)
	if _, err := a.acc.CreateAdmin(t.Context(), adminEmail, adminPassword); err != nil {
		t.Fatal(err)
	}
	l := a.newList("Newsletter", "email,first_name\nana@example.org,Ana\nbo@example.org,Bo\n")
	if err := a.svc.Store().Suppress(t.Context(), store.Suppression{Key: "bo@example.org", Reason: "unsubscribed", Source: "manual"}); err != nil {
		t.Fatal(err)
	}
	b := browsertest.New(t)
	b.Navigate(a.srv.URL + "/login")
	b.Fill("#email", adminEmail)
	b.Fill("#password", adminPassword)
	b.ClickAndWaitLoad("main button[type=submit]")

	check := func(name string) {
		t.Helper()
		b.AssertNoSeriousA11y(t)
		b.AssertNoCSPViolations(t)
		b.Screenshot(name)
	}
	if st := b.Navigate(a.srv.URL + "/lists"); st != http.StatusOK {
		t.Fatalf("/lists: %d", st)
	}
	check("lists")
	b.Navigate(a.srv.URL + listURL(l.ID))
	check("list")
	csv := filepath.Join(t.TempDir(), "people.csv")
	if err := os.WriteFile(csv, []byte("email,first_name\ncy@example.org,Cy\nnot-an-address,X\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b.UploadFile("#file", csv)
	b.ClickAndWaitLoad("form[enctype] button[type=submit]")
	if got := b.Text("[role=status]"); got != "1 added, 0 updated, 1 rejected." {
		t.Errorf("import result %q", got)
	}
	check("list-import")
	b.Navigate(a.srv.URL + listURL(l.ID) + "/delete")
	check("list-delete")

	a.post("/login", url.Values{"email": {adminEmail}, "password": {adminPassword}}, nil)
	a.post("/settings/relays", url.Values{"index": {"-1"}, "name": {"main"}, "host": {"smtp.example.com"}, "port": {"587"},
		"tls": {"starttls"}, "user": {"me"}, "password": {relayPassword}}, nil)
	b.Navigate(a.srv.URL + "/settings")
	b.Fill("#r-name", "backup")
	b.Fill("#r-host", "smtp2.example.com")
	b.Fill("#r-port", "0")
	b.ClickAndWaitLoad("#relay-form button[type=submit]")
	if got := b.Text(".field-error"); got == "" {
		t.Error("no error next to the port")
	}
	if got := b.Text("#relays-h + p + div tbody"); !strings.Contains(got, "main") || strings.Contains(got, "backup") {
		t.Errorf("the accounts table shows %q: want the stored account only", got)
	}
	check("settings-error")
	b.Navigate(a.srv.URL + "/settings?edit=relay.0")
	if got := b.Value("#r-password"); got != "" {
		t.Errorf("the password field holds %q", got)
	}
	check("settings-edit")
}
