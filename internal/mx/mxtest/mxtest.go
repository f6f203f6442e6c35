// Package mxtest is an in-process DNS server for tests of the mx resolver
// and of everything above it (transport, doctor), and for labs.
//
// Place in the flow: it stands where the user's DNS server (--dns) would
// be. It answers like a recursive resolver from a Zone built in the test
// (MX, A, AAAA, CNAME records; CNAME chains are followed into the answer)
// and injects faults per name: SERVFAIL, REFUSED, NXDOMAIN, no answer at
// all (the client times out), a truncated UDP answer (the client must
// retry over TCP), or an answer held back until the test releases it. It
// listens on UDP and TCP on the same loopback port and counts the queries
// it receives, per type and per name.
package mxtest

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// Fault is a failure injected for one name.
type Fault int

// The faults.
const (
	None     Fault = iota
	ServFail       // rcode SERVFAIL
	Refused        // rcode REFUSED
	NXDomain       // rcode NXDOMAIN even if the name has records
	Drop           // no reply at all: the client times out
	Truncate       // over UDP: an empty reply with TC set; over TCP: the answer
	NoEDNS         // FORMERR to queries with EDNS0, as a server that predates RFC 6891
)

// Zone is the data the server answers from. Make it with NewZone and build
// it with the methods; they may be called while the server runs. Names are case-insensitive,
// with or without the trailing dot.
type Zone struct {
	// TTL is given to records added by the builder methods; default 300.
	TTL uint32
	// NegTTL is the SOA MINIMUM (and SOA TTL) of negative answers
	// (RFC 2308 §5); default 60.
	NegTTL uint32

	mu     sync.Mutex
	rrs    []dns.RR
	faults map[string]Fault
	holds  map[string]chan struct{}
}

// NewZone returns an empty zone.
func NewZone() *Zone {
	return &Zone{TTL: 300, NegTTL: 60, faults: map[string]Fault{}, holds: map[string]chan struct{}{}}
}

func fqdn(name string) string { return dns.Fqdn(strings.ToLower(name)) }

func (z *Zone) hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: fqdn(name), Rrtype: t, Class: dns.ClassINET, Ttl: z.TTL}
}

func (z *Zone) add(rr dns.RR) *Zone {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.rrs = append(z.rrs, rr)
	return z
}

// MX adds an MX record: name's mail goes to host at preference pref.
func (z *Zone) MX(name string, pref uint16, host string) *Zone {
	target := "."
	if host != "." && host != "" {
		target = fqdn(host)
	}
	return z.add(&dns.MX{Hdr: z.hdr(name, dns.TypeMX), Preference: pref, Mx: target})
}

// NullMX adds the null MX "0 ." of RFC 7505.
func (z *Zone) NullMX(name string) *Zone { return z.MX(name, 0, ".") }

// A adds A records. An address that is not IPv4 panics (a broken test).
func (z *Zone) A(name string, addrs ...string) *Zone {
	for _, s := range addrs {
		ip := net.ParseIP(s).To4()
		if ip == nil {
			panic(fmt.Sprintf("mxtest: A %s: %q is not an IPv4 address", name, s))
		}
		z.add(&dns.A{Hdr: z.hdr(name, dns.TypeA), A: ip})
	}
	return z
}

// AAAA adds AAAA records. An address that is not IPv6 panics.
func (z *Zone) AAAA(name string, addrs ...string) *Zone {
	for _, s := range addrs {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is6() {
			panic(fmt.Sprintf("mxtest: AAAA %s: %q is not an IPv6 address", name, s))
		}
		b := a.As16()
		z.add(&dns.AAAA{Hdr: z.hdr(name, dns.TypeAAAA), AAAA: net.IP(b[:])})
	}
	return z
}

// CNAME adds a CNAME record from name to target.
func (z *Zone) CNAME(name, target string) *Zone {
	return z.add(&dns.CNAME{Hdr: z.hdr(name, dns.TypeCNAME), Target: fqdn(target)})
}

// RR adds a record in zone-file syntax, e.g. "a.test. 10 IN MX 10 mx.a.test.";
// a syntax error panics.
func (z *Zone) RR(text string) *Zone {
	rr, err := dns.NewRR(text)
	if err != nil || rr == nil {
		panic(fmt.Sprintf("mxtest: RR %q: %v", text, err))
	}
	rr.Header().Name = fqdn(rr.Header().Name)
	return z.add(rr)
}

// Remove deletes every record of name (faults stay).
func (z *Zone) Remove(name string) *Zone {
	n := fqdn(name)
	z.mu.Lock()
	defer z.mu.Unlock()
	var keep []dns.RR
	for _, rr := range z.rrs {
		if rr.Header().Name != n {
			keep = append(keep, rr)
		}
	}
	z.rrs = keep
	return z
}

// Fault sets (or with None clears) the fault of name, for every type.
func (z *Zone) Fault(name string, f Fault) *Zone {
	z.mu.Lock()
	defer z.mu.Unlock()
	if f == None {
		delete(z.faults, fqdn(name))
	} else {
		z.faults[fqdn(name)] = f
	}
	return z
}

// ServFail makes name answer SERVFAIL.
func (z *Zone) ServFail(name string) *Zone { return z.Fault(name, ServFail) }

// Refused makes name answer REFUSED.
func (z *Zone) Refused(name string) *Zone { return z.Fault(name, Refused) }

// NXDomain makes name answer NXDOMAIN. (A name without any record does
// so already.)
func (z *Zone) NXDomain(name string) *Zone { return z.Fault(name, NXDomain) }

// Drop makes the server never answer questions about name.
func (z *Zone) Drop(name string) *Zone { return z.Fault(name, Drop) }

// Truncate makes UDP answers about name empty and truncated (TC), so the
// client must ask again over TCP.
func (z *Zone) Truncate(name string) *Zone { return z.Fault(name, Truncate) }

// Hold holds back every answer about name until release is called (or the
// server is closed). The query is counted when it arrives.
func (z *Zone) Hold(name string) (release func()) {
	ch := make(chan struct{})
	z.mu.Lock()
	z.holds[fqdn(name)] = ch
	z.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			z.mu.Lock()
			delete(z.holds, fqdn(name))
			z.mu.Unlock()
			close(ch)
		})
	}
}

// Query is one query the server received.
type Query struct {
	Name    string // lower-case FQDN
	Type    uint16
	Net     string // "udp" or "tcp"
	RD      bool   // recursion desired
	UDPSize uint16 // EDNS0 buffer size, 0 without EDNS0
}

// Server is a running DNS server.
type Server struct {
	zone *Zone
	addr string
	udp  *dns.Server
	tcp  *dns.Server
	done chan struct{}

	mu      sync.Mutex
	log     []Query
	closed  bool
	closeMu sync.Mutex
}

// Start runs a server for z on 127.0.0.1 (UDP and TCP, same port), stopped
// by t.Cleanup.
func Start(t testing.TB, z *Zone) *Server {
	t.Helper()
	s, err := New("127.0.0.1:0", z)
	if err != nil {
		t.Fatalf("mxtest: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// New runs a server for z on addr ("127.0.0.1:0" picks a free port, the
// same one for UDP and TCP). Close stops it.
func New(addr string, z *Zone) (*Server, error) {
	if z == nil {
		z = NewZone()
	}
	var (
		pc  net.PacketConn
		ln  net.Listener
		err error
	)
	for range 20 { // a port free for UDP may be taken for TCP: try another
		pc, err = net.ListenPacket("udp", addr)
		if err != nil {
			return nil, fmt.Errorf("listen udp %s: %w", addr, err)
		}
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
		if !strings.HasSuffix(addr, ":0") {
			return nil, fmt.Errorf("listen tcp %s: %w", addr, err)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("no port free for both UDP and TCP: %w", err)
	}
	s := &Server{zone: z, addr: pc.LocalAddr().String(), done: make(chan struct{})}
	started := make(chan struct{}, 2)
	notify := func() { started <- struct{}{} }
	s.udp = &dns.Server{PacketConn: pc, Handler: s, NotifyStartedFunc: notify}
	s.tcp = &dns.Server{Listener: ln, Handler: s, NotifyStartedFunc: notify}
	errs := make(chan error, 2)
	go func() { errs <- s.udp.ActivateAndServe() }()
	go func() { errs <- s.tcp.ActivateAndServe() }()
	for range 2 {
		select {
		case <-started:
		case err := <-errs:
			pc.Close()
			ln.Close()
			return nil, fmt.Errorf("dns server: %w", err)
		}
	}
	return s, nil
}

// Addr returns "127.0.0.1:PORT".
func (s *Server) Addr() string { return s.addr }

// Close stops the server; held answers are released unanswered.
func (s *Server) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	close(s.done)
	return errors.Join(s.udp.Shutdown(), s.tcp.Shutdown())
}

// Queries returns how many queries of qtype the server received (UDP and
// TCP each count).
func (s *Server) Queries(qtype uint16) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, q := range s.log {
		if q.Type == qtype {
			n++
		}
	}
	return n
}

// QueriesFor returns how many queries of qtype for name the server received.
func (s *Server) QueriesFor(name string, qtype uint16) int {
	n := fqdn(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	c := 0
	for _, q := range s.log {
		if q.Type == qtype && q.Name == n {
			c++
		}
	}
	return c
}

// Log returns every query received, in order.
func (s *Server) Log() []Query {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Query(nil), s.log...)
}

// ServeDNS answers one query; it implements dns.Handler.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	if len(req.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeFormatError)
		_ = w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	network := "udp"
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		network = "tcp"
	}
	rec := Query{Name: name, Type: q.Qtype, Net: network, RD: req.RecursionDesired}
	if opt := req.IsEdns0(); opt != nil {
		rec.UDPSize = opt.UDPSize()
	}
	s.mu.Lock()
	s.log = append(s.log, rec)
	s.mu.Unlock()

	s.zone.mu.Lock()
	hold := s.zone.holds[name]
	s.zone.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-s.done:
			return
		}
	}

	resp := s.zone.answer(req, name, q.Qtype, network)
	if resp == nil {
		return // Drop
	}
	if opt := req.IsEdns0(); opt != nil && resp.Rcode != dns.RcodeFormatError {
		resp.SetEdns0(opt.UDPSize(), false)
	}
	_ = w.WriteMsg(resp)
}

// answer builds the reply as a recursive resolver would: the CNAME chain
// (followed at most 16 links, and not into a loop), then the records of
// the asked type; NXDOMAIN when the last name has no record at all;
// negative answers carry a SOA for negative caching (RFC 2308 §3).
func (z *Zone) answer(req *dns.Msg, name string, qtype uint16, network string) *dns.Msg {
	z.mu.Lock()
	defer z.mu.Unlock()
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.RecursionAvailable = true
	cur := name
	seen := map[string]bool{}
	for range 16 {
		switch z.faults[cur] {
		case Drop:
			return nil
		case ServFail:
			resp.Answer = nil
			resp.Rcode = dns.RcodeServerFailure
			return resp
		case Refused:
			resp.Answer = nil
			resp.Rcode = dns.RcodeRefused
			return resp
		case NXDomain:
			resp.Rcode = dns.RcodeNameError
			resp.Ns = []dns.RR{z.soa(cur)}
			return resp
		case NoEDNS:
			if req.IsEdns0() != nil {
				resp.Answer = nil
				resp.Rcode = dns.RcodeFormatError
				return resp
			}
		case Truncate:
			if network == "udp" {
				resp.Answer = nil
				resp.Truncated = true
				return resp
			}
		}
		seen[cur] = true
		var recs []dns.RR
		var cname *dns.CNAME
		exists := false
		for _, rr := range z.rrs {
			h := rr.Header()
			if h.Name != cur {
				continue
			}
			exists = true
			if h.Rrtype == qtype {
				recs = append(recs, dns.Copy(rr))
			} else if c, ok := rr.(*dns.CNAME); ok && cname == nil {
				cname = c
			}
		}
		if len(recs) > 0 {
			resp.Answer = append(resp.Answer, recs...)
			return resp
		}
		if cname == nil {
			if !exists {
				resp.Rcode = dns.RcodeNameError
			}
			resp.Ns = []dns.RR{z.soa(cur)}
			return resp
		}
		resp.Answer = append(resp.Answer, dns.Copy(cname))
		if seen[cname.Target] {
			return resp // a loop: give the chain so far, as some resolvers do
		}
		cur = cname.Target
	}
	return resp
}

// soa returns a SOA for negative answers about name, owned by its
// top-level domain.
func (z *Zone) soa(name string) dns.RR {
	labels := dns.SplitDomainName(name)
	apex := "."
	if len(labels) > 0 {
		apex = labels[len(labels)-1] + "."
	}
	return &dns.SOA{
		Hdr: dns.RR_Header{Name: apex, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: z.NegTTL},
		Ns:  "ns." + apex, Mbox: "hostmaster." + apex, Serial: 1,
		Refresh: 3600, Retry: 600, Expire: 86400, Minttl: z.NegTTL,
	}
}
