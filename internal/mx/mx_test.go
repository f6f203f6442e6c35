package mx_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"mailout/internal/mx"
	"mailout/internal/mx/mxtest"
)

// newResolver returns a resolver on the given servers with a short timeout.
func newResolver(t testing.TB, cfg mx.Config, servers ...string) *mx.Resolver {
	t.Helper()
	cfg.Servers = servers
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	r, err := mx.New(cfg)
	if err != nil {
		t.Fatalf("mx.New: %v", err)
	}
	return r
}

// names returns the host names of hosts.
func names(hosts []mx.Host) []string {
	var s []string
	for _, h := range hosts {
		s = append(s, h.Name)
	}
	return s
}

func addrs(ss ...string) []netip.Addr {
	var a []netip.Addr
	for _, s := range ss {
		a = append(a, netip.MustParseAddr(s))
	}
	return a
}

// wantError asserts that err is an *mx.Error of kind, temporary or not.
func wantError(t *testing.T, err error, kind mx.Failure, temporary bool) *mx.Error {
	t.Helper()
	var e *mx.Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v (%T), want *mx.Error of kind %q", err, err, kind)
	}
	if e.Kind != kind {
		t.Fatalf("kind = %q, want %q (error: %v)", e.Kind, kind, err)
	}
	if e.Temporary() != temporary {
		t.Fatalf("Temporary() = %v, want %v (error: %v)", e.Temporary(), temporary, err)
	}
	return e
}

func TestLookupOrderByPreference(t *testing.T) {
	z := mxtest.NewZone().
		MX("a.test", 20, "mx2.a.test").
		MX("a.test", 10, "mx1.a.test").
		MX("a.test", 10, "mx1b.a.test").
		MX("a.test", 30, "mx3.a.test").
		A("mx1.a.test", "192.0.2.1").AAAA("mx1.a.test", "2001:db8::1").
		A("mx1b.a.test", "192.0.2.11").
		A("mx2.a.test", "192.0.2.2").
		AAAA("mx3.a.test", "2001:db8::3")
	s := mxtest.Start(t, z)
	tests := []struct {
		name string
		rand func(int) int
		want []string
	}{
		{"no swap", func(n int) int { return n - 1 }, []string{"mx1.a.test", "mx1b.a.test", "mx2.a.test", "mx3.a.test"}},
		{"swap", func(int) int { return 0 }, []string{"mx1b.a.test", "mx1.a.test", "mx2.a.test", "mx3.a.test"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newResolver(t, mx.Config{Rand: tt.rand}, s.Addr())
			hosts, err := r.Lookup(t.Context(), "A.test.")
			if err != nil {
				t.Fatal(err)
			}
			if got := names(hosts); !slices.Equal(got, tt.want) {
				t.Fatalf("hosts = %v, want %v", got, tt.want)
			}
			byName := map[string]mx.Host{}
			for _, h := range hosts {
				byName[h.Name] = h
			}
			if got := byName["mx1.a.test"]; got.Pref != 10 || got.Implicit ||
				!slices.Equal(got.Addrs, addrs("192.0.2.1", "2001:db8::1")) {
				t.Errorf("mx1 = %+v", got)
			}
			if got := byName["mx3.a.test"].Addrs; !slices.Equal(got, addrs("2001:db8::3")) {
				t.Errorf("mx3 addrs = %v", got)
			}
		})
	}
}

func TestLookupEqualPreferenceIsRandomised(t *testing.T) {
	z := mxtest.NewZone().
		MX("a.test", 10, "mx1.a.test").MX("a.test", 10, "mx2.a.test").MX("a.test", 10, "mx3.a.test").
		A("mx1.a.test", "192.0.2.1").A("mx2.a.test", "192.0.2.2").A("mx3.a.test", "192.0.2.3")
	s := mxtest.Start(t, z)
	r := newResolver(t, mx.Config{}, s.Addr()) // default math/rand
	firsts := map[string]int{}
	for range 300 {
		hosts, err := r.Lookup(t.Context(), "a.test")
		if err != nil {
			t.Fatal(err)
		}
		firsts[hosts[0].Name]++
	}
	// Each host should come first about 100 times; 30 is far outside chance.
	for _, h := range []string{"mx1.a.test", "mx2.a.test", "mx3.a.test"} {
		if firsts[h] < 30 {
			t.Errorf("%s came first %d times in 300 lookups (%v): not randomised", h, firsts[h], firsts)
		}
	}
	if n := s.Queries(dns.TypeMX); n != 1 {
		t.Errorf("MX queries = %d, want 1 (cached)", n)
	}
}

func TestLookupImplicitMX(t *testing.T) {
	z := mxtest.NewZone().A("b.test", "192.0.2.7").AAAA("b.test", "2001:db8::7").
		A("noaddr.test.other", "192.0.2.8").RR("nomail.test. 300 IN TXT \"v=spf1 -all\"")
	s := mxtest.Start(t, z)
	r := newResolver(t, mx.Config{}, s.Addr())

	hosts, err := r.Lookup(t.Context(), "b.test")
	if err != nil {
		t.Fatal(err)
	}
	want := []mx.Host{{Name: "b.test", Pref: 0, Addrs: addrs("192.0.2.7", "2001:db8::7"), Implicit: true}}
	if len(hosts) != 1 || hosts[0].Name != want[0].Name || !hosts[0].Implicit || !slices.Equal(hosts[0].Addrs, want[0].Addrs) {
		t.Fatalf("hosts = %+v, want %+v", hosts, want)
	}

	// A domain that exists but has no MX, A or AAAA: no mail server.
	_, err = r.Lookup(t.Context(), "nomail.test")
	e := wantError(t, err, mx.FailureNoData, false)
	if want := "domain nomail.test has no MX, A or AAAA record: it does not receive mail"; e.Error() != want {
		t.Errorf("error = %q, want %q", e.Error(), want)
	}
}

func TestLookupNullMX(t *testing.T) {
	z := mxtest.NewZone().NullMX("null.test").A("null.test", "192.0.2.9")
	s := mxtest.Start(t, z)
	r := newResolver(t, mx.Config{}, s.Addr())
	_, err := r.Lookup(t.Context(), "null.test")
	e := wantError(t, err, mx.FailureNullMX, false)
	if e.Domain != "null.test" || !strings.Contains(e.Error(), "RFC 7505") {
		t.Errorf("error = %+v: %v", e, e)
	}
	// RFC 7505: never fall back to the A record.
	if n := s.QueriesFor("null.test", dns.TypeA); n != 0 {
		t.Errorf("A queries for null.test = %d, want 0", n)
	}
}

func TestLookupNXDomain(t *testing.T) {
	s := mxtest.Start(t, mxtest.NewZone())
	r := newResolver(t, mx.Config{}, s.Addr())
	_, err := r.Lookup(t.Context(), "nowhere.test")
	e := wantError(t, err, mx.FailureNXDomain, false)
	want := fmt.Sprintf("domain nowhere.test does not exist (NXDOMAIN from DNS server %s)", s.Addr())
	if e.Error() != want || e.Server != s.Addr() {
		t.Errorf("error = %q (server %q), want %q", e.Error(), e.Server, want)
	}
}

func TestLookupServFailNoFallbackToA(t *testing.T) {
	z := mxtest.NewZone().A("broken.test", "192.0.2.1").ServFail("broken.test")
	s := mxtest.Start(t, z)
	r := newResolver(t, mx.Config{}, s.Addr())
	_, err := r.Lookup(t.Context(), "broken.test")
	e := wantError(t, err, mx.FailureServFail, true)
	if !strings.Contains(e.Error(), "could not resolve MX broken.test (SERVFAIL") {
		t.Errorf("error = %q", e.Error())
	}
	// A SERVFAIL is no reason to use the A record.
	if n := s.QueriesFor("broken.test", dns.TypeA) + s.QueriesFor("broken.test", dns.TypeAAAA); n != 0 {
		t.Errorf("A/AAAA queries = %d after SERVFAIL, want 0", n)
	}
}

func TestLookupTimeoutTriesNextServer(t *testing.T) {
	good := mxtest.NewZone().MX("a.test", 10, "mx.a.test").A("mx.a.test", "192.0.2.1")
	dropping := mxtest.NewZone().MX("a.test", 10, "mx.a.test").A("mx.a.test", "192.0.2.1").
		Drop("a.test").Drop("mx.a.test")
	s1 := mxtest.Start(t, dropping)
	s2 := mxtest.Start(t, good)

	t.Run("second answers", func(t *testing.T) {
		r := newResolver(t, mx.Config{Timeout: 150 * time.Millisecond}, s1.Addr(), s2.Addr())
		hosts, err := r.Lookup(t.Context(), "a.test")
		if err != nil {
			t.Fatal(err)
		}
		if got := names(hosts); !slices.Equal(got, []string{"mx.a.test"}) {
			t.Fatalf("hosts = %v", got)
		}
		if s1.QueriesFor("a.test", dns.TypeMX) != 1 || s2.QueriesFor("a.test", dns.TypeMX) != 1 {
			t.Errorf("MX queries: first %d, second %d; want 1 and 1",
				s1.QueriesFor("a.test", dns.TypeMX), s2.QueriesFor("a.test", dns.TypeMX))
		}
	})
	t.Run("none answers", func(t *testing.T) {
		r := newResolver(t, mx.Config{Timeout: 150 * time.Millisecond}, s1.Addr())
		_, err := r.Lookup(t.Context(), "a.test")
		e := wantError(t, err, mx.FailureTimeout, true)
		want := fmt.Sprintf("DNS server %s did not answer (timeout after 150ms) for MX a.test", s1.Addr())
		if e.Error() != want {
			t.Errorf("error = %q, want %q", e.Error(), want)
		}
		// No fallback to A on timeout either.
		if n := s1.QueriesFor("a.test", dns.TypeA); n != 0 {
			t.Errorf("A queries = %d after timeout, want 0", n)
		}
	})
}

// closedUDPPort returns a loopback address where nothing listens on UDP.
func closedUDPPort(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

func TestLookupRefused(t *testing.T) {
	s := mxtest.Start(t, mxtest.NewZone().MX("a.test", 10, "mx.a.test").Refused("a.test"))
	closed := closedUDPPort(t)
	tests := []struct {
		name    string
		servers []string
		server  string
		text    string
	}{
		{"REFUSED rcode", []string{s.Addr()}, s.Addr(), "refused to answer MX a.test (REFUSED"},
		{"port closed", []string{closed}, closed, "refused the connection for MX a.test (nothing listens on port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newResolver(t, mx.Config{}, tt.servers...)
			_, err := r.Lookup(t.Context(), "a.test")
			e := wantError(t, err, mx.FailureRefused, true)
			if e.Server != tt.server || !strings.Contains(e.Error(), tt.text) {
				t.Errorf("error = %q (server %s), want server %s and %q", e.Error(), e.Server, tt.server, tt.text)
			}
		})
	}
	t.Run("both, servfail elsewhere ranks first", func(t *testing.T) {
		sf := mxtest.Start(t, mxtest.NewZone().ServFail("a.test"))
		r := newResolver(t, mx.Config{}, closed, sf.Addr())
		_, err := r.Lookup(t.Context(), "a.test")
		e := wantError(t, err, mx.FailureServFail, true)
		if e.Server != sf.Addr() || !strings.Contains(e.Error(), "also tried: DNS server "+closed) {
			t.Errorf("error = %q", e.Error())
		}
	})
}

func TestLookupTruncatedRetriesOverTCP(t *testing.T) {
	z := mxtest.NewZone().MX("big.test", 10, "mx.big.test").A("mx.big.test", "192.0.2.1").Truncate("big.test")
	s := mxtest.Start(t, z)
	r := newResolver(t, mx.Config{}, s.Addr())
	hosts, err := r.Lookup(t.Context(), "big.test")
	if err != nil {
		t.Fatal(err)
	}
	if got := names(hosts); !slices.Equal(got, []string{"mx.big.test"}) {
		t.Fatalf("hosts = %v", got)
	}
	var nets []string
	for _, q := range s.Log() {
		if q.Name == "big.test." && q.Type == dns.TypeMX {
			nets = append(nets, q.Net)
		}
	}
	if !slices.Equal(nets, []string{"udp", "tcp"}) {
		t.Errorf("MX big.test went over %v, want [udp tcp]", nets)
	}
	if st := r.Stats(); st.TCP != 1 || st.MX != 1 {
		t.Errorf("stats = %+v, want TCP 1, MX 1", st)
	}
}

func TestQueriesUseEDNS0AndRecursion(t *testing.T) {
	s := mxtest.Start(t, mxtest.NewZone().MX("a.test", 10, "mx.a.test").A("mx.a.test", "192.0.2.1"))
	r := newResolver(t, mx.Config{}, s.Addr())
	if _, err := r.Lookup(t.Context(), "a.test"); err != nil {
		t.Fatal(err)
	}
	log := s.Log()
	if len(log) != 3 { // MX a.test, A and AAAA mx.a.test
		t.Fatalf("queries = %+v, want 3", log)
	}
	for _, q := range log {
		if !q.RD || q.UDPSize != 1232 || q.Net != "udp" {
			t.Errorf("query %+v: want RD, EDNS0 size 1232, udp", q)
		}
	}
}

func TestLookupServerWithoutEDNS(t *testing.T) {
	z := mxtest.NewZone().MX("old.test", 10, "mx.old.test").A("mx.old.test", "192.0.2.1").
		Fault("old.test", mxtest.NoEDNS)
	s := mxtest.Start(t, z)
	r := newResolver(t, mx.Config{}, s.Addr())
	hosts, err := r.Lookup(t.Context(), "old.test")
	if err != nil {
		t.Fatal(err)
	}
	if got := names(hosts); !slices.Equal(got, []string{"mx.old.test"}) {
		t.Fatalf("hosts = %v", got)
	}
	var sizes []uint16
	for _, q := range s.Log() {
		if q.Name == "old.test." {
			sizes = append(sizes, q.UDPSize)
		}
	}
	if !slices.Equal(sizes, []uint16{1232, 0}) {
		t.Errorf("EDNS0 sizes of the MX queries = %v, want [1232 0] (RFC 6891 §7 retry)", sizes)
	}
}

func TestLookupCNAME(t *testing.T) {
	z := mxtest.NewZone().
		// MX target is a CNAME (RFC 2181 §10.3 forbids it; tolerated).
		MX("c.test", 10, "mx.c.test").CNAME("mx.c.test", "real.c.test").A("real.c.test", "192.0.2.5").
		// The domain itself is an alias.
		CNAME("alias.test", "c.test").
		// A loop on the only MX host.
		MX("loop.test", 10, "l1.loop.test").CNAME("l1.loop.test", "l2.loop.test").CNAME("l2.loop.test", "l1.loop.test").
		// A loop on the domain itself.
		CNAME("self.test", "self2.test").CNAME("self2.test", "self.test")
	// A chain of 12 links.
	z.MX("long.test", 10, "h0.long.test")
	for i := range 12 {
		z.CNAME(fmt.Sprintf("h%d.long.test", i), fmt.Sprintf("h%d.long.test", i+1))
	}
	z.A("h12.long.test", "192.0.2.12")
	s := mxtest.Start(t, z)
	r := newResolver(t, mx.Config{}, s.Addr())

	for _, d := range []string{"c.test", "alias.test"} {
		hosts, err := r.Lookup(t.Context(), d)
		if err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		if len(hosts) != 1 || hosts[0].Name != "mx.c.test" || !slices.Equal(hosts[0].Addrs, addrs("192.0.2.5")) {
			t.Fatalf("%s: hosts = %+v, want mx.c.test at 192.0.2.5", d, hosts)
		}
	}
	tests := []struct {
		domain, text string
	}{
		{"loop.test", "leads to a CNAME loop"},
		{"self.test", "MX self.test leads to a CNAME loop"},
		{"long.test", "leads to a CNAME chain longer than 8"},
	}
	for _, tt := range tests {
		t.Run(tt.domain, func(t *testing.T) {
			done := make(chan error, 1)
			go func() { _, err := r.Lookup(t.Context(), tt.domain); done <- err }()
			select {
			case err := <-done:
				e := wantError(t, err, mx.FailureServFail, true)
				if !strings.Contains(e.Error(), tt.text) {
					t.Errorf("error = %q, want %q", e.Error(), tt.text)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("CNAME chain not bounded: lookup still running")
			}
		})
	}
}

// clock is a fake, settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestCacheTTL(t *testing.T) {
	z := mxtest.NewZone().
		RR("a.test. 60 IN MX 10 mx.a.test.").RR("mx.a.test. 600 IN A 192.0.2.1").
		RR("zero.test. 0 IN MX 10 mx.a.test.").
		ServFail("sf.test")
	z.NegTTL = 120
	s := mxtest.Start(t, z)
	tests := []struct {
		domain   string
		hit, exp time.Duration // still cached at hit, expired at exp
	}{
		{"a.test", 59 * time.Second, 61 * time.Second},         // the record's TTL
		{"zero.test", 29 * time.Second, 31 * time.Second},      // TTL 0 raised to MinTTL 30s
		{"nowhere.test", 119 * time.Second, 121 * time.Second}, // NXDOMAIN: SOA minimum (RFC 2308)
		{"sf.test", 29 * time.Second, 31 * time.Second},        // SERVFAIL: FailureTTL 30s
	}
	for _, tt := range tests {
		t.Run(tt.domain, func(t *testing.T) {
			c := &clock{now: time.Unix(1e9, 0)}
			r := newResolver(t, mx.Config{Now: c.Now}, s.Addr())
			before := s.QueriesFor(tt.domain, dns.TypeMX)
			first, err1 := r.Lookup(t.Context(), tt.domain)
			c.Add(tt.hit)
			second, err2 := r.Lookup(t.Context(), tt.domain)
			if n := s.QueriesFor(tt.domain, dns.TypeMX) - before; n != 1 {
				t.Errorf("MX queries within TTL = %d, want 1", n)
			}
			if fmt.Sprint(first, err1) != fmt.Sprint(second, err2) {
				t.Errorf("cached answer differs: %v %v / %v %v", first, err1, second, err2)
			}
			c.Add(tt.exp - tt.hit)
			r.Lookup(t.Context(), tt.domain)
			if n := s.QueriesFor(tt.domain, dns.TypeMX) - before; n != 2 {
				t.Errorf("MX queries after TTL = %d, want 2", n)
			}
			if st := r.Stats(); st.CacheHits == 0 {
				t.Errorf("stats = %+v, want cache hits", st)
			}
		})
	}
}

func TestConcurrentLookupsShareOneQuery(t *testing.T) {
	z := mxtest.NewZone().MX("a.test", 10, "mx.a.test").A("mx.a.test", "192.0.2.1")
	release := z.Hold("a.test")
	s := mxtest.Start(t, z)
	r := newResolver(t, mx.Config{Timeout: 10 * time.Second}, s.Addr())
	const n = 20
	errs := make(chan error, n)
	results := make(chan []mx.Host, n)
	for range n {
		go func() {
			hosts, err := r.Lookup(t.Context(), "a.test")
			errs <- err
			results <- hosts
		}()
	}
	// Await every lookup waiting on the one held query.
	deadline := time.Now().Add(5 * time.Second)
	for r.Stats().Shared < n-1 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d lookups joined the query in flight", r.Stats().Shared)
		}
		runtime.Gosched()
	}
	release()
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		if got := names(<-results); !slices.Equal(got, []string{"mx.a.test"}) {
			t.Fatalf("hosts = %v", got)
		}
	}
	if q := s.Queries(dns.TypeMX); q != 1 {
		t.Errorf("MX queries = %d for %d concurrent lookups, want 1", q, n)
	}
}

func TestLookupCancelledWhileWaiting(t *testing.T) {
	z := mxtest.NewZone().MX("a.test", 10, "mx.a.test")
	release := z.Hold("a.test")
	defer release()
	s := mxtest.Start(t, z)
	r := newResolver(t, mx.Config{Timeout: 10 * time.Second}, s.Addr())
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { _, err := r.Lookup(ctx, "a.test"); done <- err }()
	for s.QueriesFor("a.test", dns.TypeMX) == 0 {
		runtime.Gosched()
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
}

func TestLookupHostsPartlyUnresolvable(t *testing.T) {
	z := mxtest.NewZone().
		MX("part.test", 10, "gone.part.test").MX("part.test", 20, "ok.part.test").MX("part.test", 30, "sf.part.test").
		A("ok.part.test", "192.0.2.1").ServFail("sf.part.test").
		MX("none.test", 10, "gone1.none.test").MX("none.test", 20, "gone2.none.test").
		MX("tmp.test", 10, "gone.tmp.test").MX("tmp.test", 20, "sf.tmp.test").ServFail("sf.tmp.test")
	s := mxtest.Start(t, z)
	r := newResolver(t, mx.Config{}, s.Addr())

	hosts, err := r.Lookup(t.Context(), "part.test")
	if err != nil {
		t.Fatal(err)
	}
	if got := names(hosts); !slices.Equal(got, []string{"ok.part.test"}) {
		t.Errorf("hosts = %v, want only ok.part.test", got)
	}

	_, err = r.Lookup(t.Context(), "none.test")
	e := wantError(t, err, mx.FailureMXNoAddress, true)
	if want := "none of the mail servers of none.test (gone1.none.test, gone2.none.test) has an address: no A or AAAA record, or the name does not exist"; e.Error() != want {
		t.Errorf("error = %q, want %q", e.Error(), want)
	}

	// One host gone, one SERVFAIL: the temporary DNS failure is reported.
	_, err = r.Lookup(t.Context(), "tmp.test")
	e = wantError(t, err, mx.FailureServFail, true)
	if e.Domain != "tmp.test" || e.Host != "sf.tmp.test" || !strings.Contains(e.Error(), "(a mail server of tmp.test)") {
		t.Errorf("error = %+v: %q", e, e.Error())
	}
}

func TestLookupProhibited(t *testing.T) {
	z := mxtest.NewZone().
		MX("lo.test", 10, "mx.lo.test").A("mx.lo.test", "127.0.0.1").
		MX("meta.test", 10, "mx.meta.test").A("mx.meta.test", "169.254.169.254").
		MX("v6.test", 10, "mx.v6.test").AAAA("mx.v6.test", "::1", "fd00:ec2::254").
		MX("mixed.test", 10, "bad.mixed.test").MX("mixed.test", 20, "good.mixed.test").
		A("bad.mixed.test", "10.1.2.3").A("good.mixed.test", "192.0.2.1").
		A("implicit.test", "0.0.0.0").
		MX("mapped.test", 10, "mx.mapped.test").AAAA("mx.mapped.test", "::ffff:7f00:1")
	s := mxtest.Start(t, z)
	tests := []struct {
		domain        string
		allowLoopback bool
		want          []string // hosts, or nil for a prohibited error
		text          string
	}{
		{"lo.test", false, nil, "mail server mx.lo.test of lo.test resolves to 127.0.0.1, a loopback address: refusing to deliver there (prohibited destination); the lab setting --allow-loopback-mx allows loopback and private addresses"},
		{"lo.test", true, []string{"mx.lo.test"}, ""},
		{"meta.test", false, nil, "resolves to 169.254.169.254, a cloud metadata address: refusing to deliver there (prohibited destination)"},
		{"meta.test", true, nil, "a cloud metadata address"},
		{"v6.test", false, nil, "resolves to ::1, a loopback address"},
		{"mixed.test", false, []string{"good.mixed.test"}, ""},
		{"mixed.test", true, []string{"bad.mixed.test", "good.mixed.test"}, ""},
		{"implicit.test", true, nil, "resolves to 0.0.0.0, an unspecified address"},
		{"mapped.test", false, nil, "a loopback address"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s allow=%v", tt.domain, tt.allowLoopback), func(t *testing.T) {
			r := newResolver(t, mx.Config{AllowLoopback: tt.allowLoopback}, s.Addr())
			hosts, err := r.Lookup(t.Context(), tt.domain)
			if tt.want != nil {
				if err != nil {
					t.Fatal(err)
				}
				if got := names(hosts); !slices.Equal(got, tt.want) {
					t.Fatalf("hosts = %v, want %v", got, tt.want)
				}
				return
			}
			e := wantError(t, err, mx.FailureProhibited, false)
			if !strings.Contains(e.Error(), tt.text) {
				t.Errorf("error = %q, want %q", e.Error(), tt.text)
			}
		})
	}
}

func TestIsProhibited(t *testing.T) {
	tests := []struct {
		addr          string
		never, unless bool // prohibited always / unless allowLoopback
	}{
		{"127.0.0.1", false, true},
		{"127.8.9.10", false, true},
		{"::1", false, true},
		{"::ffff:127.0.0.1", false, true},
		{"10.0.0.1", false, true},
		{"172.16.5.4", false, true},
		{"192.168.1.1", false, true},
		{"100.64.0.1", false, true},
		{"fd12::1", false, true},
		{"0.0.0.0", true, true},
		{"0.1.2.3", true, true},
		{"::", true, true},
		{"169.254.169.254", true, true},
		{"169.254.1.1", true, true},
		{"fe80::1", true, true},
		{"fe80::1%eth0", true, true},
		{"fd00:ec2::254", true, true},
		{"224.0.0.1", true, true},
		{"ff02::1", true, true},
		{"255.255.255.255", true, true},
		{"240.0.0.1", true, true},
		{"192.0.2.1", false, false},
		{"8.8.8.8", false, false},
		{"2001:db8::1", false, false},
		{"2a00:1450:4001::1a", false, false},
		{"100.128.0.1", false, false},
		{"172.32.0.1", false, false},
	}
	for _, tt := range tests {
		a := netip.MustParseAddr(tt.addr)
		if got := mx.IsProhibited(a, false); got != tt.unless {
			t.Errorf("IsProhibited(%s, false) = %v, want %v", tt.addr, got, tt.unless)
		}
		if got := mx.IsProhibited(a, true); got != tt.never {
			t.Errorf("IsProhibited(%s, true) = %v, want %v", tt.addr, got, tt.never)
		}
	}
	if !mx.IsProhibited(netip.Addr{}, true) {
		t.Error("the zero Addr must be prohibited")
	}
}

func TestLookupHost(t *testing.T) {
	z := mxtest.NewZone().A("relay.test", "127.0.0.1").AAAA("relay.test", "::1").
		MX("mxonly.test", 10, "relay.test").Drop("slow.test")
	s := mxtest.Start(t, z)
	r := newResolver(t, mx.Config{Timeout: 150 * time.Millisecond}, s.Addr())
	tests := []struct {
		name string
		want []netip.Addr
		kind mx.Failure
		temp bool
	}{
		{"relay.test", addrs("127.0.0.1", "::1"), "", false}, // loopback is fine for a relay
		{"192.0.2.4", addrs("192.0.2.4"), "", false},
		{"[2001:db8::4]", addrs("2001:db8::4"), "", false},
		{"nowhere.test", nil, mx.FailureNXDomain, false},
		{"mxonly.test", nil, mx.FailureNoData, false},
		{"slow.test", nil, mx.FailureTimeout, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.LookupHost(t.Context(), tt.name)
			if tt.kind != "" {
				e := wantError(t, err, tt.kind, tt.temp)
				if e.Domain != tt.name {
					t.Errorf("Domain = %q, want %q", e.Domain, tt.name)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("addrs = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTenThousandRecipientsHundredDomains(t *testing.T) {
	z := mxtest.NewZone()
	for i := range 100 {
		d := fmt.Sprintf("d%d.test", i)
		z.MX(d, 10, "mx."+d).A("mx."+d, fmt.Sprintf("192.0.2.%d", i+1))
	}
	s := mxtest.Start(t, z)
	r := newResolver(t, mx.Config{}, s.Addr())
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 { // 4 workers, 2,500 recipients each, domains interleaved
		wg.Go(func() {
			for i := range 2500 {
				if _, err := r.Lookup(t.Context(), fmt.Sprintf("d%d.test", (i*4+w)%100)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := s.Queries(dns.TypeMX); got != 100 {
		t.Errorf("MX queries = %d for 10,000 recipients over 100 domains, want 100", got)
	}
	if a, aaaa := s.Queries(dns.TypeA), s.Queries(dns.TypeAAAA); a != 100 || aaaa != 100 {
		t.Errorf("A/AAAA queries = %d/%d, want 100/100 (one per MX host)", a, aaaa)
	}
	if st := r.Stats(); st.MX != 100 || st.A != 100 || st.AAAA != 100 {
		t.Errorf("stats = %+v", st)
	}
}

func TestNewServers(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(conf, []byte("# test\nsearch example.org\nnameserver 127.0.0.53\nnameserver ::1\noptions edns0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.conf")
	if err := os.WriteFile(empty, []byte("search example.org\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cfg     mx.Config
		want    []string
		source  string
		wantErr string
	}{
		{"flag", mx.Config{Servers: []string{"9.9.9.9", "127.0.0.1:5353", "[::1]:53", "2620:fe::fe"}},
			[]string{"9.9.9.9:53", "127.0.0.1:5353", "[::1]:53", "[2620:fe::fe]:53"}, "flag", ""},
		{"resolv.conf", mx.Config{ResolvConf: conf}, []string{"127.0.0.53:53", "[::1]:53"}, conf, ""},
		{"host name", mx.Config{Servers: []string{"dns.example"}}, nil, "", `"dns.example" is not an IP address`},
		{"no nameserver", mx.Config{ResolvConf: empty}, nil, "", "names no DNS server"},
		{"missing file", mx.Config{ResolvConf: filepath.Join(dir, "nope")}, nil, "", "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := mx.New(tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(r.Servers(), tt.want) || r.Source() != tt.source {
				t.Errorf("servers %v from %q, want %v from %q", r.Servers(), r.Source(), tt.want, tt.source)
			}
		})
	}
}

func TestLookupBadDomain(t *testing.T) {
	r := newResolver(t, mx.Config{}, "127.0.0.1:1")
	for _, d := range []string{"", ".", "a..b", strings.Repeat("x", 64) + ".test"} {
		if _, err := r.Lookup(t.Context(), d); err == nil {
			t.Errorf("Lookup(%q): no error", d)
		}
	}
	if st := r.Stats(); st.Exchanges != 0 {
		t.Errorf("bad names were sent: %+v", st)
	}
}

func BenchmarkLookupCached(b *testing.B) {
	z := mxtest.NewZone().
		MX("a.test", 10, "mx1.a.test").MX("a.test", 10, "mx2.a.test").MX("a.test", 20, "mx3.a.test").
		A("mx1.a.test", "192.0.2.1").A("mx2.a.test", "192.0.2.2").A("mx3.a.test", "192.0.2.3")
	s := mxtest.Start(b, z)
	r := newResolver(b, mx.Config{}, s.Addr())
	ctx := context.Background()
	if _, err := r.Lookup(ctx, "a.test"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Lookup(ctx, "a.test"); err != nil {
			b.Fatal(err)
		}
	}
}
