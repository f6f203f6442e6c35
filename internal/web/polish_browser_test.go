package web

import (
	"fmt"
	"net/http"
	"testing"

	"mailout/internal/browsertest"
	"mailout/internal/mx/mxtest"
	"mailout/internal/setting"
)

// The doctor page's sender form and the settings page's public address
// in a real browser: the sender checked through the form shows its
// problems, the settings page its new form; no serious accessibility
// violation or resource refused by the Content Security Policy, and the
// icon loads.
func TestSenderAndPublicAddressInABrowser(t *testing.T) {
	z := mxtest.NewZone().A("smtp.relay.test", "127.0.0.10").
		RR(fmt.Sprintf("broken.test. 300 IN TXT %q", "v=spf1 ip4:192.0.2.99 -all"))
	dns := mxtest.Start(t, z)
	a := newApp(t)
	if _, err := a.acc.CreateAdmin(t.Context(), adminEmail, adminPassword); err != nil {
		t.Fatal(err)
	}
	st := &setting.Settings{DNS: []string{dns.Addr()},
		Relays: []setting.RelayAccount{{Name: "provider", Host: "smtp.relay.test", Port: 587, TLS: setting.TLSStartTLS}}}
	if err := setting.Save(t.Context(), a.svc.Store(), a.key, st); err != nil {
		t.Fatal(err)
	}
	b := browsertest.New(t)
	b.Navigate(a.srv.URL + "/login")
	b.Fill("#email", adminEmail)
	b.Fill("#password", adminPassword)
	b.ClickAndWaitLoad("main button[type=submit]")

	if st := b.Navigate(a.srv.URL + "/static/favicon.svg"); st != http.StatusOK {
		t.Errorf("icon: %d", st)
	}
	b.Navigate(a.srv.URL + "/doctor")
	b.Fill("#s-from", "news@broken.test")
	b.ClickAndWaitLoad("form[action='/doctor/sender'] button[type=submit]")
	if got := b.Text("#h-sender-result"); got != "Sender checks" {
		t.Errorf("result heading %q", got)
	}
	b.AssertNoSeriousA11y(t)
	b.AssertNoCSPViolations(t)
	b.Screenshot("doctor-sender")

	b.Navigate(a.srv.URL + "/settings")
	b.AssertNoSeriousA11y(t)
	b.AssertNoCSPViolations(t)
	b.Screenshot("settings-public")
}
