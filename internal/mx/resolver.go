// Package mx finds where a recipient domain's mail goes, for the direct
// route.
//
// Place in the flow: transport (direct route) -> mx.Lookup(domain) -> the MX
// hosts in the order to try, each with its addresses -> smtpclient dials
// them. The relay route uses LookupHost for the relay's name. Errors are
// *Error values whose Kind, a Failure (timeout, refused, servfail,
// nxdomain, nodata, mx-no-address, null-mx, prohibited), the outcome
// classifier reads with errors.As.
//
// Steps of Lookup (RFC 5321 §5.1): one MX query for the domain (cached for
// its TTL, shared by concurrent callers, so a campaign costs one MX query
// per domain, not per recipient); a null MX (RFC 7505) ends there; no MX
// records means an implicit MX on the domain itself; otherwise the hosts
// are sorted by preference, equal preferences shuffled, and each host's A
// and AAAA records resolved. Destinations on loopback, link-local,
// private or metadata addresses are dropped (IsProhibited) unless the lab
// setting AllowLoopback is on.
//
// The package speaks DNS itself (github.com/miekg/dns) to the servers the
// user chose (--dns) or those of /etc/resolv.conf: UDP with EDNS0, TCP when
// the answer is truncated, each server once, in order. Speaking DNS itself
// (rather than through the system's resolver) lets mailout tell a user
// whose firewall blocks port 53 exactly that, and lets a user type the DNS
// server's address by hand, as the troubleshooting guide asks.
package mx

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// Defaults of Config.
const (
	DefaultResolvConf  = "/etc/resolv.conf"
	DefaultTimeout     = 5 * time.Second
	DefaultMinTTL      = 30 * time.Second
	DefaultMaxTTL      = 24 * time.Hour
	DefaultNegativeTTL = 60 * time.Second
	DefaultFailureTTL  = 30 * time.Second

	// ednsBufSize is the EDNS0 UDP payload size we advertise: 1232 bytes,
	// the DNS Flag Day 2020 value that avoids IP fragmentation.
	ednsBufSize = 1232
	// maxCNAME bounds a CNAME chain (mox and most
	// resolvers use a limit of this order).
	maxCNAME = 8
	// maxMXHosts bounds how many MX hosts are resolved for one domain.
	maxMXHosts = 16
)

// Config configures a Resolver. Only cmd/mailout reads flags and files;
// the zero value of every field means its default.
type Config struct {
	// Servers are DNS servers as "IP" or "IP:PORT" (port 53 by default,
	// IPv6 as "[::1]:53"), tried in order. Empty: the nameserver lines of
	// ResolvConf.
	Servers []string
	// ResolvConf is read when Servers is empty; default /etc/resolv.conf.
	ResolvConf string
	// Timeout is the time given to one server for one query; default 5s.
	// Each server is asked once over UDP (and over TCP when the UDP answer
	// is truncated), then the next one.
	Timeout time.Duration
	// AllowLoopback is the lab setting --allow-loopback-mx: MX hosts on
	// loopback and private ranges are accepted (see IsProhibited).
	// Link-local, metadata, unspecified and multicast stay refused.
	AllowLoopback bool
	// MinTTL is the shortest time an answer is cached, so a domain
	// published with TTL 0 still costs one query per MinTTL rather than
	// one per recipient; default 30s. MaxTTL caps it; default 24h.
	MinTTL, MaxTTL time.Duration
	// NegativeTTL is how long NXDOMAIN and no-data answers are cached when
	// the answer carries no SOA record (RFC 2308 §5); default 60s.
	NegativeTTL time.Duration
	// FailureTTL is how long timeouts, REFUSED and SERVFAIL are cached
	// (RFC 2308 §7: at most five minutes), so a broken domain does not
	// cost Timeout per recipient; default 30s, negative disables.
	FailureTTL time.Duration
	// Now is the clock of the cache; default time.Now.
	Now func() time.Time
	// Rand returns a number in [0, n); it shuffles equal MX preferences.
	// It must be safe for concurrent use. Default math/rand/v2.IntN.
	Rand func(n int) int
}

// Stats counts the work of a Resolver since New.
type Stats struct {
	// MX, A, AAAA and Other count questions sent to the network (once per
	// question, whatever the number of servers tried or a TCP retry).
	MX, A, AAAA, Other int64
	// Exchanges counts DNS messages sent: every server tried, UDP and TCP.
	Exchanges int64
	// TCP counts re-queries over TCP after a truncated UDP answer.
	TCP int64
	// CacheHits counts questions answered from the cache.
	CacheHits int64
	// Shared counts questions that joined a query already in flight.
	Shared int64
}

// Resolver resolves MX and host names. It is safe for concurrent use.
type Resolver struct {
	servers       []string
	source        string
	timeout       time.Duration
	allowLoopback bool
	minTTL        time.Duration
	maxTTL        time.Duration
	negTTL        time.Duration
	failTTL       time.Duration
	now           func() time.Time
	rand          func(int) int

	mu      sync.Mutex
	cache   map[qkey]*entry
	flights map[qkey]*flight

	nMX, nA, nAAAA, nOther       atomic.Int64
	nExchanges, nTCP, nHit, nSha atomic.Int64
}

type qkey struct {
	name  string // lower-case FQDN
	qtype uint16
}

// entry is the answer to one question, as cached.
type entry struct {
	rcode   int           // dns.RcodeSuccess or dns.RcodeNameError when err is nil
	answer  []dns.RR      // answer section
	negTTL  time.Duration // RFC 2308 negative TTL from the SOA, or -1
	server  string        // server that answered
	err     *Error        // the question could not be answered (timeout, refused, servfail)
	expires time.Time
}

type flight struct {
	done chan struct{}
	e    *entry
}

// New returns a Resolver. It fails on a malformed server address or when
// no server is configured at all.
func New(cfg Config) (*Resolver, error) {
	r := &Resolver{
		timeout:       cfg.Timeout,
		allowLoopback: cfg.AllowLoopback,
		minTTL:        cfg.MinTTL,
		maxTTL:        cfg.MaxTTL,
		negTTL:        cfg.NegativeTTL,
		failTTL:       cfg.FailureTTL,
		now:           cfg.Now,
		rand:          cfg.Rand,
		cache:         map[qkey]*entry{},
		flights:       map[qkey]*flight{},
	}
	if r.timeout <= 0 {
		r.timeout = DefaultTimeout
	}
	if r.minTTL <= 0 {
		r.minTTL = DefaultMinTTL
	}
	if r.maxTTL <= 0 {
		r.maxTTL = DefaultMaxTTL
	}
	if r.negTTL <= 0 {
		r.negTTL = DefaultNegativeTTL
	}
	if r.failTTL == 0 {
		r.failTTL = DefaultFailureTTL
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.rand == nil {
		r.rand = rand.IntN
	}
	list, source := cfg.Servers, "flag"
	if len(list) == 0 {
		path := cfg.ResolvConf
		if path == "" {
			path = DefaultResolvConf
		}
		cc, err := dns.ClientConfigFromFile(path)
		if err != nil {
			return nil, fmt.Errorf("mx: reading DNS servers: %w (name one with --dns IP)", err)
		}
		if len(cc.Servers) == 0 {
			return nil, fmt.Errorf("mx: %s names no DNS server (name one with --dns IP)", path)
		}
		for _, s := range cc.Servers {
			if cc.Port != "" && cc.Port != "53" {
				s = net.JoinHostPort(s, cc.Port)
			}
			list = append(list, s)
		}
		source = path
	}
	for _, s := range list {
		ap, err := ParseServer(s)
		if err != nil {
			return nil, fmt.Errorf("mx: DNS server from %s: %w", source, err)
		}
		r.servers = append(r.servers, ap.String())
	}
	r.source = source
	return r, nil
}

// ParseServer parses a DNS server address "IP" or "IP:PORT" ("[IPv6]:PORT");
// the port defaults to 53. Host names are refused: resolving the resolver
// would need a resolver.
func ParseServer(s string) (netip.AddrPort, error) {
	s = strings.TrimSpace(s)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Port() == 0 {
			return netip.AddrPort{}, fmt.Errorf("DNS server %q: port 0", s)
		}
		return ap, nil
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("DNS server %q is not an IP address or IP:PORT", s)
	}
	return netip.AddrPortFrom(a, 53), nil
}

// Servers returns the DNS servers in use, as "IP:PORT", in the order they
// are tried.
func (r *Resolver) Servers() []string { return append([]string(nil), r.servers...) }

// Source says where Servers came from: "flag" (Config.Servers, i.e. --dns)
// or the path of the resolv.conf file that was read.
func (r *Resolver) Source() string { return r.source }

// Stats returns the counters since New.
func (r *Resolver) Stats() Stats {
	return Stats{
		MX: r.nMX.Load(), A: r.nA.Load(), AAAA: r.nAAAA.Load(), Other: r.nOther.Load(),
		Exchanges: r.nExchanges.Load(), TCP: r.nTCP.Load(),
		CacheHits: r.nHit.Load(), Shared: r.nSha.Load(),
	}
}

// query answers one question from the cache, from a query already in
// flight, or from the network. The network query runs detached from ctx so
// that callers sharing it are not cancelled by the first one; each caller
// still stops waiting when its own ctx ends.
func (r *Resolver) query(ctx context.Context, name string, qtype uint16) (*entry, error) {
	k := qkey{name, qtype}
	r.mu.Lock()
	if e, ok := r.cache[k]; ok {
		if r.now().Before(e.expires) {
			r.mu.Unlock()
			r.nHit.Add(1)
			return e, nil
		}
		delete(r.cache, k)
	}
	f, ok := r.flights[k]
	if ok {
		r.nSha.Add(1)
	} else {
		f = &flight{done: make(chan struct{})}
		r.flights[k] = f
		go r.fly(context.WithoutCancel(ctx), k, f)
	}
	r.mu.Unlock()
	select {
	case <-f.done:
		return f.e, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("mx: %s %s: %w", dns.TypeToString[qtype], strings.TrimSuffix(name, "."), ctx.Err())
	}
}

// fresh reports whether the answer to a question is in the cache and
// unexpired (without counting a hit).
func (r *Resolver) fresh(name string, qtype uint16) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.cache[qkey{name, qtype}]
	return ok && r.now().Before(e.expires)
}

func (r *Resolver) fly(ctx context.Context, k qkey, f *flight) {
	switch k.qtype {
	case dns.TypeMX:
		r.nMX.Add(1)
	case dns.TypeA:
		r.nA.Add(1)
	case dns.TypeAAAA:
		r.nAAAA.Add(1)
	default:
		r.nOther.Add(1)
	}
	e := r.exchange(ctx, k.name, k.qtype)
	now := r.now()
	e.expires = now.Add(r.ttl(e))
	r.mu.Lock()
	if e.expires.After(now) {
		r.cache[k] = e
	}
	delete(r.flights, k)
	f.e = e
	r.mu.Unlock()
	close(f.done)
}

// ttl is how long e may be cached: the smallest TTL of the answer
// (RFC 2181 §5.2 makes an RRset's TTLs equal; a CNAME chain takes its
// shortest link), or for a negative answer min(SOA TTL, SOA MINIMUM) of the
// authority section (RFC 2308 §5), bounded by MinTTL and MaxTTL.
func (r *Resolver) ttl(e *entry) time.Duration {
	if e.err != nil {
		return r.failTTL
	}
	var d time.Duration = -1
	if e.rcode == dns.RcodeSuccess && len(e.answer) > 0 {
		for _, rr := range e.answer {
			if t := time.Duration(rr.Header().Ttl) * time.Second; d < 0 || t < d {
				d = t
			}
		}
	} else if e.negTTL >= 0 {
		d = e.negTTL
	} else {
		d = r.negTTL
	}
	return min(max(d, r.minTTL), r.maxTTL)
}

// exchange asks the servers in order until one gives an answer (NOERROR or
// NXDOMAIN). A server that times out, refuses or fails is noted and the
// next one asked.
func (r *Resolver) exchange(ctx context.Context, name string, qtype uint16) *entry {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = true      // RFC 1035 §4.1.1: we are a stub, the server recurses
	m.SetEdns0(ednsBufSize, false) // RFC 6891
	q := dns.TypeToString[qtype] + " " + strings.TrimSuffix(name, ".")

	var fails []*Error
	for _, srv := range r.servers {
		resp, err := r.exchangeOne(ctx, m, srv)
		if err == nil {
			err = checkReply(m, resp)
		}
		if err == nil {
			return &entry{rcode: resp.Rcode, answer: resp.Answer, negTTL: soaTTL(resp), server: srv}
		}
		fails = append(fails, r.serverError(srv, q, err))
	}
	best := fails[0]
	for _, f := range fails[1:] {
		if rank(f.Kind) > rank(best.Kind) {
			best = f
		}
	}
	for _, f := range fails {
		if f != best {
			best.tried = append(best.tried, f.msg)
		}
	}
	best.QType = dns.TypeToString[qtype]
	best.Name = strings.TrimSuffix(name, ".")
	return &entry{err: best, server: best.Server}
}

// rank orders server failures by how much they tell: a SERVFAIL means a
// server answered, which says more than silence.
func rank(kind Failure) int {
	switch kind {
	case FailureServFail:
		return 2
	case FailureRefused:
		return 1
	}
	return 0
}

// exchangeOne sends m to one server over UDP and, if the answer is
// truncated (TC bit, RFC 1035 §4.2.1; RFC 7766 §5), again over TCP.
func (r *Resolver) exchangeOne(ctx context.Context, m *dns.Msg, srv string) (*dns.Msg, error) {
	c := &dns.Client{Net: "udp", Timeout: r.timeout}
	r.nExchanges.Add(1)
	resp, _, err := c.ExchangeContext(ctx, m, srv)
	if err != nil {
		return nil, err
	}
	// RFC 6891 §7: a server that does not know EDNS answers FORMERR (or
	// NOTIMP) without an OPT record; ask it again without EDNS.
	if (resp.Rcode == dns.RcodeFormatError || resp.Rcode == dns.RcodeNotImplemented) && resp.IsEdns0() == nil {
		plain := m.Copy()
		plain.Extra = nil
		r.nExchanges.Add(1)
		if resp, _, err = c.ExchangeContext(ctx, plain, srv); err != nil {
			return nil, fmt.Errorf("without EDNS0 after a FORMERR: %w", err)
		}
		m = plain
	}
	if !resp.Truncated {
		return resp, nil
	}
	r.nTCP.Add(1)
	r.nExchanges.Add(1)
	c.Net = "tcp"
	resp, _, err = c.ExchangeContext(ctx, m, srv)
	if err != nil {
		return nil, fmt.Errorf("over TCP after a truncated UDP answer: %w", err)
	}
	return resp, nil
}

// rcodeError is a reply whose rcode is neither NOERROR nor NXDOMAIN.
type rcodeError struct{ rcode int }

func (e rcodeError) Error() string { return "rcode " + dns.RcodeToString[e.rcode] }

// errBadReply is a reply that does not answer our question.
var errBadReply = errors.New("reply does not match the question")

func checkReply(q, resp *dns.Msg) error {
	if len(resp.Question) != 1 || resp.Question[0].Qtype != q.Question[0].Qtype ||
		!strings.EqualFold(resp.Question[0].Name, q.Question[0].Name) || !resp.Response {
		return errBadReply
	}
	if resp.Rcode != dns.RcodeSuccess && resp.Rcode != dns.RcodeNameError {
		return rcodeError{resp.Rcode}
	}
	return nil
}

// soaTTL returns the negative-caching TTL of a reply: min(SOA TTL, SOA
// MINIMUM) of the SOA in the authority section (RFC 2308 §5), or -1.
func soaTTL(m *dns.Msg) time.Duration {
	for _, rr := range m.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			return time.Duration(min(soa.Hdr.Ttl, soa.Minttl)) * time.Second
		}
	}
	return -1
}

// serverError turns what one server did into an Error for people.
func (r *Resolver) serverError(srv, q string, err error) *Error {
	e := &Error{Server: srv, Err: err, temp: true}
	var rc rcodeError
	var ne net.Error
	switch {
	case errors.As(err, &rc) && rc.rcode == dns.RcodeRefused:
		e.Kind = FailureRefused
		e.msg = fmt.Sprintf("DNS server %s refused to answer %s (REFUSED: it does not serve this machine)", srv, q)
	case errors.As(err, &rc):
		e.Kind = FailureServFail
		e.msg = fmt.Sprintf("DNS server %s could not resolve %s (%s: the domain's own DNS servers may be down or misconfigured)", srv, q, dns.RcodeToString[rc.rcode])
	case errors.Is(err, errBadReply):
		e.Kind = FailureServFail
		e.msg = fmt.Sprintf("DNS server %s sent a reply that does not answer %s", srv, q)
	case errors.Is(err, syscall.ECONNREFUSED):
		// ICMP port unreachable on UDP (or RST on TCP): nothing listens.
		e.Kind = FailureRefused
		e.msg = fmt.Sprintf("DNS server %s refused the connection for %s (nothing listens on port %s there)", srv, q, portOf(srv))
	case errors.As(err, &ne) && ne.Timeout():
		e.Kind = FailureTimeout
		e.msg = fmt.Sprintf("DNS server %s did not answer (timeout after %s) for %s", srv, r.timeout, q)
	default:
		// No route, network unreachable, a garbled reply: no usable
		// answer reached us, which to the user is the same as silence.
		e.Kind = FailureTimeout
		e.msg = fmt.Sprintf("DNS server %s could not be reached for %s: %v", srv, q, err)
	}
	return e
}

func portOf(hostport string) string {
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return "53"
	}
	return p
}
