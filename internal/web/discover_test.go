package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"mailout/internal/doctor"
	"mailout/internal/mx/mxtest"
	"mailout/internal/smtptest"
)

// "Find my provider's settings" runs the doctor's Discover for the
// address and fills the relay form with what it found.
func TestDiscoverFillsTheRelayForm(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{Auth: map[string]string{"alice@lab.test": "pw-0123456789"}})
	_, portText, _ := strings.Cut(srv.Addr, ":")
	port, _ := strconv.Atoi(portText)
	dns := mxtest.Start(t, mxtest.NewZone().A("smtp.lab.test", "127.0.0.1"))
	a := newApp(t, appOptions{doctor: func(c *Config) {
		c.Discover = func(dc *doctor.DiscoverConfig) {
			dc.DNS, dc.Ports = []string{dns.Addr()}, []int{port}
			dc.HTTPGet = func(context.Context, string) ([]byte, error) { return nil, errors.New("no autoconfig here") }
		}
	}})
	a.signIn()
	res, page := a.do(http.MethodPost, "/doctor/discover", strings.NewReader(url.Values{"address": {"alice@lab.test"}}.Encode()), nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("discover: %s", res.Status)
	}
	for _, want := range []string{`id="host" name="host" value="smtp.lab.test"`, `value="` + portText + `"`, `value="alice@lab.test"`, "What was found"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if res, _ := a.do(http.MethodPost, "/doctor/discover", strings.NewReader("address=not-an-address"), nil); res.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("not an address: %s, want 422", res.Status)
	}
}
