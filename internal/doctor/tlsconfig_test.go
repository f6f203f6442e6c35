package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailout/internal/outcome"
	"mailout/internal/route"
	"mailout/internal/smtpclient"
	"mailout/internal/smtptest"
	"mailout/internal/transport"
)

// The doctor checks a relay's TLS with exactly the settings the relay
// route sends with: for the same account and roots, over a real session on
// loopback, the doctor's TLS check passes when the transport delivers, and
// fails, with the same error, when the transport's TLS fails. The cases
// cover the roots (given pool, the account's CA file, an untrusting pool),
// fingerprint pinning (right and wrong), the server name the certificate
// must match and the minimum TLS version.
func TestRelayTLSSameAsTransport(t *testing.T) {
	good, goodPool, goodFP := smtptest.NewTestCert(t, "127.0.0.1")
	otherName, otherPool, _ := smtptest.NewTestCert(t, "smtp.other.test")
	old := good.Clone()
	old.MaxVersion = tls.VersionTLS11
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: good.Certificates[0].Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	const pass = "tls-secret-pw"
	for _, tc := range []struct {
		name   string
		server *tls.Config
		query  string
		roots  *x509.CertPool
		ok     bool
		code   string // the doctor's finding, when TLS fails
	}{
		{"trusted by the given roots", good, "", goodPool, true, ""},
		{"not trusted", good, "", x509.NewCertPool(), false, "unknown-authority"},
		{"trusted by the account's CA file", good, "?ca=" + caFile, x509.NewCertPool(), true, ""},
		{"pinned", good, "?fingerprint=sha256:" + goodFP, x509.NewCertPool(), true, ""},
		{"pinned to another certificate", good, "?fingerprint=sha256:" + strings.Repeat("ab", 32), goodPool, false, "fingerprint-mismatch"},
		{"certificate for another name", otherName, "", otherPool, false, "wrong-host"},
		{"TLS older than 1.2", old, "", goodPool, false, "handshake"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := smtptest.Start(t, smtptest.Options{TLS: tc.server, Auth: map[string]string{"user": pass}})
			url := "smtp://user:" + pass + "@" + s.Addr + tc.query

			rl, err := transport.NewRelay(transport.RelayConfig{Accounts: []*transport.RelayAccount{relayAccount(t, url)},
				LocalName: "doctor.mailout.test", MaxConns: 1, RootCAs: tc.roots,
				Timeouts: smtpclient.Timeouts{Connect: 2 * time.Second, Greeting: 5 * time.Second, DataTerm: 5 * time.Second}})
			if err != nil {
				t.Fatal(err)
			}
			defer rl.Close()
			body := "From: a@example.com\r\nTo: b@example.org\r\nSubject: tls\r\n\r\nhi\r\n"
			res := rl.Deliver(t.Context(), &transport.Message{From: "a@example.com", To: "b@example.org", Domain: "example.org",
				MessageID: "1@example.com", Data: []byte(body)})

			r := Run(context.Background(), Config{Route: route.Relay, Relays: []*transport.RelayAccount{relayAccount(t, url)},
				RootCAs: tc.roots, HELO: "doctor.mailout.test", Timeouts: fastTimeouts, ProbePorts: []int{}})
			f := finding(t, r, "relay.tls")

			if tc.ok {
				if res.Class != outcome.Delivered || f.Severity != Pass {
					t.Fatalf("transport %s (%s), doctor %s %s %v; want both through", res.Class, res.Text, f.Severity, f.Code, f.Evidence)
				}
				return
			}
			if res.Class != outcome.TLSFailed || f.Severity != Fail || f.Code != tc.code {
				t.Fatalf("transport %s (%s), doctor %s %s %v; want both to fail TLS, the doctor with %s", res.Class, res.Text, f.Severity, f.Code, f.Evidence, tc.code)
			}
			// A certificate that is not the server's own, by its authority or
			// by its pin, reads as interception.
			if intercepted := tc.code == "unknown-authority" || tc.code == "fingerprint-mismatch"; intercepted != (r.Verdict.ID == VerdictTLSIntercepted) {
				t.Errorf("verdict %s for %s", r.Verdict.ID, tc.code)
			}
			if ev := strings.Join(f.Evidence, "\n"); res.Text == "" || !strings.Contains(ev, res.Text) {
				t.Errorf("the doctor says %q, the transport %q: not the same failure", ev, res.Text)
			}
		})
	}
}
