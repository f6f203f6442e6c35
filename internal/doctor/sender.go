package doctor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"mailout/internal/addr"
	"mailout/internal/dkim"
	"mailout/internal/dmarc"
	"mailout/internal/mx"
	"mailout/internal/route"
	"mailout/internal/spf"
)

// SenderConfig says whose sending identity CheckSender checks.
type SenderConfig struct {
	// From is the address of the messages' From (news@example.com).
	From string
	// ReturnPath is the envelope sender (MAIL FROM), whose domain SPF
	// checks; default From.
	ReturnPath string
	// DKIM is the signer of the campaign (key, d=, selector); nil when
	// messages are not signed.
	DKIM *dkim.Signer
	// SourceIP is this machine's public address on the direct route;
	// the zero value: the source address the system uses to reach an MX
	// host of Config.Domains[0].
	SourceIP netip.Addr
}

// Check parses From and ReturnPath as addresses and puts them in the form
// DNS uses (the domain as lower-case A-labels).
func (s *SenderConfig) Check() error {
	from, err := addr.Parse(s.From)
	if err != nil {
		return fmt.Errorf("sender %q: %w", s.From, err)
	}
	s.From = from.Local + "@" + from.Domain
	if s.ReturnPath != "" {
		rp, err := addr.Parse(s.ReturnPath)
		if err != nil {
			return fmt.Errorf("return path %q: %w", s.ReturnPath, err)
		}
		s.ReturnPath = rp.Local + "@" + rp.Domain
	}
	return nil
}

// Verdict IDs of the sender checks. Stable, mapped in
// docs/troubleshooting.md ("Sender checks").
const (
	VerdictSenderOK          = "sender-ok"
	VerdictSenderDNS         = "sender-dns-failed"
	VerdictSourceUnknown     = "source-ip-unknown"
	VerdictSPFMissing        = "spf-missing"
	VerdictSPFPermError      = "spf-permerror"
	VerdictSPFTooManyLookups = "spf-permerror-too-many-lookups"
	VerdictSPFNotRoute       = "spf-does-not-cover-route"
	VerdictSPFPTR            = "spf-ptr-deprecated"
	VerdictSPFAllowsAnyone   = "spf-allows-anyone"
	VerdictDKIMNotConfigured = "dkim-not-configured"
	VerdictDKIMMissing       = "dkim-missing"
	VerdictDKIMKeyMismatch   = "dkim-key-mismatch"
	VerdictDKIMRevoked       = "dkim-revoked"
	VerdictDKIMTesting       = "dkim-testing"
	VerdictDKIMInvalid       = "dkim-record-invalid"
	VerdictDMARCMissing      = "dmarc-missing"
	VerdictDMARCInvalid      = "dmarc-invalid"
	VerdictDMARCPolicyNone   = "dmarc-policy-none"
	VerdictDMARCNoRUA        = "dmarc-no-rua"
	VerdictDMARCNotAligned   = "dmarc-not-aligned"
	VerdictFCrDNSMissing     = "fcrdns-missing"
	VerdictFCrDNSMismatch    = "fcrdns-mismatch"
	VerdictHELOMismatch      = "helo-mismatch"
)

// spfProbe is the address the whole SPF policy is walked with: TEST-NET-1
// (RFC 5737) matches no real mechanism, so every include and lookup of
// the record is followed, as a receiver does for an address it does not
// list.
var spfProbe = netip.MustParseAddr("192.0.2.0")

// CheckSender checks what receivers check about a sender before they
// trust its mail, as the large mailbox providers' rules for bulk senders
// ask: SPF of the return path's domain and whether it covers the route's
// sending addresses (the relay's, or this machine's on the direct route),
// the DKIM key record of the signer, DMARC of the From domain and the
// alignment of DKIM or SPF with it, and on the direct route the reverse
// DNS of the sending address and the EHLO name. DNS goes to cfg's DNS
// servers. Every problem is a verdict in Report.Problems; Report.Verdict
// is the first failing one, else sender-ok. It never fails: what cannot
// be checked is a finding.
func CheckSender(ctx context.Context, cfg Config, s SenderConfig) *Report {
	c := cfg.withDefaults()
	if c.Route != route.Relay {
		c.Route = route.Direct
	}
	r := &Report{Route: c.Route, Started: c.Now(), From: s.From}
	defer func() { r.Millis = c.Now().Sub(r.Started).Milliseconds() }()
	sc := &senderCheck{ctx: ctx, c: &c, s: s, r: r}
	sc.run()
	r.Verdict = newVerdict(VerdictSenderOK, s.From, "")
	r.Verdict.Severity = Pass
	for _, p := range r.Problems {
		if p.Severity == Fail {
			r.Verdict = p
			break
		}
	}
	return r
}

type senderCheck struct {
	ctx context.Context
	c   *Config
	s   SenderConfig
	r   *Report
	res *mx.Resolver

	fromDomain, rpDomain string
	spfPasses            bool // SPF passes for every address of the route
	dkimOK               bool // the key record verifies the signer's signatures
}

// problem adds a verdict to the report's problems (once per ID).
func (sc *senderCheck) problem(id string, sev Severity, subject, suggest string) {
	if slices.ContainsFunc(sc.r.Problems, func(v Verdict) bool { return v.ID == id }) {
		return
	}
	v := newVerdict(id, subject, suggest)
	v.Severity = sev
	sc.r.Problems = append(sc.r.Problems, v)
}

func domainOf(addr string) string {
	_, d, ok := strings.Cut(addr, "@")
	if !ok {
		return ""
	}
	return strings.ToLower(strings.TrimSuffix(d, "."))
}

func (sc *senderCheck) run() {
	c, s := sc.c, sc.s
	sc.fromDomain = domainOf(s.From)
	rp := s.ReturnPath
	if rp == "" {
		rp = s.From
	}
	sc.rpDomain = domainOf(rp)
	if sc.fromDomain == "" || sc.rpDomain == "" {
		sc.r.add(Finding{ID: "sender.config", Subject: s.From, Severity: Fail, Code: "no-domain",
			Evidence: []string{"the sender and return path must be addresses (local@domain)"}})
		sc.problem(VerdictSenderDNS, Fail, s.From, "")
		return
	}
	res, err := mx.New(mx.Config{Servers: c.DNS, ResolvConf: c.ResolvConf, Timeout: c.Timeouts.DNS,
		AllowLoopback: c.AllowLoopbackMX, FailureTTL: -1})
	if err != nil {
		sc.r.add(Finding{ID: "dns.servers", Severity: Fail, Code: "none", Evidence: []string{err.Error()}})
		sc.problem(VerdictSenderDNS, Fail, "", "")
		return
	}
	sc.res = res
	addrs := sc.routeAddrs()
	sc.checkSPF(addrs, rp)
	sc.checkDKIM()
	sc.checkDMARC()
	if c.Route == route.Direct {
		for _, a := range addrs {
			sc.checkFCrDNS(a)
		}
	}
}

// routeAddrs are the addresses receivers see mail come from: the relay
// hosts' addresses, or this machine's on the direct route.
func (sc *senderCheck) routeAddrs() []netip.Addr {
	c := sc.c
	if c.Route == route.Relay {
		var out []netip.Addr
		for _, acc := range c.Relays {
			addrs, err := sc.res.LookupHost(sc.ctx, acc.Host)
			if err != nil {
				sc.r.add(Finding{ID: "sender.source", Subject: acc.Host, Severity: Fail, Code: codeOf(err), Evidence: []string{err.Error()}})
				sc.problem(VerdictSenderDNS, Fail, acc.Host, "")
				continue
			}
			ev := make([]string, len(addrs))
			for i, a := range addrs {
				ev[i] = a.String()
			}
			sc.r.add(Finding{ID: "sender.source", Subject: acc.Host, Severity: Pass, Code: "relay", Evidence: ev})
			for _, a := range addrs {
				if !slices.Contains(out, a) {
					out = append(out, a)
				}
			}
		}
		return out
	}
	if sc.s.SourceIP.IsValid() {
		a := sc.s.SourceIP.Unmap()
		sc.r.add(Finding{ID: "sender.source", Subject: a.String(), Severity: Pass, Code: "given"})
		return []netip.Addr{a}
	}
	a, how, err := sc.sourceAddr()
	if err != nil {
		sc.r.add(Finding{ID: "sender.source", Severity: Warn, Code: "unknown", Evidence: []string{err.Error()}})
		sc.problem(VerdictSourceUnknown, Warn, "", "")
		return nil
	}
	if mx.IsProhibited(a, false) {
		// A private address: a NAT gateway puts another one on the
		// packets, which this machine cannot see.
		sc.r.add(Finding{ID: "sender.source", Subject: a.String(), Severity: Warn, Code: "private", Evidence: []string{how}})
		sc.problem(VerdictSourceUnknown, Warn, a.String(), "")
		return nil
	}
	sc.r.add(Finding{ID: "sender.source", Subject: a.String(), Severity: Pass, Code: "detected", Evidence: []string{how}})
	return []netip.Addr{a}
}

// sourceAddr asks the system which source address it would use to reach
// an MX host of the first test domain: a UDP socket "connected" to it
// sends nothing but gets the address the routing table chooses.
func (sc *senderCheck) sourceAddr() (netip.Addr, string, error) {
	d := sc.c.Domains[0]
	hosts, err := sc.res.Lookup(sc.ctx, d)
	if err != nil {
		return netip.Addr{}, "", err
	}
	for _, h := range hosts {
		for _, a := range h.Addrs {
			conn, err := net.Dial("udp", netip.AddrPortFrom(a, 25).String())
			if err != nil {
				continue
			}
			local := conn.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
			_ = conn.Close()
			return local, fmt.Sprintf("the source address towards %s (%s, MX of %s)", h.Name, a, d), nil
		}
	}
	return netip.Addr{}, "", fmt.Errorf("no route to the MX hosts of %s", d)
}

// codeOf is the finding code of a DNS failure.
func codeOf(err error) string {
	var me *mx.Error
	if errors.As(err, &me) {
		return string(me.Kind)
	}
	return "error"
}

// checkSPF walks the return path domain's whole policy once (structure,
// limits, ptr) and evaluates it for each sending address.
func (sc *senderCheck) checkSPF(addrs []netip.Addr, rp string) {
	d := sc.rpDomain
	o := spf.Evaluate(sc.ctx, sc.res, spf.Check{IP: spfProbe, Sender: rp, HELO: sc.c.HELO})
	f := Finding{ID: "sender.spf", Subject: d, Severity: Pass, Code: string(o.Result)}
	if o.Record != "" {
		f.Evidence = append(f.Evidence, o.Record)
	}
	f.Evidence = append(f.Evidence, fmt.Sprintf("%d of %d DNS lookups, %d void", o.Lookups, spf.MaxLookups, o.Voids))
	switch o.Result {
	case spf.None:
		f.Severity = Fail
		sc.problem(VerdictSPFMissing, Fail, d, "")
	case spf.PermError:
		f.Severity = Fail
		f.Evidence = append(f.Evidence, o.Err.Error())
		if errors.Is(o.Err, spf.ErrTooManyLookups) {
			sc.problem(VerdictSPFTooManyLookups, Fail, d, "")
		} else {
			sc.problem(VerdictSPFPermError, Fail, d, "")
		}
	case spf.TempError:
		f.Severity = Fail
		f.Evidence = append(f.Evidence, o.Err.Error())
		sc.problem(VerdictSenderDNS, Fail, d, "")
	case spf.Pass:
		// A documentation address passes: the policy authorises the
		// whole Internet (+all, or a range as wide).
		f.Severity, f.Code = Warn, "allows-anyone"
		f.Evidence = append(f.Evidence, fmt.Sprintf("%s passes, decided by %s", spfProbe, o.Mechanism))
		sc.problem(VerdictSPFAllowsAnyone, Warn, d, "")
	default:
		// The probe address matched nothing: any result but an error is
		// a well-formed policy. Its own result is for the route below.
		f.Code = "valid"
	}
	sc.r.add(f)
	if o.PTR {
		sc.problem(VerdictSPFPTR, Warn, d, "")
	}
	if f.Severity == Fail {
		return
	}
	var uncovered []string
	for _, a := range addrs {
		o := spf.Evaluate(sc.ctx, sc.res, spf.Check{IP: a, Sender: rp, HELO: sc.c.HELO})
		rf := Finding{ID: "sender.spf-route", Subject: a.String(), Severity: Pass, Code: string(o.Result)}
		if o.Mechanism != "" {
			rf.Evidence = append(rf.Evidence, "decided by "+o.Mechanism)
		}
		if o.Err != nil {
			rf.Evidence = append(rf.Evidence, o.Err.Error())
		}
		if o.PTR {
			sc.problem(VerdictSPFPTR, Warn, d, "")
		}
		switch o.Result {
		case spf.Pass:
		case spf.TempError:
			rf.Severity = Fail
			sc.problem(VerdictSenderDNS, Fail, d, "")
		case spf.PermError:
			rf.Severity = Fail
			if errors.Is(o.Err, spf.ErrTooManyLookups) {
				sc.problem(VerdictSPFTooManyLookups, Fail, d, "")
			} else {
				sc.problem(VerdictSPFPermError, Fail, d, "")
			}
		default:
			rf.Severity = Fail
			uncovered = append(uncovered, a.String())
		}
		sc.r.add(rf)
	}
	if len(uncovered) > 0 {
		var add []string
		for _, u := range uncovered {
			if netip.MustParseAddr(u).Is4() {
				add = append(add, "ip4:"+u)
			} else {
				add = append(add, "ip6:"+u)
			}
		}
		sc.problem(VerdictSPFNotRoute, Fail, strings.Join(uncovered, ", "), strings.Join(add, " "))
	}
	sc.spfPasses = len(addrs) > 0 && len(uncovered) == 0 && !slices.ContainsFunc(sc.r.Problems, func(v Verdict) bool {
		return v.ID == VerdictSenderDNS || v.ID == VerdictSPFPermError || v.ID == VerdictSPFTooManyLookups
	})
}

// checkDKIM looks up the signer's key record and compares it with the
// private key (RFC 6376 §3.6.1).
func (sc *senderCheck) checkDKIM() {
	if sc.s.DKIM == nil {
		sc.r.add(Finding{ID: "sender.dkim", Subject: sc.fromDomain, Severity: Warn, Code: "no-key"})
		sc.problem(VerdictDKIMNotConfigured, Warn, sc.fromDomain, "")
		return
	}
	name, want := sc.s.DKIM.DNSRecord()
	err := dkim.CheckPublished(sc.ctx, sc.s.DKIM, sc.lookupTXT)
	f := Finding{ID: "sender.dkim", Subject: name, Severity: Pass, Code: "pass"}
	sc.dkimOK = err == nil || dkim.IsWarning(err)
	if err != nil {
		f.Evidence = []string{err.Error()}
		f.Severity = Fail
		var id string
		switch {
		case errors.Is(err, dkim.ErrTestingMode):
			f.Severity, f.Code, id = Warn, "testing", VerdictDKIMTesting
		case errors.Is(err, dkim.ErrNotPublished):
			f.Code, id = "missing", VerdictDKIMMissing
		case errors.Is(err, dkim.ErrKeyMismatch):
			f.Code, id = "key-mismatch", VerdictDKIMKeyMismatch
		case errors.Is(err, dkim.ErrKeyRevoked):
			f.Code, id = "revoked", VerdictDKIMRevoked
		case errors.Is(err, dkim.ErrLookup):
			f.Code, id = "lookup-failed", VerdictSenderDNS
		default:
			f.Code, id = "invalid", VerdictDKIMInvalid
		}
		sev := Fail
		if id == VerdictDKIMTesting {
			sev = Warn
		}
		sugg := ""
		if id != VerdictSenderDNS && id != VerdictDKIMTesting {
			sugg = name + " TXT \"" + want + "\""
		}
		sc.problem(id, sev, name, sugg)
	}
	sc.r.add(f)
}

// lookupTXT gives dkim.CheckPublished the resolver's TXT lookup, with a
// name that does not exist or has no TXT reported as "not found".
func (sc *senderCheck) lookupTXT(ctx context.Context, name string) ([]string, error) {
	txts, err := sc.res.LookupTXT(ctx, name)
	var me *mx.Error
	if errors.As(err, &me) && (me.Kind == mx.FailureNXDomain || me.Kind == mx.FailureNoData) {
		return nil, &net.DNSError{Err: me.Error(), Name: name, Server: me.Server, IsNotFound: true}
	}
	return txts, err
}

// checkDMARC finds the From domain's policy and checks that DKIM or SPF
// passes for a domain aligned with From (RFC 7489 §3.1, §4.2).
func (sc *senderCheck) checkDMARC() {
	from := sc.fromDomain
	rec, err := dmarc.Lookup(sc.ctx, sc.res, from)
	f := Finding{ID: "sender.dmarc", Subject: "_dmarc." + from, Severity: Pass}
	switch {
	case errors.Is(err, dmarc.ErrNoRecord):
		f.Severity, f.Code = Fail, "missing"
		f.Evidence = []string{err.Error()}
		sc.problem(VerdictDMARCMissing, Fail, from, "_dmarc."+dmarc.OrgDomain(from)+" TXT \"v=DMARC1; p=none; rua=mailto:dmarc-reports@"+dmarc.OrgDomain(from)+"\"")
	case errors.Is(err, dmarc.ErrDNS):
		f.Severity, f.Code = Fail, "lookup-failed"
		f.Evidence = []string{err.Error()}
		sc.problem(VerdictSenderDNS, Fail, "_dmarc."+from, "")
	case err != nil:
		f.Severity, f.Code = Fail, "invalid"
		f.Evidence = []string{err.Error()}
		sc.problem(VerdictDMARCInvalid, Fail, "_dmarc."+from, "")
	default:
		f.Subject = "_dmarc." + rec.Domain
		policy := rec.PolicyFor(from)
		f.Code = policy
		f.Evidence = []string{rec.Raw, fmt.Sprintf("policy %s for %s, pct=%d", policy, from, rec.Pct)}
		if policy == "none" {
			sc.problem(VerdictDMARCPolicyNone, Warn, "_dmarc."+rec.Domain, "")
		}
		if len(rec.RUA) == 0 {
			f.Severity = Warn
			sc.problem(VerdictDMARCNoRUA, Warn, "_dmarc."+rec.Domain, "")
		}
	}
	sc.r.add(f)

	// Alignment, with the record's modes or, without a record, relaxed.
	strictDKIM, strictSPF := rec != nil && rec.StrictDKIM, rec != nil && rec.StrictSPF
	mode := func(strict bool) string {
		if strict {
			return "strict"
		}
		return "relaxed"
	}
	af := Finding{ID: "sender.alignment", Subject: from, Severity: Pass, Code: "aligned"}
	dkimAligned := false
	if sc.s.DKIM != nil {
		d := sc.s.DKIM.Domain()
		dkimAligned = sc.dkimOK && dmarc.Aligned(from, d, strictDKIM)
		af.Evidence = append(af.Evidence, fmt.Sprintf("DKIM d=%s (%s): aligned %v, key record verifies %v", d, mode(strictDKIM), dmarc.Aligned(from, d, strictDKIM), sc.dkimOK))
	}
	spfAligned := sc.spfPasses && dmarc.Aligned(from, sc.rpDomain, strictSPF)
	af.Evidence = append(af.Evidence, fmt.Sprintf("SPF domain %s (%s): aligned %v, passes for the route %v", sc.rpDomain, mode(strictSPF), dmarc.Aligned(from, sc.rpDomain, strictSPF), sc.spfPasses))
	if !dkimAligned && !spfAligned {
		af.Severity, af.Code = Fail, "not-aligned"
		// Only a verdict of its own when SPF and DKIM pass on their own
		// but for other domains; a broken SPF or DKIM has its own.
		if (sc.s.DKIM == nil || sc.dkimOK) && (sc.spfPasses || !dmarc.Aligned(from, sc.rpDomain, strictSPF)) {
			sc.problem(VerdictDMARCNotAligned, Fail, from, "")
		}
	}
	sc.r.add(af)
}

// checkFCrDNS checks the sending address's reverse DNS: a PTR name whose
// addresses include it (forward-confirmed), and the EHLO name resolving
// to it.
func (sc *senderCheck) checkFCrDNS(a netip.Addr) {
	names, err := sc.res.LookupPTR(sc.ctx, a)
	f := Finding{ID: "sender.fcrdns", Subject: a.String(), Severity: Pass, Code: "pass"}
	var me *mx.Error
	switch {
	case errors.As(err, &me) && (me.Kind == mx.FailureNXDomain || me.Kind == mx.FailureNoData):
		f.Severity, f.Code = Fail, "no-ptr"
		f.Evidence = []string{err.Error()}
		sc.problem(VerdictFCrDNSMissing, Fail, a.String(), sc.c.HELO)
	case err != nil:
		f.Severity, f.Code = Fail, codeOf(err)
		f.Evidence = []string{err.Error()}
		sc.problem(VerdictSenderDNS, Fail, a.String(), "")
	default:
		confirmed := ""
		for _, n := range names {
			addrs, err := sc.res.LookupHost(sc.ctx, n)
			f.Evidence = append(f.Evidence, fmt.Sprintf("PTR %s -> %v", n, addrs))
			if err == nil && slices.Contains(addrs, a) {
				confirmed = n
				break
			}
		}
		if confirmed == "" {
			f.Severity, f.Code = Fail, "not-confirmed"
			sc.problem(VerdictFCrDNSMismatch, Fail, a.String(), "")
		}
	}
	sc.r.add(f)

	helo := sc.c.HELO
	if _, err := netip.ParseAddr(strings.Trim(helo, "[]")); err == nil {
		return // an address literal: nothing to resolve
	}
	hf := Finding{ID: "sender.helo", Subject: helo, Severity: Pass, Code: "pass"}
	addrs, err := sc.res.LookupHost(sc.ctx, helo)
	if err != nil {
		hf.Evidence = []string{err.Error()}
	} else {
		hf.Evidence = []string{fmt.Sprint(addrs)}
	}
	if err != nil || !slices.Contains(addrs, a) {
		hf.Severity, hf.Code = Warn, "not-this-address"
		sc.problem(VerdictHELOMismatch, Warn, helo, "")
	}
	sc.r.add(hf)
}
