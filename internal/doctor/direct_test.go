package doctor

import (
	"context"
	"net"
	"strconv"
	"testing"

	"mailout/internal/mx/mxtest"
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
	return &directLab{dns: d, zone: z, cfg: Config{Route: RouteDirect, DNS: []string{d.Addr()},
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
	t.Run("STARTTLS stripped", func(t *testing.T) {
		lab := newDirectLab(t, &smtptest.Options{})
		lab.cfg.MXRootCAs = nil // the MX's certificate is not trusted: as an interceptor's
		r := Run(context.Background(), lab.cfg)
		checkReport(t, r, want{verdict: VerdictTLSIntercepted, en: "outgoing-mail scanning", es: "comprobación de correo saliente"})
		if f := finding(t, r, "smtp.starttls"); f.Code != "unknown-authority" {
			t.Errorf("smtp.starttls %+v", f)
		}
	})
	t.Run("one box answers for every domain", func(t *testing.T) {
		lab := newDirectLab(t, &smtptest.Options{Domain: "av-proxy.local"})
		lab.cfg.Domains = []string{"lab.test", "other.test"}
		r := Run(context.Background(), lab.cfg)
		checkReport(t, r, want{verdict: VerdictPort25Intercept, en: "intercepts port 25", es: "intercepta el puerto 25"})
	})
}
