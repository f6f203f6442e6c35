package doctor

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"mailout/internal/mx/mxtest"
	"mailout/internal/route"
	"mailout/internal/smtptest"
)

// directLab is a recipient domain on loopback: a test DNS server with the
// domain's MX and an SMTP server with STARTTLS standing for its MX host.
type directLab struct {
	dns  *mxtest.Server
	zone *mxtest.Zone
	cfg  Config
}

func newDirectLab(t *testing.T, smtpOpt *smtptest.Options) *directLab {
	t.Helper()
	srvTLS, pool, _ := smtptest.NewTestCert(t, "mx.lab.test")
	port := closedPort(t)
	if smtpOpt != nil {
		smtpOpt.TLS = srvTLS
		if smtpOpt.Domain == "" {
			smtpOpt.Domain = "mx.lab.test"
		}
		s := smtptest.Start(t, *smtpOpt)
		_, p, _ := net.SplitHostPort(s.Addr)
		port, _ = strconv.Atoi(p)
	}
	z := mxtest.NewZone().MX("lab.test", 10, "mx.lab.test").A("mx.lab.test", "127.0.0.1").
		MX("other.test", 10, "mx.other.test").A("mx.other.test", "127.0.0.1")
	d := mxtest.Start(t, z)
	return &directLab{dns: d, zone: z, cfg: Config{Route: route.Direct, DNS: []string{d.Addr()},
		Domains: []string{"lab.test"}, MXPort: port, AllowLoopbackMX: true, MXRootCAs: pool,
		HELO: "doctor.mailout.test", Timeouts: fastTimeouts}}
}

// TestDirectLoopback: the direct situations that need no firewall.
func TestDirectLoopback(t *testing.T) {
	t.Run("working", func(t *testing.T) {
		lab := newDirectLab(t, &smtptest.Options{})
		r := Run(context.Background(), lab.cfg)
		checkReport(t, r, want{verdict: VerdictOK, en: "small test campaign", es: "envío pequeño de prueba"})
		for _, id := range []string{"dns.servers", "dns.udp", "dns.tcp", "dns.mx", "smtp.port25", "smtp.banner", "smtp.ehlo", "smtp.starttls"} {
			if f := finding(t, r, id); f.Severity != Pass {
				t.Errorf("%s: %+v", id, f)
			}
		}
		if f := finding(t, r, "dns.servers"); f.Code != "flag" {
			t.Errorf("dns.servers source %q, want flag (--dns)", f.Code)
		}
	})
	t.Run("port 25 refused", func(t *testing.T) {
		lab := newDirectLab(t, nil)
		r := Run(context.Background(), lab.cfg)
		checkReport(t, r, want{verdict: VerdictPort25Refused, en: "refused right away", es: "se rechazan de inmediato"})
		if f := finding(t, r, "smtp.port25"); f.Code != codeRefused {
			t.Errorf("smtp.port25 %+v", f)
		}
	})
	t.Run("DNS server refuses", func(t *testing.T) {
		lab := newDirectLab(t, &smtptest.Options{})
		lab.zone.Refused("lab.test")
		r := Run(context.Background(), lab.cfg)
		checkReport(t, r, want{verdict: VerdictDNSRefused, en: "refuses our queries", es: "rechaza nuestras consultas"})
	})
	t.Run("DNS server silent", func(t *testing.T) {
		lab := newDirectLab(t, &smtptest.Options{})
		lab.zone.Drop("lab.test")
		r := Run(context.Background(), lab.cfg)
		checkReport(t, r, want{verdict: VerdictDNSBlocked, en: "worm protection", es: "protección de gusanos de Internet"})
	})
	t.Run("self-signed MX certificate", func(t *testing.T) {
		// RFC 7435: opportunistic TLS takes any certificate; many MX
		// hosts present a self-signed one. A warning, not a verdict.
		lab := newDirectLab(t, &smtptest.Options{})
		lab.cfg.MXRootCAs = nil
		r := Run(context.Background(), lab.cfg)
		checkReport(t, r, want{verdict: VerdictOK, en: "small test campaign", es: "envío pequeño de prueba"})
		if f := finding(t, r, "smtp.starttls"); f.Code != "unknown-authority" || f.Severity != Warn {
			t.Errorf("smtp.starttls %+v, want a warning unknown-authority", f)
		}
	})
	t.Run("one box answers for every domain", func(t *testing.T) {
		lab := newDirectLab(t, &smtptest.Options{Domain: "av-proxy.local"})
		lab.cfg.Domains = []string{"lab.test", "other.test"}
		r := Run(context.Background(), lab.cfg)
		checkReport(t, r, want{verdict: VerdictPort25Intercept, en: "intercepts port 25", es: "intercepta el puerto 25"})
	})
}

// mxPair starts one smtptest server on each of two loopback addresses, on
// one port (the doctor speaks to every MX on Config.MXPort), and returns
// that port.
func mxPair(t *testing.T, a, b string, oa, ob smtptest.Options) int {
	t.Helper()
	for range 20 {
		oa.Addr = a + ":0"
		sa, err := smtptest.New(oa)
		if err != nil {
			t.Fatal(err)
		}
		_, p, _ := net.SplitHostPort(sa.Addr)
		ob.Addr = net.JoinHostPort(b, p)
		sb, err := smtptest.New(ob)
		if err != nil {
			_ = sa.Close() // the port is taken on b: try another
			continue
		}
		t.Cleanup(func() { _ = sa.Close(); _ = sb.Close() })
		port, _ := strconv.Atoi(p)
		return port
	}
	t.Fatal("no port free on both lab addresses")
	return 0
}

// privateCA is a certificate authority this computer does not trust, as an
// antivirus or a corporate proxy installs to scan TLS.
type privateCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newPrivateCA(t *testing.T, name string) *privateCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &privateCA{cert: cert, key: key}
}

// serverTLS mints a certificate for host signed by the CA, as an
// intercepting scanner does for each server it stands in for.
func (ca *privateCA) serverTLS(t *testing.T, host string) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: host},
		DNSNames: []string{host}, NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der, ca.cert.Raw}, PrivateKey: key}}}
}

// TestDirectTLSInterceptionNeedsEvidence: on the direct route an MX
// certificate nobody vouches for is normal (opportunistic TLS, RFC 7435);
// the doctor says "intercepted" only when one certificate, or one unknown
// authority, answers for the mail servers of unrelated domains at
// different addresses — what a scanner in the middle does.
func TestDirectTLSInterceptionNeedsEvidence(t *testing.T) {
	const ipA, ipB = "127.0.0.81", "127.0.0.82"
	lab := func(t *testing.T, tlsA, tlsB *tls.Config) Config {
		port := mxPair(t, ipA, ipB,
			smtptest.Options{Domain: "mx.lab.test", TLS: tlsA},
			smtptest.Options{Domain: "mx.other.test", TLS: tlsB})
		z := mxtest.NewZone().MX("lab.test", 10, "mx.lab.test").A("mx.lab.test", ipA).
			MX("other.test", 10, "mx.other.test").A("mx.other.test", ipB)
		d := mxtest.Start(t, z)
		return Config{Route: route.Direct, DNS: []string{d.Addr()}, Domains: []string{"lab.test", "other.test"},
			MXPort: port, AllowLoopbackMX: true, HELO: "doctor.mailout.test", Timeouts: fastTimeouts}
	}
	starttls := func(r *Report) []Finding {
		var out []Finding
		for _, f := range r.Findings {
			if f.ID == "smtp.starttls" {
				out = append(out, f)
			}
		}
		return out
	}

	t.Run("each MX self-signed", func(t *testing.T) {
		a, _, _ := smtptest.NewTestCert(t, "mx.lab.test")
		b, _, _ := smtptest.NewTestCert(t, "mx.other.test")
		r := Run(context.Background(), lab(t, a, b))
		checkReport(t, r, want{verdict: VerdictOK, en: "small test campaign", es: "envío pequeño de prueba"})
		fs := starttls(r)
		if len(fs) != 2 {
			t.Fatalf("%d STARTTLS findings, want 2: %+v", len(fs), r.Findings)
		}
		for _, f := range fs {
			if f.Severity != Warn || f.Code != "unknown-authority" {
				t.Errorf("%s: %s %s, want a warning unknown-authority", f.Subject, f.Severity, f.Code)
			}
		}
		for _, f := range r.Findings {
			if f.Severity == Fail {
				t.Errorf("failed check %s %s: %s", f.ID, f.Subject, f.Code)
			}
		}
	})
	t.Run("one MX without STARTTLS", func(t *testing.T) {
		a, _, _ := smtptest.NewTestCert(t, "mx.lab.test")
		r := Run(context.Background(), lab(t, a, nil))
		checkReport(t, r, want{verdict: VerdictOK, en: "small test campaign", es: "envío pequeño de prueba"})
		codes := map[string]bool{}
		for _, f := range starttls(r) {
			codes[f.Code] = f.Severity == Warn
		}
		if !codes["not-offered"] || !codes["unknown-authority"] {
			t.Errorf("STARTTLS findings %+v, want warnings not-offered and unknown-authority", starttls(r))
		}
	})
	t.Run("one certificate for unrelated MX hosts", func(t *testing.T) {
		scanner, _, _ := smtptest.NewTestCert(t, "mail-scanner.local")
		r := Run(context.Background(), lab(t, scanner, scanner))
		checkReport(t, r, want{verdict: VerdictTLSIntercepted, en: "antivirus or firewall that scans outgoing mail",
			es: "antivirus o firewall que comprueba el correo saliente"})
		for _, s := range []string{"mail-scanner.local", "mx.lab.test", "mx.other.test"} {
			if !strings.Contains(r.Verdict.Subject, s) {
				t.Errorf("verdict subject %q does not name %s", r.Verdict.Subject, s)
			}
		}
	})
	t.Run("one unknown authority for unrelated MX hosts", func(t *testing.T) {
		ca := newPrivateCA(t, "Scanner Root CA")
		r := Run(context.Background(), lab(t, ca.serverTLS(t, "mx.lab.test"), ca.serverTLS(t, "mx.other.test")))
		checkReport(t, r, want{verdict: VerdictTLSIntercepted, en: "antivirus or firewall that scans outgoing mail",
			es: "antivirus o firewall que comprueba el correo saliente"})
		if !strings.Contains(r.Verdict.Subject, "Scanner Root CA") {
			t.Errorf("verdict subject %q does not name the authority", r.Verdict.Subject)
		}
	})
}

// TestDirectStaleMX: the doctor asks each MX whether it takes mail for its
// domain's postmaster (MAIL FROM, RCPT TO, RSET; no DATA). An MX that
// refuses to relay for its own domain does not host it any more — a stale
// MX record, not a network fault: a warning naming the cause, and the
// route still works. When the MX of every domain answers so, something
// between us and them does: the mail servers refuse us.
func TestDirectStaleMX(t *testing.T) {
	const ipA, ipB = "127.0.0.83", "127.0.0.84"
	lab := func(t *testing.T, a, b smtptest.Options) Config {
		a.Domain, b.Domain = "mx.lab.test", "mx.stale.test"
		port := mxPair(t, ipA, ipB, a, b)
		z := mxtest.NewZone().MX("lab.test", 10, "mx.lab.test").A("mx.lab.test", ipA).
			MX("stale.test", 10, "mx.stale.test").A("mx.stale.test", ipB)
		d := mxtest.Start(t, z)
		return Config{Route: route.Direct, DNS: []string{d.Addr()}, Domains: []string{"lab.test", "stale.test"},
			MXPort: port, AllowLoopbackMX: true, HELO: "doctor.mailout.test", Timeouts: fastTimeouts}
	}
	notHosted := smtptest.Options{RelayDomains: []string{"someone-else.test"}}
	selfSigned, _, _ := smtptest.NewTestCert(t, "mx.stale.test")
	notHosted.TLS = selfSigned

	t.Run("one domain's MX does not host it", func(t *testing.T) {
		r := Run(context.Background(), lab(t, smtptest.Options{}, notHosted))
		checkReport(t, r, want{verdict: VerdictOK, en: "small test campaign", es: "envío pequeño de prueba"})
		var got []Finding
		for _, f := range r.Findings {
			if f.ID == "smtp.rcpt" {
				got = append(got, f)
			}
		}
		if len(got) != 2 {
			t.Fatalf("%d smtp.rcpt findings, want 2: %+v", len(got), r.Findings)
		}
		for _, f := range got {
			ev := strings.Join(f.Evidence, "\n")
			switch {
			case strings.HasPrefix(f.Subject, "mx.lab.test"):
				if f.Severity != Pass || f.Code != "250" || !strings.Contains(ev, "RCPT TO:<postmaster@lab.test>") {
					t.Errorf("lab.test: %+v", f)
				}
			default:
				if f.Severity != Warn || f.Code != "554" || !strings.Contains(ev, "Relay access denied") ||
					!strings.Contains(ev, "domain-not-hosted") || !strings.Contains(ev, "MX record is probably stale") {
					t.Errorf("stale.test: %+v, want a warning 554 naming the stale MX record", f)
				}
			}
		}
	})
	t.Run("no domain's MX takes mail for it", func(t *testing.T) {
		r := Run(context.Background(), lab(t, smtptest.Options{RelayDomains: []string{"someone-else.test"}}, notHosted))
		checkReport(t, r, want{verdict: VerdictSMTPRejected, en: "refuse us before any message", es: "nos rechazan antes de cualquier mensaje"})
	})
}
