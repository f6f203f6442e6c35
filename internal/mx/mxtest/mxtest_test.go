package mxtest_test

import (
	"testing"
	"time"

	"github.com/miekg/dns"

	"mailout/internal/mx/mxtest"
)

func exchange(t *testing.T, network, addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	c := &dns.Client{Net: network, Timeout: 2 * time.Second}
	resp, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s %s: %v", network, dns.TypeToString[qtype], name, err)
	}
	return resp
}

func TestServerAnswers(t *testing.T) {
	z := mxtest.NewZone().MX("a.test", 10, "mx.a.test").CNAME("www.a.test", "a.test").
		A("a.test", "192.0.2.1").Truncate("big.test").A("big.test", "192.0.2.2")
	z.NegTTL = 42
	s := mxtest.Start(t, z)
	tests := []struct {
		name, network string
		qtype         uint16
		rcode         int
		answers       int
		truncated     bool
	}{
		{"a.test", "udp", dns.TypeMX, dns.RcodeSuccess, 1, false},
		{"www.a.test", "udp", dns.TypeA, dns.RcodeSuccess, 2, false}, // CNAME + A
		{"a.test", "tcp", dns.TypeAAAA, dns.RcodeSuccess, 0, false},  // no data
		{"nowhere.test", "udp", dns.TypeMX, dns.RcodeNameError, 0, false},
		{"big.test", "udp", dns.TypeA, dns.RcodeSuccess, 0, true},
		{"big.test", "tcp", dns.TypeA, dns.RcodeSuccess, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.network+" "+tt.name, func(t *testing.T) {
			resp := exchange(t, tt.network, s.Addr(), tt.name, tt.qtype)
			if resp.Rcode != tt.rcode || len(resp.Answer) != tt.answers || resp.Truncated != tt.truncated {
				t.Fatalf("reply rcode %s, %d answers, TC %v; want %s, %d, %v:\n%v",
					dns.RcodeToString[resp.Rcode], len(resp.Answer), resp.Truncated,
					dns.RcodeToString[tt.rcode], tt.answers, tt.truncated, resp)
			}
			if tt.answers == 0 && !tt.truncated {
				soa, ok := resp.Ns[0].(*dns.SOA)
				if !ok || soa.Minttl != 42 {
					t.Errorf("negative answer without SOA minimum 42: %v", resp.Ns)
				}
			}
		})
	}
	if n := s.QueriesFor("big.test", dns.TypeA); n != 2 {
		t.Errorf("QueriesFor(big.test, A) = %d, want 2", n)
	}
	if n := s.Queries(dns.TypeMX); n != 2 {
		t.Errorf("Queries(MX) = %d, want 2", n)
	}
}

func TestCloseReleasesHeldQueries(t *testing.T) {
	z := mxtest.NewZone().A("a.test", "192.0.2.1")
	z.Hold("a.test")
	s, err := mxtest.New("127.0.0.1:0", z)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		m := new(dns.Msg)
		m.SetQuestion("a.test.", dns.TypeA)
		c := &dns.Client{Timeout: 5 * time.Second}
		c.Exchange(m, s.Addr()) // never answered
	}()
	for s.QueriesFor("a.test", dns.TypeA) == 0 {
		time.Sleep(time.Millisecond) // await the query's arrival
	}
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Close blocked on a held query")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
