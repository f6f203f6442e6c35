package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mailout/internal/dkim"
	"mailout/internal/mx/mxtest"
	"mailout/internal/setting"
)

// senderKey writes a new Ed25519 DKIM key for example.com, selector s1,
// and returns its file and the DNS record that publishes it.
func senderKey(t *testing.T) (file, name, value string) {
	t.Helper()
	pem, err := dkim.GenerateKey("ed25519", 0)
	if err != nil {
		t.Fatal(err)
	}
	s, err := dkim.New("example.com", "s1", pem, dkim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	file = filepath.Join(t.TempDir(), "dkim.pem")
	if err := os.WriteFile(file, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	name, value = s.DNSRecord()
	return file, name, value
}

// "Check my sender domain" on the doctor page runs the sender checks on a
// route of the stored settings, against the settings' DNS server: a good
// sender passes, a broken one shows each problem with its verdict ID,
// severity, title and advice, in English or Spanish.
func TestDoctorPageChecksTheSender(t *testing.T) {
	keyFile, name, value := senderKey(t)
	z := mxtest.NewZone().A("smtp.relay.test", "127.0.0.10").
		// example.com: SPF covers the relay, DKIM published, DMARC reject.
		RR(fmt.Sprintf("example.com. 300 IN TXT %q", "v=spf1 ip4:127.0.0.10 -all")).
		RR(fmt.Sprintf("%s. 300 IN TXT %q", name, value)).
		RR(fmt.Sprintf("_dmarc.example.com. 300 IN TXT %q", "v=DMARC1; p=reject; rua=mailto:d@example.com")).
		// broken.test: SPF lists another address, no DMARC.
		RR(fmt.Sprintf("broken.test. 300 IN TXT %q", "v=spf1 ip4:192.0.2.99 -all"))
	dns := mxtest.Start(t, z)
	a := newApp(t)
	a.signIn()
	st := &setting.Settings{DNS: []string{dns.Addr()},
		Relays: []setting.RelayAccount{{Name: "provider", Host: "smtp.relay.test", Port: 587, TLS: setting.TLSStartTLS}}}
	if err := setting.Save(context.Background(), a.svc.Store(), a.key, st); err != nil {
		t.Fatal(err)
	}

	_, page := a.get("/doctor")
	for _, want := range []string{`action="/doctor/sender"`, `<option value="relay:provider" selected>`, `for="s-key"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the doctor page lacks %q", want)
		}
	}

	check := func(form url.Values, lang string) (int, string) {
		t.Helper()
		res, page := a.do(http.MethodPost, "/doctor/sender", strings.NewReader(form.Encode()), http.Header{"Accept-Language": {lang}})
		return res.StatusCode, page
	}
	good := url.Values{"from": {"news@example.com"}, "sender_route": {"relay:provider"}, "dkim_selector": {"s1"}, "dkim_key": {keyFile}}
	code, page := check(good, "en")
	if code != http.StatusOK {
		t.Fatalf("good sender: %d\n%s", code, page)
	}
	for _, want := range []string{"<code>sender-ok</code>", "the sender passes the checks", "List-Unsubscribe", "127.0.0.10"} {
		if !strings.Contains(page, want) {
			t.Errorf("good sender: the page lacks %q", want)
		}
	}
	if strings.Contains(page, "PRIVATE KEY") {
		t.Error("the page shows the key")
	}

	broken := url.Values{"from": {"news@broken.test"}, "sender_route": {"relay:provider"}}
	for _, tc := range []struct{ lang, title, dmarc, dkim string }{
		{"en", "SPF does not authorise the route&#39;s sending address", "the From domain has no DMARC record", "the messages are not signed (DKIM)"},
		{"es", "SPF no autoriza la dirección de envío de la ruta", "el dominio del From no tiene registro DMARC", "los mensajes no están firmados (DKIM)"},
	} {
		code, page := check(broken, tc.lang)
		if code != http.StatusOK {
			t.Fatalf("%s: %d", tc.lang, code)
		}
		for _, want := range []string{"<code>spf-does-not-cover-route</code>", tc.title, "<code>dmarc-missing</code>", tc.dmarc,
			"<code>dkim-not-configured</code>", tc.dkim, `class="sev-fail"`, `class="sev-warn"`} {
			if !strings.Contains(page, want) {
				t.Errorf("%s: the page lacks %q", tc.lang, want)
			}
		}
		if strings.Contains(page, "sender-ok") {
			t.Errorf("%s: a broken sender passes", tc.lang)
		}
	}

	// Direct delivery from 127.0.0.10 (given): no reverse DNS.
	direct := url.Values{"from": {"news@example.com"}, "sender_route": {"direct"}, "source_ip": {"127.0.0.10"},
		"dkim_selector": {"s1"}, "dkim_key": {keyFile}}
	if code, page := check(direct, "en"); code != http.StatusOK || !strings.Contains(page, "<code>fcrdns-missing</code>") {
		t.Errorf("direct: %d, want the fcrdns-missing verdict\n%s", code, page)
	}

	for _, bad := range []url.Values{
		{"from": {"not-an-address"}, "sender_route": {"direct"}},
		{"from": {"news@example.com"}, "sender_route": {"relay:nobody"}},
		{"from": {"news@example.com"}, "sender_route": {"relay:provider"}, "source_ip": {"127.0.0.10"}},
		{"from": {"news@example.com"}, "sender_route": {"direct"}, "dkim_key": {filepath.Join(t.TempDir(), "none.pem")}},
	} {
		if code, _ := check(bad, "en"); code != http.StatusUnprocessableEntity {
			t.Errorf("%v: %d, want 422", bad, code)
		}
	}
	if _, page := check(url.Values{"from": {"news@example.com"}, "sender_route": {"direct"}, "dkim_key": {filepath.Join(t.TempDir(), "none.pem")}}, "en"); !strings.Contains(page, "does not exist") {
		t.Error("a missing key file is not explained")
	}
}
