// Package spf evaluates a domain's SPF policy (RFC 7208) for one sending
// address: does the domain authorise this IP address to send its mail?
//
// Place in the flow: the doctor's sender checks -> spf.Evaluate(Check) ->
// an Outcome (the result, the matching mechanism, the lookups it cost, the
// deprecated ptr seen) -> a finding and, when it is not a pass, a verdict
// with advice. DNS goes through mx.Resolver: the servers the user chose.
//
// Written to the RFC rather than taken from a library: the doctor needs
// more than a result (the number of DNS lookups and void lookups, which
// mechanism matched, whether ptr or %{p} is used) and the DNS servers of
// --dns with their typed failures; the SPF libraries for Go return a
// result and an error only, on the system's resolver.
package spf

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"mailout/internal/mx"
)

// Result is an SPF result (RFC 7208 §2.6).
type Result string

// The results.
const (
	None      Result = "none"
	Neutral   Result = "neutral"
	Pass      Result = "pass"
	Fail      Result = "fail"
	SoftFail  Result = "softfail"
	TempError Result = "temperror"
	PermError Result = "permerror"
)

// Limits of RFC 7208 §4.6.4.
const (
	// MaxLookups bounds the terms that cause DNS queries (include, a,
	// mx, ptr, exists, redirect) over the whole evaluation.
	MaxLookups = 10
	// MaxVoidLookups bounds the DNS queries that find nothing.
	MaxVoidLookups = 2
	// maxNames bounds the MX names of one mx term and the PTR names of
	// one ptr term (or %{p}).
	maxNames = 10
)

// Sentinels of a permerror or temperror; Outcome.Err wraps one.
var (
	ErrTooManyLookups  = errors.New("spf: more than 10 DNS lookups")
	ErrTooManyVoid     = errors.New("spf: more than 2 void DNS lookups")
	ErrSyntax          = errors.New("spf: record syntax error")
	ErrMultipleRecords = errors.New("spf: several SPF records")
	ErrIncludeNone     = errors.New("spf: include or redirect target has no SPF record")
	ErrTooManyNames    = errors.New("spf: more than 10 MX or PTR names")
	ErrDNS             = errors.New("spf: DNS lookup failed")
)

// Check is what to evaluate: the sending address, the envelope sender
// (MAIL FROM; "postmaster@" the HELO name when it is empty, RFC 7208 §2.4)
// and the HELO name.
type Check struct {
	IP     netip.Addr
	Sender string
	HELO   string
}

// Outcome is the evaluation of one Check.
type Outcome struct {
	Result Result
	// Domain is the domain whose policy was evaluated; Record its SPF
	// record ("" when none).
	Domain, Record string
	// Mechanism is the term that decided ("-all", "ip4:192.0.2.0/24",
	// "include:_spf.example.net"), or "" (default neutral, errors).
	Mechanism string
	// Lookups and Voids are the DNS-querying terms and the void lookups
	// counted, as RFC 7208 §4.6.4 limits them.
	Lookups, Voids int
	// PTR reports that a ptr mechanism or a %{p} macro was evaluated:
	// RFC 7208 §5.5 asks not to use them.
	PTR bool
	// Explanation is the expanded exp= text of a fail, if any.
	Explanation string
	// Err says why the result is permerror or temperror; it wraps one
	// of the sentinels (and the *mx.Error of a DNS failure).
	Err error
}

// Evaluate runs check_host() (RFC 7208 §4) for the sender's domain.
func Evaluate(ctx context.Context, r *mx.Resolver, c Check) Outcome {
	local, domain, ok := strings.Cut(c.Sender, "@")
	if !ok || c.Sender == "" {
		// RFC 7208 §2.4: an empty MAIL FROM is checked as postmaster@HELO.
		local, domain = "postmaster", c.HELO
	}
	if local == "" {
		local = "postmaster" // RFC 7208 §4.3
	}
	e := &eval{ctx: ctx, r: r, c: c, local: local, senderDomain: strings.ToLower(strings.TrimSuffix(domain, "."))}
	o := Outcome{Domain: e.senderDomain}
	res, mech, rec, err := e.checkHost(e.senderDomain, 0)
	o.Result, o.Mechanism, o.Record, o.Err = res, mech, rec, err
	o.Lookups, o.Voids, o.PTR, o.Explanation = e.lookups, e.voids, e.ptr, e.explanation
	return o
}

type eval struct {
	ctx          context.Context
	r            *mx.Resolver
	c            Check
	local        string
	senderDomain string
	lookups      int
	voids        int
	ptr          bool
	explanation  string
}

// spfError is a permerror or temperror with its cause.
type spfError struct {
	result Result
	err    error
}

func (e *spfError) Error() string { return e.err.Error() }
func (e *spfError) Unwrap() error { return e.err }

func permErr(sentinel error, format string, args ...any) error {
	return &spfError{PermError, fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)}
}

func resultOf(err error) Result {
	var se *spfError
	if errors.As(err, &se) {
		return se.result
	}
	return TempError // ctx and DNS failures
}

// isVoid reports a lookup that found nothing (RFC 7208 §4.6.4).
func isVoid(err error) bool {
	var me *mx.Error
	return errors.As(err, &me) && (me.Kind == mx.FailureNXDomain || me.Kind == mx.FailureNoData)
}

// dnsErr turns a failed lookup that is not void into a temperror.
func dnsErr(err error) error {
	return &spfError{TempError, fmt.Errorf("%w: %w", ErrDNS, err)}
}

// count counts one DNS-querying term (RFC 7208 §4.6.4).
func (e *eval) count() error {
	e.lookups++
	if e.lookups > MaxLookups {
		return permErr(ErrTooManyLookups, "the policy needs %d or more DNS lookups; receivers stop at %d (RFC 7208 §4.6.4)", e.lookups, MaxLookups)
	}
	return nil
}

// void counts a lookup that found nothing (RFC 7208 §4.6.4).
func (e *eval) void() error {
	e.voids++
	if e.voids > MaxVoidLookups {
		return permErr(ErrTooManyVoid, "%d DNS lookups found nothing; receivers stop after %d (RFC 7208 §4.6.4)", e.voids, MaxVoidLookups)
	}
	return nil
}

// record fetches the one SPF record of domain (RFC 7208 §4.5).
func (e *eval) record(domain string) (string, error) {
	txts, err := e.r.LookupTXT(e.ctx, domain)
	if isVoid(err) {
		return "", nil
	}
	if err != nil {
		return "", dnsErr(err)
	}
	var recs []string
	for _, t := range txts {
		// RFC 7208 §4.5: "v=spf1" exactly, then a space or the end.
		if len(t) >= 6 && strings.EqualFold(t[:6], "v=spf1") && (len(t) == 6 || t[6] == ' ') {
			recs = append(recs, t)
		}
	}
	switch len(recs) {
	case 0:
		return "", nil
	case 1:
		return recs[0], nil
	}
	return "", permErr(ErrMultipleRecords, "%s has %d SPF records; it must have one (RFC 7208 §3.2)", domain, len(recs))
}

// checkHost is check_host(ip, domain, sender) of RFC 7208 §4; it returns
// the result, the deciding term and domain's record.
func (e *eval) checkHost(domain string, depth int) (Result, string, string, error) {
	if err := e.ctx.Err(); err != nil {
		return TempError, "", "", err
	}
	// RFC 7208 §4.3: a domain that is not a multi-label name gives none.
	if !validDomain(domain) {
		return None, "", "", nil
	}
	rec, err := e.record(domain)
	if err != nil {
		return resultOf(err), "", "", err
	}
	if rec == "" {
		return None, "", "", nil
	}
	terms, redirect, exp, err := parse(rec)
	if err != nil {
		return PermError, "", rec, err
	}
	for _, t := range terms {
		match, err := e.match(t, domain, depth)
		if err != nil {
			return resultOf(err), t.text, rec, err
		}
		if match {
			res := t.result()
			if res == Fail && exp != "" && depth == 0 {
				e.explanation = e.explain(exp, domain)
			}
			return res, t.text, rec, nil
		}
	}
	if redirect != "" {
		// RFC 7208 §6.1: redirect counts as a lookup; a target without
		// a record is a permerror.
		if err := e.count(); err != nil {
			return PermError, "redirect=" + redirect, rec, err
		}
		target, err := e.expand(redirect, domain, false)
		if err != nil {
			return PermError, "redirect=" + redirect, rec, err
		}
		res, mech, _, err := e.checkHost(target, depth+1)
		if res == None {
			return PermError, "redirect=" + redirect, rec, permErr(ErrIncludeNone, "redirect=%s: %s has no SPF record", redirect, target)
		}
		if mech == "" {
			mech = "redirect=" + redirect
		}
		return res, mech, rec, err
	}
	return Neutral, "", rec, nil // RFC 7208 §4.7
}

// match evaluates one mechanism (RFC 7208 §5).
func (e *eval) match(t term, domain string, depth int) (bool, error) {
	target := domain
	if t.spec != "" {
		var err error
		if target, err = e.expand(t.spec, domain, false); err != nil {
			return false, err
		}
	}
	switch t.name {
	case "all":
		return true, nil
	case "ip4", "ip6":
		return t.prefix.Contains(e.c.IP.Unmap()), nil
	case "include":
		if err := e.count(); err != nil {
			return false, err
		}
		// RFC 7208 §5.2: pass matches; fail, softfail, neutral do not;
		// none is a permerror; errors propagate.
		res, _, _, err := e.checkHost(target, depth+1)
		switch res {
		case Pass:
			return true, nil
		case Fail, SoftFail, Neutral:
			return false, nil
		case None:
			return false, permErr(ErrIncludeNone, "include:%s: %s has no SPF record", t.spec, target)
		}
		return false, err
	case "a":
		if err := e.count(); err != nil {
			return false, err
		}
		return e.addrMatch(target, t)
	case "mx":
		if err := e.count(); err != nil {
			return false, err
		}
		names, err := e.r.LookupMXNames(e.ctx, target)
		if isVoid(err) {
			return false, e.void()
		}
		if err != nil {
			return false, dnsErr(err)
		}
		// RFC 7208 §4.6.4: more than 10 MX names is a permerror.
		if len(names) > maxNames {
			return false, permErr(ErrTooManyNames, "mx:%s has %d MX records; at most %d are allowed", target, len(names), maxNames)
		}
		for _, n := range names {
			if ok, err := e.addrMatch(n, t); ok || err != nil {
				return ok, err
			}
		}
		return false, nil
	case "ptr":
		if err := e.count(); err != nil {
			return false, err
		}
		e.ptr = true
		for _, n := range e.validatedNames() {
			if n == target || strings.HasSuffix(n, "."+target) {
				return true, nil
			}
		}
		return false, nil
	case "exists":
		if err := e.count(); err != nil {
			return false, err
		}
		// RFC 7208 §5.7: an A query, whatever the address family.
		addrs, err := e.r.LookupHost(e.ctx, target)
		if isVoid(err) {
			return false, e.void()
		}
		if err != nil {
			return false, dnsErr(err)
		}
		for _, a := range addrs {
			if a.Is4() {
				return true, nil
			}
		}
		return false, nil
	}
	return false, permErr(ErrSyntax, "unknown mechanism %q", t.name)
}

// addrMatch looks up a host's addresses and compares them with the
// sending address under the term's CIDR lengths (RFC 7208 §5.3).
func (e *eval) addrMatch(host string, t term) (bool, error) {
	addrs, err := e.r.LookupHost(e.ctx, host)
	if isVoid(err) {
		return false, e.void()
	}
	if err != nil {
		return false, dnsErr(err)
	}
	ip := e.c.IP.Unmap()
	for _, a := range addrs {
		a = a.Unmap()
		if a.Is4() != ip.Is4() {
			continue
		}
		bits := t.cidr4
		if a.Is6() {
			bits = t.cidr6
		}
		if p, err := a.Prefix(bits); err == nil && p.Contains(ip) {
			return true, nil
		}
	}
	return false, nil
}

// validatedNames are the PTR names of the sending address whose own
// addresses include it (RFC 7208 §5.5), at most 10 tried.
func (e *eval) validatedNames() []string {
	names, err := e.r.LookupPTR(e.ctx, e.c.IP)
	if err != nil {
		return nil
	}
	var out []string
	for i, n := range names {
		if i == maxNames {
			break
		}
		addrs, err := e.r.LookupHost(e.ctx, n)
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if a.Unmap() == e.c.IP.Unmap() {
				out = append(out, n)
				break
			}
		}
	}
	return out
}

// explain fetches and expands the exp= explanation (RFC 7208 §6.2);
// any problem means no explanation.
func (e *eval) explain(spec, domain string) string {
	target, err := e.expand(spec, domain, false)
	if err != nil {
		return ""
	}
	txts, err := e.r.LookupTXT(e.ctx, target)
	if err != nil || len(txts) != 1 {
		return ""
	}
	s, err := e.expand(txts[0], domain, true)
	if err != nil {
		return ""
	}
	return s
}

func validDomain(d string) bool {
	if d == "" || len(d) > 253 || !strings.Contains(d, ".") {
		return false
	}
	for _, l := range strings.Split(d, ".") {
		if l == "" || len(l) > 63 {
			return false
		}
	}
	return true
}

// term is one directive of a record.
type term struct {
	text      string // as written
	qualifier byte   // + - ~ ?
	name      string // mechanism, lower case
	spec      string // domain-spec (macro-string), "" = current domain
	prefix    netip.Prefix
	cidr4     int
	cidr6     int
}

// result maps the qualifier to a result (RFC 7208 §4.6.2).
func (t term) result() Result {
	switch t.qualifier {
	case '-':
		return Fail
	case '~':
		return SoftFail
	case '?':
		return Neutral
	}
	return Pass
}

// parse reads a whole record before any of it is evaluated: a syntax
// error anywhere is a permerror (RFC 7208 §4.6).
func parse(rec string) (terms []term, redirect, exp string, err error) {
	fields := strings.Fields(rec[6:])
	seen := map[string]bool{}
	for _, f := range fields {
		lf := strings.ToLower(f)
		// A modifier: name "=" macro-string (RFC 7208 §4.6.1). A name
		// starts with a letter; "ip4:…" has no "=" before ":".
		if i := strings.IndexByte(f, '='); i > 0 && !strings.ContainsAny(f[:i], ":/") {
			name, val := lf[:i], f[i+1:]
			if !isName(name) {
				return nil, "", "", permErr(ErrSyntax, "bad modifier %q", f)
			}
			if name == "redirect" || name == "exp" {
				if seen[name] { // RFC 7208 §6: at most once each
					return nil, "", "", permErr(ErrSyntax, "%s= appears twice", name)
				}
				seen[name] = true
				if err := checkMacro(val); err != nil || val == "" {
					return nil, "", "", permErr(ErrSyntax, "bad %s=%q", name, val)
				}
				if name == "redirect" {
					redirect = val
				} else {
					exp = val
				}
			} else if err := checkMacro(val); err != nil {
				return nil, "", "", permErr(ErrSyntax, "bad modifier %q", f)
			}
			continue
		}
		t, err := parseTerm(f)
		if err != nil {
			return nil, "", "", err
		}
		terms = append(terms, t)
	}
	// RFC 7208 §6.1: redirect is ignored when the record has "all".
	for _, t := range terms {
		if t.name == "all" {
			redirect = ""
		}
	}
	return terms, redirect, exp, nil
}

func isName(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlpha(c) && !(c >= '0' && c <= '9') && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// parseTerm parses one directive (RFC 7208 §4.6.1, §5).
func parseTerm(f string) (term, error) {
	t := term{text: f, qualifier: '+', cidr4: 32, cidr6: 128}
	s := f
	if strings.ContainsRune("+-~?", rune(s[0])) {
		t.qualifier, s = s[0], s[1:]
	}
	name, arg, hasArg := strings.Cut(s, ":")
	var cidr string
	if !hasArg {
		if i := strings.IndexByte(name, '/'); i >= 0 {
			name, cidr = name[:i], name[i:]
		}
	}
	t.name = strings.ToLower(name)
	bad := func() (term, error) { return term{}, permErr(ErrSyntax, "bad term %q", f) }
	switch t.name {
	case "all":
		if hasArg || cidr != "" {
			return bad()
		}
	case "include", "exists":
		if !hasArg || arg == "" || checkMacro(arg) != nil {
			return bad()
		}
		t.spec = arg
	case "ptr":
		if cidr != "" || (hasArg && (arg == "" || checkMacro(arg) != nil)) {
			return bad()
		}
		t.spec = arg
	case "a", "mx":
		if hasArg {
			if i := strings.IndexByte(arg, '/'); i >= 0 {
				arg, cidr = arg[:i], arg[i:]
			}
			if arg == "" || checkMacro(arg) != nil {
				return bad()
			}
			t.spec = arg
		}
		if cidr != "" {
			c4, c6, ok := dualCIDR(cidr)
			if !ok {
				return bad()
			}
			t.cidr4, t.cidr6 = c4, c6
		}
	case "ip4", "ip6":
		if !hasArg {
			return bad()
		}
		addr, bits, hasBits := strings.Cut(arg, "/")
		a, err := netip.ParseAddr(addr)
		if err != nil || a.Is4() != (t.name == "ip4") || a.Zone() != "" {
			return bad()
		}
		n := a.BitLen()
		if hasBits {
			if n, err = strconv.Atoi(bits); err != nil || n < 0 || n > a.BitLen() || (len(bits) > 1 && bits[0] == '0') {
				return bad()
			}
		}
		t.prefix = netip.PrefixFrom(a, n).Masked()
	default:
		return term{}, permErr(ErrSyntax, "unknown mechanism %q", f)
	}
	return t, nil
}

// dualCIDR parses "/N", "//M" or "/N//M" (RFC 7208 §5.6).
func dualCIDR(s string) (c4, c6 int, ok bool) {
	c4, c6 = 32, 128
	v4, v6, has6 := strings.Cut(s, "//")
	num := func(x string, max int) (int, bool) {
		n, err := strconv.Atoi(x)
		return n, err == nil && n >= 0 && n <= max && (len(x) == 1 || x[0] != '0')
	}
	if v4 != "" {
		if v4[0] != '/' {
			return 0, 0, false
		}
		if c4, ok = num(v4[1:], 32); !ok {
			return 0, 0, false
		}
	}
	if has6 {
		if c6, ok = num(v6, 128); !ok {
			return 0, 0, false
		}
	}
	return c4, c6, true
}
