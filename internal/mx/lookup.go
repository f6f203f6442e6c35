package mx

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// Host is one destination of a recipient domain.
type Host struct {
	// Name is the host name, lower case, without the trailing dot.
	Name string
	// Pref is the MX preference (0 for an implicit MX).
	Pref int
	// Addrs are the host's addresses, IPv4 (A) first, then IPv6 (AAAA),
	// each in the order the DNS server gave them; prohibited addresses
	// are already removed.
	Addrs []netip.Addr
	// Implicit: the domain has no MX record and Name is the domain
	// itself (RFC 5321 §5.1).
	Implicit bool
}

// Lookup returns the hosts to try for a recipient domain, in order
// (RFC 5321 §5.1): lowest preference first, equal preferences in random
// order; each with its addresses. The domain is an A-label (IDNA is done by
// the caller). Errors are *Error, except when ctx ends first.
//
// No MX record: the domain's own A/AAAA is an implicit MX. A SERVFAIL or
// timeout on the MX question is returned as is and never falls back to the
// A record: a broken DNS is not an absent MX. Hosts that do not resolve
// are skipped; prohibited addresses are removed.
func (r *Resolver) Lookup(ctx context.Context, domain string) ([]Host, error) {
	name, err := normalize(domain)
	if err != nil {
		return nil, err
	}
	d := strings.TrimSuffix(name, ".")
	ans, err := r.resolve(ctx, name, dns.TypeMX)
	if err != nil {
		return nil, withDomain(err, d)
	}
	if ans.nx {
		return nil, &Error{Domain: d, Server: ans.server, Kind: FailureNXDomain, QType: "MX", Name: d,
			msg: fmt.Sprintf("domain %s does not exist (NXDOMAIN from DNS server %s)", d, ans.server)}
	}
	if len(ans.rrs) == 0 {
		return r.implicitMX(ctx, name, d)
	}

	var mxs []*dns.MX
	for _, rr := range ans.rrs {
		if mx, ok := rr.(*dns.MX); ok {
			mxs = append(mxs, mx)
		}
	}
	// RFC 7505 §3: a null MX is a single MX record with an empty target
	// ("."), preference 0. A domain that publishes it accepts no mail;
	// the sender must not try the A record (§4) and fails at once.
	if len(mxs) == 1 && mxs[0].Mx == "." {
		return nil, &Error{Domain: d, Server: ans.server, Kind: FailureNullMX, QType: "MX", Name: d,
			msg: fmt.Sprintf("domain %s does not accept mail (it publishes a null MX, RFC 7505)", d)}
	}
	hosts := r.order(mxs)
	if len(hosts) == 0 { // only "." targets among several records: RFC 7505 §3 forbids it; treat as null MX
		return nil, &Error{Domain: d, Server: ans.server, Kind: FailureNullMX, QType: "MX", Name: d,
			msg: fmt.Sprintf("domain %s does not accept mail (its MX records all point to \".\", RFC 7505)", d)}
	}
	return r.resolveHosts(ctx, d, hosts)
}

// order sorts MX records by preference and shuffles equal preferences
// (RFC 5321 §5.1: "If there are multiple destinations with the same
// preference and there is no clear reason to favor one ..., then the
// sender-SMTP MUST randomize them to spread the load"). Targets "." are
// dropped (RFC 7505 §3 forbids mixing them with other MX records), and a
// host listed twice is kept at its lowest preference.
func (r *Resolver) order(mxs []*dns.MX) []Host {
	var hosts []Host
	for _, mx := range mxs {
		if mx.Mx == "." {
			continue
		}
		hosts = append(hosts, Host{Name: strings.TrimSuffix(strings.ToLower(mx.Mx), "."), Pref: int(mx.Preference)})
	}
	slices.SortStableFunc(hosts, func(a, b Host) int { return cmp.Compare(a.Pref, b.Pref) })
	seen := map[string]bool{}
	hosts = slices.DeleteFunc(hosts, func(h Host) bool {
		dup := seen[h.Name]
		seen[h.Name] = true
		return dup
	})
	for i := 0; i < len(hosts); {
		j := i + 1
		for j < len(hosts) && hosts[j].Pref == hosts[i].Pref {
			j++
		}
		group := hosts[i:j]
		for k := len(group) - 1; k > 0; k-- { // Fisher-Yates
			l := r.rand(k + 1)
			group[k], group[l] = group[l], group[k]
		}
		i = j
	}
	if len(hosts) > maxMXHosts {
		hosts = hosts[:maxMXHosts]
	}
	return hosts
}

// implicitMX handles a domain without MX records: RFC 5321 §5.1 "If an
// empty list of MXs is returned, the address is treated as if it was
// associated with an implicit MX RR, with a preference of 0, pointing to
// that host."
func (r *Resolver) implicitMX(ctx context.Context, name, d string) ([]Host, error) {
	h := r.hostAddrs(ctx, name)
	switch {
	case len(h.addrs) > 0:
	case h.err != nil:
		return nil, withDomain(h.err, d)
	case h.nx:
		return nil, &Error{Domain: d, Server: h.server, Kind: FailureNXDomain, QType: "A", Name: d,
			msg: fmt.Sprintf("domain %s does not exist (NXDOMAIN from DNS server %s)", d, h.server)}
	default:
		return nil, &Error{Domain: d, Server: h.server, Kind: FailureNoData, QType: "MX", Name: d,
			msg: fmt.Sprintf("domain %s has no MX, A or AAAA record: it does not receive mail", d)}
	}
	addrs, bad := r.allowed(h.addrs)
	if len(addrs) == 0 {
		return nil, r.prohibitedError(d, d, bad)
	}
	return []Host{{Name: d, Pref: 0, Addrs: addrs, Implicit: true}}, nil
}

// resolveHosts resolves every MX host (concurrently) and keeps the usable
// ones in order. When none is usable it reports, in this order: a
// temporary DNS failure on a host (the domain may be fine once it
// resolves), a prohibited destination, or hosts without addresses
// (temporary: the receiver's DNS may be fixed).
func (r *Resolver) resolveHosts(ctx context.Context, d string, hosts []Host) ([]Host, error) {
	res := make([]hostResult, len(hosts))
	cached := true
	for _, h := range hosts {
		cached = cached && r.fresh(dns.Fqdn(h.Name), dns.TypeA) && r.fresh(dns.Fqdn(h.Name), dns.TypeAAAA)
	}
	if cached { // the common case in a campaign: no goroutines needed
		for i := range hosts {
			res[i] = r.hostAddrs(ctx, dns.Fqdn(hosts[i].Name))
		}
	} else {
		var wg sync.WaitGroup
		for i := range hosts {
			wg.Go(func() { res[i] = r.hostAddrs(ctx, dns.Fqdn(hosts[i].Name)) })
		}
		wg.Wait()
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("mx: MX hosts of %s: %w", d, err)
	}
	var (
		out     []Host
		tempErr error
		bad     netip.Addr
		badHost string
	)
	for i, h := range hosts {
		if res[i].err != nil && tempErr == nil {
			tempErr = res[i].err
		}
		addrs, prohibited := r.allowed(res[i].addrs)
		if prohibited.IsValid() && !bad.IsValid() {
			bad, badHost = prohibited, h.Name
		}
		if len(addrs) > 0 {
			h.Addrs = addrs
			out = append(out, h)
		}
	}
	switch {
	case len(out) > 0:
		return out, nil
	case tempErr != nil:
		err := withDomain(tempErr, d)
		var e *Error
		if errors.As(err, &e) {
			e.Host = e.Name
			e.msg += fmt.Sprintf(" (a mail server of %s)", d)
		}
		return nil, err
	case bad.IsValid():
		return nil, r.prohibitedError(d, badHost, bad)
	}
	names := make([]string, len(hosts))
	for i, h := range hosts {
		names[i] = h.Name
	}
	return nil, &Error{Domain: d, Kind: FailureMXNoAddress, QType: "A", Name: hosts[0].Name, Host: hosts[0].Name, temp: true,
		msg: fmt.Sprintf("none of the mail servers of %s (%s) has an address: no A or AAAA record, or the name does not exist",
			d, strings.Join(names, ", "))}
}

// allowed removes prohibited addresses; it returns the rest and the first
// one removed.
func (r *Resolver) allowed(addrs []netip.Addr) (ok []netip.Addr, bad netip.Addr) {
	for _, a := range addrs {
		if IsProhibited(a, r.allowLoopback) {
			if !bad.IsValid() {
				bad = a
			}
			continue
		}
		ok = append(ok, a)
	}
	return ok, bad
}

func (r *Resolver) prohibitedError(d, host string, a netip.Addr) *Error {
	msg := fmt.Sprintf("mail server %s of %s resolves to %s, %s: refusing to deliver there (prohibited destination)",
		host, d, a, prohibitedReason(a))
	if !r.allowLoopback && !IsProhibited(a, true) {
		msg += "; the lab setting --allow-loopback-mx allows loopback and private addresses"
	}
	return &Error{Domain: d, Kind: FailureProhibited, Name: host, Host: host, Addr: a, msg: msg}
}

// LookupHost returns the addresses (A, then AAAA) of a host name, such as a
// relay's. An IP address is returned as is. Unlike Lookup it does not
// refuse loopback or private addresses: a relay is chosen by the user (a
// local Postfix on 127.0.0.1 is a normal relay). Errors are *Error.
func (r *Resolver) LookupHost(ctx context.Context, name string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(strings.Trim(name, "[]")); err == nil {
		return []netip.Addr{a}, nil
	}
	fq, err := normalize(name)
	if err != nil {
		return nil, err
	}
	d := strings.TrimSuffix(fq, ".")
	h := r.hostAddrs(ctx, fq)
	switch {
	case len(h.addrs) > 0:
		return h.addrs, nil
	case h.err != nil:
		return nil, withDomain(h.err, d)
	case h.nx:
		return nil, &Error{Domain: d, Server: h.server, Kind: FailureNXDomain, QType: "A", Name: d,
			msg: fmt.Sprintf("host %s does not exist (NXDOMAIN from DNS server %s)", d, h.server)}
	}
	return nil, &Error{Domain: d, Server: h.server, Kind: FailureNoData, QType: "A", Name: d,
		msg: fmt.Sprintf("host %s has no A or AAAA record", d)}
}

// hostResult is what A and AAAA said about one name: addresses, or
// nothing (nx: the name does not exist), or a temporary failure.
type hostResult struct {
	addrs  []netip.Addr
	nx     bool
	err    error // temporary failure (timeout, refused, servfail) or ctx
	server string
}

// hostAddrs asks A and AAAA at once. One family answering is enough; a
// failure of the other is then ignored.
func (r *Resolver) hostAddrs(ctx context.Context, fq string) hostResult {
	var a4, a6 answer
	var e4, e6 error
	if r.fresh(fq, dns.TypeA) && r.fresh(fq, dns.TypeAAAA) {
		a4, e4 = r.resolve(ctx, fq, dns.TypeA)
		a6, e6 = r.resolve(ctx, fq, dns.TypeAAAA)
	} else {
		var wg sync.WaitGroup
		wg.Go(func() { a4, e4 = r.resolve(ctx, fq, dns.TypeA) })
		wg.Go(func() { a6, e6 = r.resolve(ctx, fq, dns.TypeAAAA) })
		wg.Wait()
	}
	var h hostResult
	for _, rr := range a4.rrs {
		if a, ok := netip.AddrFromSlice(rr.(*dns.A).A.To4()); ok {
			h.addrs = append(h.addrs, a)
		}
	}
	for _, rr := range a6.rrs {
		if a, ok := netip.AddrFromSlice(rr.(*dns.AAAA).AAAA.To16()); ok {
			h.addrs = append(h.addrs, a)
		}
	}
	if len(h.addrs) > 0 {
		return h
	}
	h.server = cmp.Or(a4.server, a6.server)
	switch {
	case e4 != nil:
		h.err = e4
	case e6 != nil:
		h.err = e6
	default:
		h.nx = a4.nx || a6.nx
	}
	return h
}

// answer is the outcome of one question after following CNAMEs.
type answer struct {
	rrs    []dns.RR // records of the asked type (at the end of the chain)
	nx     bool     // NXDOMAIN for the (last) name
	server string
}

// resolve asks one question and follows CNAMEs, within the answer (a
// recursive server includes the chain) and, when the chain ends on a name
// the answer says nothing more about, by asking again for that name.
// Chains are bounded (maxCNAME) and loops detected; an MX
// target that is a CNAME is tolerated although RFC 2181 §10.3 forbids it.
// Failures are *Error (with a copy per caller) or the ctx error.
func (r *Resolver) resolve(ctx context.Context, name string, qtype uint16) (answer, error) {
	cur := name
	var seen map[string]bool // names of the chain, made on the first CNAME
	hops := 0
	for {
		e, err := r.query(ctx, cur, qtype)
		if err != nil {
			return answer{}, err
		}
		if e.err != nil {
			cp := *e.err
			return answer{}, &cp
		}
		asked := cur
		for {
			var recs []dns.RR
			target := ""
			for _, rr := range e.answer {
				h := rr.Header()
				if !strings.EqualFold(h.Name, cur) || h.Class != dns.ClassINET {
					continue
				}
				if h.Rrtype == qtype {
					recs = append(recs, rr)
				} else if c, ok := rr.(*dns.CNAME); ok && target == "" {
					target = strings.ToLower(c.Target)
				}
			}
			if len(recs) > 0 {
				return answer{rrs: recs, server: e.server}, nil
			}
			if target == "" {
				break
			}
			hops++
			if seen == nil {
				seen = map[string]bool{name: true}
			}
			if hops > maxCNAME || seen[target] {
				what := "a CNAME loop"
				if !seen[target] {
					what = fmt.Sprintf("a CNAME chain longer than %d", maxCNAME)
				}
				n := strings.TrimSuffix(name, ".")
				return answer{}, &Error{Server: e.server, Kind: FailureServFail, QType: dns.TypeToString[qtype], Name: n, temp: true,
					msg: fmt.Sprintf("%s %s leads to %s (at %s): the domain's DNS is misconfigured",
						dns.TypeToString[qtype], n, what, strings.TrimSuffix(target, "."))}
			}
			seen[target] = true
			cur = target
		}
		// RFC 6604 §3: the rcode applies to the last name of the chain.
		if cur == asked || e.rcode == dns.RcodeNameError {
			return answer{nx: e.rcode == dns.RcodeNameError, server: e.server}, nil
		}
		// NOERROR, chain followed to a name without records in this
		// answer: ask for that name itself.
	}
}

// normalize returns the lower-case FQDN of a domain or host name.
func normalize(s string) (string, error) {
	d := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
	if d == "" {
		return "", errors.New("mx: empty domain name")
	}
	if _, ok := dns.IsDomainName(d); !ok || strings.Contains(d, "..") {
		return "", fmt.Errorf("mx: %q is not a domain name", s)
	}
	return d + ".", nil
}

// withDomain returns a copy of a *Error with Domain set; other errors
// (ctx) are wrapped.
func withDomain(err error, d string) error {
	var e *Error
	if errors.As(err, &e) {
		cp := *e
		cp.Domain = d
		return &cp
	}
	return fmt.Errorf("mx: %s: %w", d, err)
}
