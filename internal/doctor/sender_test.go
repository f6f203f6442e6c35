package doctor

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"mailout/internal/dkim"
	"mailout/internal/mx/mxtest"
	"mailout/internal/route"
)

// senderSetup is a sender's DNS: a relay host, a DKIM key published under
// selector s1 of example.com, and DMARC. Each test changes what it breaks.
type senderSetup struct {
	zone   *mxtest.Zone
	signer *dkim.Signer
}

func newSigner(t *testing.T, domain string) *dkim.Signer {
	t.Helper()
	key, err := dkim.GenerateKey("ed25519", 0)
	if err != nil {
		t.Fatal(err)
	}
	s, err := dkim.New(domain, "s1", key, dkim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func txt(z *mxtest.Zone, name, value string) {
	z.RR(fmt.Sprintf("%s. 300 IN TXT %q", name, value))
}

func publish(z *mxtest.Zone, s *dkim.Signer) {
	name, value := s.DNSRecord()
	txt(z, name, value)
}

func goodSender(t *testing.T) senderSetup {
	z := mxtest.NewZone()
	z.A("smtp.relay.test", "127.0.0.10")
	txt(z, "example.com", "v=spf1 include:_spf.relay.test -all")
	txt(z, "_spf.relay.test", "v=spf1 ip4:127.0.0.8/29 -all")
	txt(z, "_dmarc.example.com", "v=DMARC1; p=quarantine; rua=mailto:dmarc@example.com")
	s := newSigner(t, "example.com")
	publish(z, s)
	return senderSetup{zone: z, signer: s}
}

// checkSender runs the sender checks against an in-process DNS server
// serving z, on the relay route through smtp.relay.test unless cfg says
// otherwise.
func checkSender(t *testing.T, z *mxtest.Zone, cfg Config, s SenderConfig) *Report {
	t.Helper()
	srv := mxtest.Start(t, z)
	cfg.DNS = []string{srv.Addr()}
	cfg.Timeouts = fastTimeouts
	if cfg.Route == "" {
		cfg.Route = route.Relay
		cfg.Relays = append(cfg.Relays, relayAccount(t, "smtp://me%40example.com:peer-secret@smtp.relay.test:587"))
	}
	if s.From == "" {
		s.From = "news@example.com"
	}
	return CheckSender(context.Background(), cfg, s)
}

// wantProblems checks the report names exactly these verdict IDs (in any
// order), each with a title and advice in English and Spanish that the
// text checklist prints, and that the password never shows.
func wantProblems(t *testing.T, r *Report, ids ...string) {
	t.Helper()
	var got []string
	for _, p := range r.Problems {
		got = append(got, p.ID)
	}
	slices.Sort(got)
	want := slices.Clone(ids)
	slices.Sort(want)
	var text bytes.Buffer
	r.WriteText(&text, "en")
	if !slices.Equal(got, want) {
		t.Fatalf("problems %v, want %v\n%s", got, want, text.String())
	}
	for _, lang := range []string{"en", "es"} {
		var b bytes.Buffer
		r.WriteText(&b, lang)
		for _, p := range r.Problems {
			if p.Title[lang] == "" || p.Advice[lang] == "" {
				t.Errorf("%s: no %s text", p.ID, lang)
			}
			if !strings.Contains(b.String(), p.Advice[lang]) || !strings.Contains(b.String(), "("+p.ID+")") {
				t.Errorf("%s checklist lacks %s or its advice:\n%s", lang, p.ID, b.String())
			}
		}
		if strings.Contains(b.String(), "peer-secret") {
			t.Errorf("%s checklist shows the password", lang)
		}
	}
	if p := r.JSON(); bytes.Contains(p, []byte("peer-secret")) {
		t.Error("JSON shows the password")
	}
	fails := slices.ContainsFunc(r.Problems, func(v Verdict) bool { return v.Severity == Fail })
	if r.OK() == fails {
		t.Errorf("OK() = %v with problems %v", r.OK(), got)
	}
	back, err := ParseReport(r.JSON())
	if err != nil || len(back.Problems) != len(r.Problems) || back.Verdict.ID != r.Verdict.ID {
		t.Errorf("JSON round trip: %v %+v", err, back)
	}
}

func problem(t *testing.T, r *Report, id string) Verdict {
	t.Helper()
	for _, p := range r.Problems {
		if p.ID == id {
			return p
		}
	}
	t.Fatalf("no problem %s", id)
	return Verdict{}
}

func TestSenderGood(t *testing.T) {
	g := goodSender(t)
	r := checkSender(t, g.zone, Config{}, SenderConfig{DKIM: g.signer})
	wantProblems(t, r)
	if r.Verdict.ID != VerdictSenderOK {
		t.Errorf("verdict %s, want %s", r.Verdict.ID, VerdictSenderOK)
	}
	for _, lang := range []string{"en", "es"} {
		if !strings.Contains(r.Verdict.Advice[lang], "List-Unsubscribe") {
			t.Errorf("the %s advice does not mention one-click unsubscribe: %s", lang, r.Verdict.Advice[lang])
		}
	}
	if f := finding(t, r, "sender.spf-route"); f.Subject != "127.0.0.10" || f.Code != "pass" {
		t.Errorf("route finding %+v", f)
	}
	if f := finding(t, r, "sender.dmarc"); f.Code != "quarantine" {
		t.Errorf("dmarc finding %+v", f)
	}
}

func TestSenderDMARCAtOrganisationalDomain(t *testing.T) {
	g := goodSender(t)
	txt(g.zone, "mail.example.com", "v=spf1 include:_spf.relay.test -all")
	r := checkSender(t, g.zone, Config{}, SenderConfig{From: "news@mail.example.com", DKIM: g.signer})
	wantProblems(t, r)
	if f := finding(t, r, "sender.dmarc"); f.Subject != "_dmarc.example.com" {
		t.Errorf("dmarc found at %q", f.Subject)
	}
}

// Eleven includes (the relay's the last): receivers stop after the tenth
// lookup with permerror.
func TestSenderSPFTooManyLookups(t *testing.T) {
	g := goodSender(t)
	g.zone.Remove("example.com")
	var incs []string
	for i := 1; i <= 10; i++ {
		name := fmt.Sprintf("i%d.spf.test", i)
		txt(g.zone, name, fmt.Sprintf("v=spf1 ip4:192.0.2.%d -all", i))
		incs = append(incs, "include:"+name)
	}
	txt(g.zone, "example.com", "v=spf1 "+strings.Join(incs, " ")+" include:_spf.relay.test -all")
	r := checkSender(t, g.zone, Config{}, SenderConfig{DKIM: g.signer})
	wantProblems(t, r, VerdictSPFTooManyLookups)
	if f := finding(t, r, "sender.spf"); f.Code != "permerror" {
		t.Errorf("spf finding %+v", f)
	}
}

func TestSenderSPFDoesNotCoverRelay(t *testing.T) {
	g := goodSender(t)
	g.zone.Remove("_spf.relay.test")
	txt(g.zone, "_spf.relay.test", "v=spf1 ip4:127.0.0.200 ~all")
	r := checkSender(t, g.zone, Config{}, SenderConfig{DKIM: g.signer})
	wantProblems(t, r, VerdictSPFNotRoute)
	if p := problem(t, r, VerdictSPFNotRoute); p.Subject != "127.0.0.10" || p.Suggest != "ip4:127.0.0.10" {
		t.Errorf("problem %+v", p)
	}
}

func TestSenderSPFMissing(t *testing.T) {
	g := goodSender(t)
	g.zone.Remove("example.com")
	r := checkSender(t, g.zone, Config{}, SenderConfig{DKIM: g.signer})
	wantProblems(t, r, VerdictSPFMissing)
}

func TestSenderDKIMKeyMismatch(t *testing.T) {
	g := goodSender(t)
	other := newSigner(t, "example.com")
	r := checkSender(t, g.zone, Config{}, SenderConfig{DKIM: other})
	wantProblems(t, r, VerdictDKIMKeyMismatch)
}

func TestSenderDKIMMissingAndNotConfigured(t *testing.T) {
	z := mxtest.NewZone()
	z.A("smtp.relay.test", "127.0.0.10")
	txt(z, "example.com", "v=spf1 a:smtp.relay.test -all")
	txt(z, "_dmarc.example.com", "v=DMARC1; p=none; rua=mailto:d@example.com")
	r := checkSender(t, z, Config{}, SenderConfig{DKIM: newSigner(t, "example.com")})
	wantProblems(t, r, VerdictDKIMMissing, VerdictDMARCPolicyNone)
	r = checkSender(t, z, Config{}, SenderConfig{})
	wantProblems(t, r, VerdictDKIMNotConfigured, VerdictDMARCPolicyNone)
}

func TestSenderDMARCMissing(t *testing.T) {
	g := goodSender(t)
	g.zone.Remove("_dmarc.example.com")
	r := checkSender(t, g.zone, Config{}, SenderConfig{DKIM: g.signer})
	wantProblems(t, r, VerdictDMARCMissing)
}

// The message is From example.com but signed for other.test, and SPF
// passes only for the return path's domain bounce.other.test: DMARC
// fails although both SPF and DKIM pass on their own.
func TestSenderFromNotAligned(t *testing.T) {
	g := goodSender(t)
	g.zone.Remove("example.com")
	txt(g.zone, "bounce.other.test", "v=spf1 include:_spf.relay.test -all")
	other := newSigner(t, "other.test")
	publish(g.zone, other)
	r := checkSender(t, g.zone, Config{}, SenderConfig{ReturnPath: "bounces@bounce.other.test", DKIM: other})
	wantProblems(t, r, VerdictDMARCNotAligned)
	if f := finding(t, r, "sender.spf"); f.Subject != "bounce.other.test" || f.Code != "valid" {
		t.Errorf("spf finding %+v", f)
	}
	if f := finding(t, r, "sender.spf-route"); f.Code != "pass" {
		t.Errorf("SPF does not pass for the relay on the return path's domain: %+v", f)
	}
}

// directZone is a direct sender at 127.0.0.20 whose EHLO name is
// mail.example.com.
func directZone(t *testing.T) senderSetup {
	z := mxtest.NewZone()
	txt(z, "example.com", "v=spf1 a:mail.example.com -all")
	txt(z, "_dmarc.example.com", "v=DMARC1; p=reject; rua=mailto:dmarc@example.com")
	s := newSigner(t, "example.com")
	publish(z, s)
	return senderSetup{zone: z, signer: s}
}

func directCheck(t *testing.T, z *mxtest.Zone, s *dkim.Signer) *Report {
	return checkSender(t, z, Config{Route: route.Direct, HELO: "mail.example.com"},
		SenderConfig{DKIM: s, SourceIP: netip.MustParseAddr("127.0.0.20")})
}

func TestSenderFCrDNSGood(t *testing.T) {
	d := directZone(t)
	d.zone.A("mail.example.com", "127.0.0.20")
	d.zone.RR("20.0.0.127.in-addr.arpa. 300 IN PTR mail.example.com.")
	r := directCheck(t, d.zone, d.signer)
	wantProblems(t, r)
	if f := finding(t, r, "sender.fcrdns"); f.Code != "pass" || f.Subject != "127.0.0.20" {
		t.Errorf("fcrdns finding %+v", f)
	}
}

func TestSenderFCrDNSMismatch(t *testing.T) {
	d := directZone(t)
	d.zone.Remove("example.com")
	txt(d.zone, "example.com", "v=spf1 ip4:127.0.0.20 -all")
	d.zone.A("mail.example.com", "127.0.0.21")
	d.zone.RR("20.0.0.127.in-addr.arpa. 300 IN PTR mail.example.com.")
	r := directCheck(t, d.zone, d.signer)
	wantProblems(t, r, VerdictFCrDNSMismatch, VerdictHELOMismatch)
}

func TestSenderFCrDNSMissing(t *testing.T) {
	d := directZone(t)
	d.zone.A("mail.example.com", "127.0.0.20")
	r := directCheck(t, d.zone, d.signer)
	wantProblems(t, r, VerdictFCrDNSMissing)
}

// The other records a sender can get wrong, each with its verdict.
func TestSenderRecordProblems(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(z *mxtest.Zone, s *dkim.Signer)
		want   []string
	}{
		{"dkim revoked", func(z *mxtest.Zone, s *dkim.Signer) {
			name, _ := s.DNSRecord()
			z.Remove(name)
			txt(z, name, "v=DKIM1; k=ed25519; p=")
		}, []string{VerdictDKIMRevoked}},
		{"dkim testing", func(z *mxtest.Zone, s *dkim.Signer) {
			name, value := s.DNSRecord()
			z.Remove(name)
			txt(z, name, value+"; t=y")
		}, []string{VerdictDKIMTesting}},
		{"dkim two records", func(z *mxtest.Zone, s *dkim.Signer) {
			name, value := s.DNSRecord()
			txt(z, name, value+"; n=copy")
		}, []string{VerdictDKIMInvalid}},
		{"dmarc without p=", func(z *mxtest.Zone, _ *dkim.Signer) {
			z.Remove("_dmarc.example.com")
			txt(z, "_dmarc.example.com", "v=DMARC1; rua=mailto:d@example.com")
		}, []string{VerdictDMARCInvalid}},
		{"dmarc without rua", func(z *mxtest.Zone, _ *dkim.Signer) {
			z.Remove("_dmarc.example.com")
			txt(z, "_dmarc.example.com", "v=DMARC1; p=reject")
		}, []string{VerdictDMARCNoRUA}},
		{"spf with ptr", func(z *mxtest.Zone, _ *dkim.Signer) {
			z.Remove("example.com")
			txt(z, "example.com", "v=spf1 ptr:relay.test include:_spf.relay.test -all")
		}, []string{VerdictSPFPTR}},
		{"spf +all", func(z *mxtest.Zone, _ *dkim.Signer) {
			z.Remove("example.com")
			txt(z, "example.com", "v=spf1 include:_spf.relay.test +all")
		}, []string{VerdictSPFAllowsAnyone}},
		{"spf syntax error", func(z *mxtest.Zone, _ *dkim.Signer) {
			z.Remove("example.com")
			txt(z, "example.com", "v=spf1 include:_spf.relay.test ip4:127.0.0.300 -all")
		}, []string{VerdictSPFPermError}},
		{"spf lookup fails", func(z *mxtest.Zone, _ *dkim.Signer) {
			z.ServFail("_spf.relay.test")
		}, []string{VerdictSenderDNS}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := goodSender(t)
			tc.change(g.zone, g.signer)
			r := checkSender(t, g.zone, Config{}, SenderConfig{DKIM: g.signer})
			wantProblems(t, r, tc.want...)
		})
	}
}

// On the direct route without --source-ip the address is the one the
// system would use towards an MX host; a private one (here loopback, the
// lab's MX) is not what receivers see, so the doctor asks for it.
func TestSenderSourceAddressDetected(t *testing.T) {
	d := directZone(t)
	d.zone.MX("lab.test", 10, "mx.lab.test").A("mx.lab.test", "127.0.0.1")
	r := checkSender(t, d.zone, Config{Route: route.Direct, HELO: "mail.example.com", Domains: []string{"lab.test"}, AllowLoopbackMX: true},
		SenderConfig{DKIM: d.signer})
	wantProblems(t, r, VerdictSourceUnknown)
	if f := finding(t, r, "sender.source"); f.Code != "private" || f.Subject != "127.0.0.1" {
		t.Errorf("source finding %+v", f)
	}
}
