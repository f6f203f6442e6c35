package spf

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"mailout/internal/mx"
	"mailout/internal/mx/mxtest"
)

// The examples of RFC 7208 §7.4.
func TestMacroExpansionRFCExamples(t *testing.T) {
	e := &eval{c: Check{IP: netip.MustParseAddr("192.0.2.3"), HELO: "mx.example.org"}, local: "strong-bad", senderDomain: "email.example.com"}
	for in, want := range map[string]string{
		"%{s}":                              "strong-bad@email.example.com",
		"%{o}":                              "email.example.com",
		"%{d}":                              "email.example.com",
		"%{d4}":                             "email.example.com",
		"%{d3}":                             "email.example.com",
		"%{d2}":                             "example.com",
		"%{d1}":                             "com",
		"%{dr}":                             "com.example.email",
		"%{d2r}":                            "example.email",
		"%{l}":                              "strong-bad",
		"%{l-}":                             "strong.bad",
		"%{lr}":                             "strong-bad",
		"%{lr-}":                            "bad.strong",
		"%{l1r-}":                           "strong",
		"%{ir}.%{v}._spf.%{d2}":             "3.2.0.192.in-addr._spf.example.com",
		"%{lr-}.lp._spf.%{d2}":              "bad.strong.lp._spf.example.com",
		"%{lr-}.lp.%{ir}.%{v}._spf.%{d2}":   "bad.strong.lp.3.2.0.192.in-addr._spf.example.com",
		"%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}":  "3.2.0.192.in-addr.strong.lp._spf.example.com",
		"%{d2}.trusted-domains.example.net": "example.com.trusted-domains.example.net",
		"%{h}.%%.%_.%-":                     "mx.example.org.%. .%20",
		"%{S}":                              "strong-bad%40email.example.com",
	} {
		got, err := e.expand(in, "email.example.com", false)
		if err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", in, got, err, want)
		}
	}
	e.c.IP = netip.MustParseAddr("2001:db8::cb01")
	got, _ := e.expand("%{ir}.%{v}._spf.%{d2}", "email.example.com", false)
	if want := "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"; got != want {
		t.Errorf("IPv6 %%{ir} = %q, want %q", got, want)
	}
	for _, bad := range []string{"%{x}", "%{d0}", "%{d", "%", "%a", "%{c}"} {
		if _, err := e.expand(bad, "email.example.com", false); !errors.Is(err, ErrSyntax) {
			t.Errorf("%q: %v, want a syntax error", bad, err)
		}
	}
}

func resolver(t *testing.T, z *mxtest.Zone) *mx.Resolver {
	t.Helper()
	srv := mxtest.Start(t, z)
	r, err := mx.New(mx.Config{Servers: []string{srv.Addr()}, FailureTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func spfTXT(z *mxtest.Zone, name, value string) {
	z.RR(fmt.Sprintf("%s. 300 IN TXT %q", name, value))
}

func eval1(t *testing.T, z *mxtest.Zone, ip, sender string) Outcome {
	t.Helper()
	return Evaluate(context.Background(), resolver(t, z), Check{IP: netip.MustParseAddr(ip), Sender: sender, HELO: "client.example.org"})
}

func TestEvaluateMechanisms(t *testing.T) {
	z := mxtest.NewZone()
	spfTXT(z, "example.com", "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 a:web.example.com/30 mx -ptr include:_spf.partner.test exists:%{ir}.%{v}._ok.example.com ?ip4:203.0.113.66 ~all")
	z.A("web.example.com", "198.51.100.4")
	z.MX("example.com", 10, "mx1.example.com").A("mx1.example.com", "198.51.100.20")
	spfTXT(z, "_spf.partner.test", "v=spf1 ip4:203.0.113.0/28 -all")
	z.A("40.113.0.203.in-addr._ok.example.com", "127.0.0.2")
	z.RR("100.113.0.203.in-addr.arpa. 300 IN PTR bad.example.com.")
	z.A("bad.example.com", "203.0.113.100")
	for _, tc := range []struct {
		ip   string
		want Result
		mech string
	}{
		{"192.0.2.77", Pass, "ip4:192.0.2.0/24"},
		{"2001:db8:1::1", Pass, "ip6:2001:db8::/32"},
		{"198.51.100.6", Pass, "a:web.example.com/30"},
		{"198.51.100.20", Pass, "mx"},
		{"203.0.113.100", Fail, "-ptr"},
		{"203.0.113.5", Pass, "include:_spf.partner.test"},
		{"203.0.113.40", Pass, "exists:%{ir}.%{v}._ok.example.com"},
		{"203.0.113.66", Neutral, "?ip4:203.0.113.66"},
		{"203.0.113.200", SoftFail, "~all"},
	} {
		o := eval1(t, z, tc.ip, "news@example.com")
		if o.Result != tc.want || o.Mechanism != tc.mech {
			t.Errorf("%s: %s by %q (%v), want %s by %q", tc.ip, o.Result, o.Mechanism, o.Err, tc.want, tc.mech)
		}
		if tc.ip == "203.0.113.100" && !o.PTR {
			t.Errorf("%s: ptr evaluated but not reported", tc.ip)
		}
	}
}

// RFC 7208 §4.6.4: 10 DNS-querying terms are allowed, the 11th is a
// permerror.
func TestEvaluateLookupLimit(t *testing.T) {
	for _, n := range []int{10, 11} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			z := mxtest.NewZone()
			var incs []string
			for i := 1; i <= n; i++ {
				name := fmt.Sprintf("i%d.spf.test", i)
				spfTXT(z, name, fmt.Sprintf("v=spf1 ip4:198.51.100.%d -all", i))
				incs = append(incs, "include:"+name)
			}
			spfTXT(z, "example.com", "v=spf1 "+strings.Join(incs, " ")+" -all")
			o := eval1(t, z, "192.0.2.1", "news@example.com")
			if n == 10 && (o.Result != Fail || o.Lookups != 10) {
				t.Errorf("10 lookups: %s after %d lookups (%v), want fail", o.Result, o.Lookups, o.Err)
			}
			if n == 11 && (o.Result != PermError || !errors.Is(o.Err, ErrTooManyLookups)) {
				t.Errorf("11 lookups: %s (%v), want permerror for too many lookups", o.Result, o.Err)
			}
		})
	}
}

func TestEvaluateErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		records map[string]string
		want    Result
		err     error
	}{
		{"no record", map[string]string{"example.com": "google-site-verification=x"}, None, nil},
		{"two records", map[string]string{"example.com": "v=spf1 -all", "example.com.": "v=spf1 ~all"}, PermError, ErrMultipleRecords},
		{"unknown mechanism", map[string]string{"example.com": "v=spf1 ip5:1.2.3.4 -all"}, PermError, ErrSyntax},
		{"bad cidr", map[string]string{"example.com": "v=spf1 ip4:192.0.2.0/33 -all"}, PermError, ErrSyntax},
		{"bad macro", map[string]string{"example.com": "v=spf1 exists:%{q}.example.com -all"}, PermError, ErrSyntax},
		{"redirect twice", map[string]string{"example.com": "v=spf1 redirect=a.test redirect=b.test"}, PermError, ErrSyntax},
		{"include without record", map[string]string{"example.com": "v=spf1 include:nothing.test -all"}, PermError, ErrIncludeNone},
		{"redirect without record", map[string]string{"example.com": "v=spf1 redirect=nothing.test"}, PermError, ErrIncludeNone},
		{"three void lookups", map[string]string{"example.com": "v=spf1 a:v1.test a:v2.test a:v3.test -all"}, PermError, ErrTooManyVoid},
		{"two void lookups", map[string]string{"example.com": "v=spf1 a:v1.test a:v2.test -all"}, Fail, nil},
		{"redirect", map[string]string{"example.com": "v=spf1 redirect=_spf.example.net", "_spf.example.net": "v=spf1 ~all"}, SoftFail, nil},
		{"redirect ignored with all", map[string]string{"example.com": "v=spf1 ?all redirect=_spf.example.net", "_spf.example.net": "v=spf1 -all"}, Neutral, nil},
		{"unknown modifier ignored", map[string]string{"example.com": "v=spf1 foo=bar -all"}, Fail, nil},
		{"default neutral", map[string]string{"example.com": "v=spf1 ip4:198.51.100.1"}, Neutral, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			z := mxtest.NewZone()
			for name, v := range tc.records {
				spfTXT(z, strings.TrimSuffix(name, "."), v)
			}
			o := eval1(t, z, "192.0.2.1", "news@example.com")
			if o.Result != tc.want || (tc.err != nil && !errors.Is(o.Err, tc.err)) {
				t.Errorf("%s (%v), want %s (%v)", o.Result, o.Err, tc.want, tc.err)
			}
		})
	}
}

func TestEvaluateTempErrorAndExplanation(t *testing.T) {
	z := mxtest.NewZone().ServFail("example.com")
	if o := eval1(t, z, "192.0.2.1", "news@example.com"); o.Result != TempError || !errors.Is(o.Err, ErrDNS) {
		t.Errorf("servfail: %s (%v), want temperror", o.Result, o.Err)
	}
	z = mxtest.NewZone()
	spfTXT(z, "example.com", "v=spf1 -all exp=why.example.com")
	spfTXT(z, "why.example.com", "%{i} is not one of %{d}'s senders")
	o := eval1(t, z, "192.0.2.1", "news@example.com")
	if o.Result != Fail || o.Explanation != "192.0.2.1 is not one of example.com's senders" {
		t.Errorf("%s, explanation %q", o.Result, o.Explanation)
	}
	// RFC 7208 §2.4: an empty MAIL FROM is checked as postmaster@HELO.
	spfTXT(z, "client.example.org", "v=spf1 ip4:192.0.2.1 -all")
	if o := eval1(t, z, "192.0.2.1", ""); o.Result != Pass || o.Domain != "client.example.org" {
		t.Errorf("empty sender: %s for %s", o.Result, o.Domain)
	}
}
