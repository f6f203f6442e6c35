// Package dmarc finds and reads a From domain's DMARC policy (RFC 7489)
// and tells whether a DKIM or SPF domain is aligned with the From domain.
//
// Place in the flow: the doctor's sender checks -> dmarc.Lookup(From
// domain) -> a *Record (policy, pct, rua, alignment modes) -> Aligned for
// the DKIM d= and the return path's domain -> findings and verdicts.
package dmarc

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/net/publicsuffix"

	"mailout/internal/mx"
)

// Sentinels of Lookup and Parse.
var (
	ErrNoRecord = errors.New("dmarc: no DMARC record")
	ErrSyntax   = errors.New("dmarc: record syntax error")
	ErrMultiple = errors.New("dmarc: several DMARC records")
	ErrDNS      = errors.New("dmarc: DNS lookup failed")
)

// Record is a parsed DMARC record.
type Record struct {
	// Domain is where the record was found: the From domain or its
	// organisational domain (RFC 7489 §6.6.3).
	Domain string
	// Raw is the record's text.
	Raw string
	// Policy is p= (none, quarantine, reject); SubPolicy sp= (the
	// policy for subdomains; = Policy when absent).
	Policy, SubPolicy string
	// Pct is pct= (0-100, default 100).
	Pct int
	// RUA are the aggregate report addresses of rua=.
	RUA []string
	// StrictDKIM and StrictSPF are adkim=s and aspf=s (default relaxed).
	StrictDKIM, StrictSPF bool
}

// PolicyFor returns the policy that applies to mail From fromDomain:
// sp= when the record is the organisational domain's and fromDomain is a
// subdomain of it (RFC 7489 §6.3).
func (r *Record) PolicyFor(fromDomain string) string {
	if !strings.EqualFold(fromDomain, r.Domain) {
		return r.SubPolicy
	}
	return r.Policy
}

// Parse parses a DMARC record (RFC 7489 §6.3, §6.4): v=DMARC1 first, a
// valid p=, and the tags mailout reads checked; unknown tags are ignored.
func Parse(s string) (*Record, error) {
	r := &Record{Raw: s, Pct: 100}
	var parts []string
	for _, p := range strings.Split(s, ";") {
		if p = strings.TrimSpace(p); p != "" {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 || strings.ReplaceAll(parts[0], " ", "") != "v=DMARC1" {
		return nil, fmt.Errorf("%w: it must start with v=DMARC1", ErrSyntax)
	}
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return nil, fmt.Errorf("%w: %q is not tag=value", ErrSyntax, p)
		}
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		switch k {
		case "p", "sp":
			v = strings.ToLower(v)
			if v != "none" && v != "quarantine" && v != "reject" {
				return nil, fmt.Errorf("%w: %s=%s is not none, quarantine or reject", ErrSyntax, k, v)
			}
			if k == "p" {
				r.Policy = v
			} else {
				r.SubPolicy = v
			}
		case "pct":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 100 {
				return nil, fmt.Errorf("%w: pct=%s is not 0 to 100", ErrSyntax, v)
			}
			r.Pct = n
		case "rua":
			for _, u := range strings.Split(v, ",") {
				if u = strings.TrimSpace(u); u != "" {
					r.RUA = append(r.RUA, u)
				}
			}
		case "adkim", "aspf":
			v = strings.ToLower(v)
			if v != "r" && v != "s" {
				return nil, fmt.Errorf("%w: %s=%s is not r or s", ErrSyntax, k, v)
			}
			if k == "adkim" {
				r.StrictDKIM = v == "s"
			} else {
				r.StrictSPF = v == "s"
			}
		}
	}
	if r.Policy == "" {
		// RFC 7489 §6.6.3 step 6 lets a receiver read a record without
		// p= as p=none only when rua= is valid; a sender must not rely
		// on it.
		return nil, fmt.Errorf("%w: the record has no p= tag", ErrSyntax)
	}
	if r.SubPolicy == "" {
		r.SubPolicy = r.Policy
	}
	return r, nil
}

// OrgDomain returns the organisational domain of d: the registrable
// domain under the public suffix list (RFC 7489 §3.2), or d itself.
func OrgDomain(d string) string {
	d = strings.ToLower(strings.TrimSuffix(d, "."))
	if o, err := publicsuffix.EffectiveTLDPlusOne(d); err == nil {
		return o
	}
	return d
}

// Aligned reports whether domain a is aligned with the From domain
// (RFC 7489 §3.1): the same name in strict mode, the same organisational
// domain in relaxed mode.
func Aligned(from, a string, strict bool) bool {
	from, a = strings.ToLower(strings.TrimSuffix(from, ".")), strings.ToLower(strings.TrimSuffix(a, "."))
	if from == "" || a == "" {
		return false
	}
	if strict {
		return from == a
	}
	return OrgDomain(from) == OrgDomain(a)
}

// Lookup finds the DMARC record for mail From fromDomain: at
// _dmarc.fromDomain, else at _dmarc of its organisational domain
// (RFC 7489 §6.6.3). It returns ErrNoRecord, ErrMultiple or ErrSyntax
// (wrapped), or ErrDNS wrapping the resolver's *mx.Error.
func Lookup(ctx context.Context, r *mx.Resolver, fromDomain string) (*Record, error) {
	fromDomain = strings.ToLower(strings.TrimSuffix(fromDomain, "."))
	rec, err := lookupAt(ctx, r, fromDomain)
	if errors.Is(err, ErrNoRecord) {
		if org := OrgDomain(fromDomain); org != fromDomain {
			return lookupAt(ctx, r, org)
		}
	}
	return rec, err
}

func lookupAt(ctx context.Context, r *mx.Resolver, domain string) (*Record, error) {
	name := "_dmarc." + domain
	txts, err := r.LookupTXT(ctx, name)
	var me *mx.Error
	if errors.As(err, &me) && (me.Kind == mx.FailureNXDomain || me.Kind == mx.FailureNoData) {
		return nil, fmt.Errorf("%w at %s", ErrNoRecord, name)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDNS, err)
	}
	var recs []string
	for _, t := range txts {
		// RFC 7489 §6.6.3: records not starting with v=DMARC1 are ignored.
		if strings.HasPrefix(strings.TrimSpace(t), "v=DMARC1") {
			recs = append(recs, t)
		}
	}
	switch len(recs) {
	case 0:
		return nil, fmt.Errorf("%w at %s", ErrNoRecord, name)
	case 1:
	default:
		// RFC 7489 §6.6.3: several records mean no policy applies.
		return nil, fmt.Errorf("%w: %d at %s", ErrMultiple, len(recs), name)
	}
	rec, err := Parse(recs[0])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	rec.Domain = domain
	return rec, nil
}
