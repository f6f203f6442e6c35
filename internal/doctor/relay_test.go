package doctor

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"

	"mailout/internal/mx/mxtest"
	"mailout/internal/peertest"
	"mailout/internal/route"
	"mailout/internal/smtptest"
	"mailout/internal/transport"
)

// TestRelayPostfix reproduces the relay situations of the guide against the
// real Postfix peer: working, authentication required, wrong password,
// relay denied (its real "554 5.7.1 Relay access denied"), both TLS mode
// mismatches, wrong port, refused port, TLS interception by a proxy with
// its own certificate.
func TestRelayPostfix(t *testing.T) {
	p := peertest.Postfix(t)
	pool := p.CertPool(t)
	host := func(hp string) string { h, _, _ := net.SplitHostPort(hp); return h }
	port := func(hp string) string { _, pt, _ := net.SplitHostPort(hp); return pt }
	sub, smtps, plain := p.Submission, p.SMTPS, p.Plain
	h := host(sub)
	cred := p.User + ":" + p.Pass + "@"
	closed := closedPort(t)
	proxy := interceptProxy(t, smtps, p.TLSConfig(t, host(smtps)))
	subPort, _ := strconv.Atoi(port(sub))

	tests := []struct {
		name  string
		url   string
		probe []int
		want  want
	}{
		{"working", "smtp://" + cred + sub, nil, want{verdict: VerdictOK, en: "small test campaign", es: "envío pequeño de prueba"}},
		{"working implicit TLS", "smtps://" + cred + smtps, nil, want{verdict: VerdictOK, en: "slow speed profile", es: "baja velocidad"}},
		{"authentication required", "smtp://" + sub, nil, want{verdict: VerdictAuthRequired,
			en: "won't send mail for you without logging in", es: "sin autenticarse"}},
		{"wrong password", "smtp://" + p.User + ":not-the-password@" + sub, nil, want{verdict: VerdictAuthFailed,
			en: "refused the user name or password", es: "rechazó el nombre de usuario o la contraseña"}},
		{"relay denied", "smtp+insecure://" + plain, nil, want{verdict: VerdictRelayDenied,
			en: "won't relay for you: authenticate, or use the SMTP server of the provider you are connected through",
			es: "no desea hablar con usted: necesita autenticarse"}},
		{"implicit TLS on a STARTTLS port", "smtps://" + cred + sub, nil, want{verdict: VerdictTLSModeMismatch,
			en: "port 465 wants TLS from the start", es: "el puerto 465 espera TLS desde el inicio",
			suggest: "smtp://" + p.User + "@" + sub}},
		{"STARTTLS on an implicit TLS port", "smtp://" + cred + smtps, nil, want{verdict: VerdictTLSModeMismatch,
			en: "ports 587 and 25 want STARTTLS", es: "los puertos 587 y 25 esperan STARTTLS",
			suggest: "smtps://" + p.User + "@" + smtps}},
		{"wrong port", fmt.Sprintf("smtp://%s%s:%d", cred, h, closed), []int{closedPort(t), subPort}, want{verdict: VerdictRelayWrongPort,
			en: "the same server answers on another one", es: "el mismo servidor responde en otro",
			suggest: "smtp://" + p.User + "@" + sub}},
		{"refused, nothing else answers", fmt.Sprintf("smtp://%s%s:%d", cred, h, closed), []int{closedPort(t)}, want{verdict: VerdictRelayRefused,
			en: "name or port is wrong, or the service is down", es: "IP incorrecta"}},
		{"TLS interception", "smtps://" + cred + proxy, nil, want{verdict: VerdictTLSIntercepted,
			en: "antivirus or firewall that scans outgoing mail", es: "antivirus o firewall que comprueba el correo saliente"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			probe := tt.probe
			if probe == nil {
				probe = []int{}
			}
			r := Run(context.Background(), Config{Route: route.Relay, Relays: []*transport.RelayAccount{relayAccount(t, tt.url)},
				RootCAs: pool, HELO: "doctor.mailout.test", Timeouts: fastTimeouts, ProbePorts: probe})
			checkReport(t, r, tt.want, p.Pass, "not-the-password")
		})
	}

	t.Run("interception evidence names the proxy's certificate", func(t *testing.T) {
		r := Run(context.Background(), Config{Route: route.Relay, Relays: []*transport.RelayAccount{relayAccount(t, "smtps://"+cred+proxy)},
			RootCAs: pool, Timeouts: fastTimeouts, ProbePorts: []int{}})
		f := finding(t, r, "relay.tls")
		if f.Code != "unknown-authority" || !strings.Contains(strings.Join(f.Evidence, "\n"), "issued by") {
			t.Errorf("relay.tls = %+v", f)
		}
	})

	t.Run("second account takes over", func(t *testing.T) {
		r := Run(context.Background(), Config{Route: route.Relay, RootCAs: pool, Timeouts: fastTimeouts, ProbePorts: []int{},
			Relays: []*transport.RelayAccount{relayAccount(t, "smtp+insecure://"+plain), relayAccount(t, "smtp://"+cred+sub)}})
		if !r.OK() || len(r.Accounts) != 2 || r.Accounts[0].ID != VerdictRelayDenied {
			t.Errorf("verdict %q, accounts %+v", r.Verdict.ID, r.Accounts)
		}
	})
}

// TestRelayHostUnknown: a relay host name that does not exist, by the
// reserved .invalid (no query at all) and by an NXDOMAIN answer of a test
// DNS server; and a DNS server that does not answer.
func TestRelayHostUnknown(t *testing.T) {
	z := mxtest.NewZone().A("relay.lab.test", "127.0.0.1")
	z.Drop("silent.lab.test")
	dns := mxtest.Start(t, z)
	tests := []struct {
		name, url string
		want      want
	}{
		{"invalid TLD", "smtp://u:secret-pw@smtp.example.invalid:587", want{verdict: VerdictRelayHostUnknown,
			en: "smtp.example.invalid does not exist", es: "No existe posibilidad de «adivinar»"}},
		{"NXDOMAIN", "smtp://u:secret-pw@smtp.nowhere.lab.test:587", want{verdict: VerdictRelayHostUnknown,
			en: "copy it exactly as your provider gives it", es: "cópielo exactamente"}},
		{"DNS does not answer", "smtp://u:secret-pw@silent.lab.test:587", want{verdict: VerdictRelayDNS,
			en: "enter your ISP's DNS server by IP", es: "ingrese manualmente el servidor DNS"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Run(context.Background(), Config{Route: route.Relay, Relays: []*transport.RelayAccount{relayAccount(t, tt.url)},
				DNS: []string{dns.Addr()}, Timeouts: fastTimeouts, ProbePorts: []int{}})
			checkReport(t, r, tt.want, "secret-pw")
		})
	}
	if n := len(dns.Log()); n == 0 {
		t.Error("the test DNS server got no query")
	}
	for _, q := range dns.Log() {
		if strings.Contains(q.Name, "invalid") {
			t.Errorf("a .invalid name was queried: %+v", q)
		}
	}
}

// interceptProxy is what an antivirus scanning outgoing mail does: it ends
// the client's TLS with a certificate of its own authority and speaks to the
// real server with its own TLS session. It returns its address.
func interceptProxy(t *testing.T, upstream string, upTLS *tls.Config) string {
	t.Helper()
	srvTLS, _, _ := smtptest.NewTestCert(t, "127.0.0.1", "localhost")
	l, err := tls.Listen("tcp", "127.0.0.1:0", srvTLS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				u, err := tls.Dial("tcp", upstream, upTLS)
				if err != nil {
					return
				}
				defer u.Close()
				go func() { _, _ = io.Copy(u, c); u.Close() }()
				_, _ = io.Copy(c, u)
			}()
		}
	}()
	return l.Addr().String()
}
