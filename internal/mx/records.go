package mx

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// The lookups below serve the doctor's sender checks (SPF, DKIM, DMARC,
// reverse DNS) with the same DNS servers, cache and typed failures as
// Lookup. A name that does not exist is a *Error of Kind FailureNXDomain,
// a name without records of the type one of Kind FailureNoData: SPF counts
// both as void lookups (RFC 7208 §4.6.4).

// LookupTXT returns the TXT records of name, each one's
// character-strings joined without a separator (RFC 7208 §3.3,
// RFC 6376 §3.6.2.2), in the order the server gave them.
func (r *Resolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	rrs, err := r.records(ctx, name, dns.TypeTXT)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		out = append(out, strings.Join(rr.(*dns.TXT).Txt, ""))
	}
	return out, nil
}

// LookupMXNames returns the host names of name's MX records, lowest
// preference first, without resolving them, without the implicit MX and
// without refusing any address: what SPF's mx mechanism needs
// (RFC 7208 §5.4).
func (r *Resolver) LookupMXNames(ctx context.Context, name string) ([]string, error) {
	rrs, err := r.records(ctx, name, dns.TypeMX)
	if err != nil {
		return nil, err
	}
	mxs := make([]*dns.MX, 0, len(rrs))
	for _, rr := range rrs {
		mxs = append(mxs, rr.(*dns.MX))
	}
	slices.SortStableFunc(mxs, func(a, b *dns.MX) int { return int(a.Preference) - int(b.Preference) })
	out := make([]string, 0, len(mxs))
	for _, m := range mxs {
		out = append(out, strings.TrimSuffix(strings.ToLower(m.Mx), "."))
	}
	return out, nil
}

// LookupPTR returns the names an address points to (reverse DNS), without
// the trailing dot.
func (r *Resolver) LookupPTR(ctx context.Context, a netip.Addr) ([]string, error) {
	arpa, err := dns.ReverseAddr(a.Unmap().String())
	if err != nil {
		return nil, fmt.Errorf("mx: reverse name of %s: %w", a, err)
	}
	rrs, err := r.records(ctx, arpa, dns.TypePTR)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		out = append(out, strings.TrimSuffix(strings.ToLower(rr.(*dns.PTR).Ptr), "."))
	}
	return out, nil
}

// records asks one question (following CNAMEs) and turns "no such name"
// and "no records" into typed errors.
func (r *Resolver) records(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	fq, err := normalize(name)
	if err != nil {
		return nil, err
	}
	d := strings.TrimSuffix(fq, ".")
	a, err := r.resolve(ctx, fq, qtype)
	if err != nil {
		return nil, withDomain(err, d)
	}
	t := dns.TypeToString[qtype]
	switch {
	case len(a.rrs) > 0:
		return a.rrs, nil
	case a.nx:
		return nil, &Error{Domain: d, Server: a.server, Kind: FailureNXDomain, QType: t, Name: d,
			msg: fmt.Sprintf("%s does not exist (NXDOMAIN from DNS server %s)", d, a.server)}
	}
	return nil, &Error{Domain: d, Server: a.server, Kind: FailureNoData, QType: t, Name: d,
		msg: fmt.Sprintf("%s has no %s record", d, t)}
}
