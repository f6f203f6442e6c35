package doctor

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/miekg/dns"

	"mailout/internal/mx"
	"mailout/internal/outcome"
	"mailout/internal/route"
	"mailout/internal/smtpclient"
	"mailout/internal/tlsconf"
)

// maxDNSServers caps the DNS servers probed one by one.
const maxDNSServers = 3

// runDirect runs the direct-route checks: the guide's "port 53 for the MX
// query, port 25 for the message".
func runDirect(ctx context.Context, c *Config, r *Report) {
	res, err := mx.New(mx.Config{Servers: c.DNS, ResolvConf: c.ResolvConf, Timeout: c.Timeouts.DNS,
		AllowLoopback: c.AllowLoopbackMX, FailureTTL: -1})
	if err != nil {
		r.add(Finding{ID: "dns.servers", Severity: Fail, Code: "none", Evidence: []string{err.Error()}})
		r.Verdict = newVerdict(VerdictDNSNoServer, "", "")
		return
	}
	src := res.Source()
	code := "resolv.conf"
	if src == "flag" {
		code = "flag"
	}
	r.add(Finding{ID: "dns.servers", Severity: Pass, Code: code,
		Evidence: []string{strings.Join(res.Servers(), ", ") + " (from " + src + ")"}})

	// 1. Port 53, UDP and TCP, server by server.
	answered, timeouts, refused := 0, 0, 0
	for i, srv := range res.Servers() {
		if i == maxDNSServers {
			break
		}
		for _, network := range []string{"udp", "tcp"} {
			f := dnsProbe(ctx, c, srv, network, c.Domains[0])
			r.add(f)
			switch f.Code {
			case "answer":
				answered++
			case codeTimeout, codeBlockedHere:
				timeouts++
			default:
				refused++
			}
		}
	}
	if answered == 0 {
		if timeouts > 0 {
			r.Verdict = newVerdict(VerdictDNSBlocked, "", "")
		} else {
			r.Verdict = newVerdict(VerdictDNSRefused, "", "")
		}
		return
	}

	// 2. MX lookups; 3. port 25 and SMTP on the first hosts of each.
	var t tally
	resolved := 0
	for _, d := range c.Domains {
		start := c.Now()
		hosts, err := res.Lookup(ctx, d)
		f := r.add(Finding{ID: "dns.mx", Subject: d, Millis: c.Now().Sub(start).Milliseconds()})
		if err != nil {
			f.Severity, f.Code, f.Evidence = Fail, "error", []string{err.Error()}
			var me *mx.Error
			if errors.As(err, &me) {
				f.Code = string(me.Kind)
			}
			continue
		}
		resolved++
		f.Severity, f.Code = Pass, "answer"
		for _, h := range hosts {
			f.Evidence = append(f.Evidence, fmt.Sprintf("%d %s %v", h.Pref, h.Name, h.Addrs))
		}
		for i, h := range hosts {
			if i == c.MaxHosts || len(h.Addrs) == 0 {
				break
			}
			checkMXHost(ctx, c, r, d, h, &t)
		}
	}
	id, subject := t.verdict(resolved)
	r.Verdict = newVerdict(id, subject, "")
}

// dnsProbe sends one MX question to one server over one transport: does
// port 53 answer (any rcode but REFUSED), time out, or refuse?
func dnsProbe(ctx context.Context, c *Config, server, network, domain string) Finding {
	id := "dns." + network
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(domain), dns.TypeMX)
	m.SetEdns0(1232, false)
	cl := &dns.Client{Net: network, Timeout: c.Timeouts.DNS}
	qctx, cancel := context.WithTimeout(ctx, c.Timeouts.DNS)
	defer cancel()
	start := c.Now()
	resp, _, err := cl.ExchangeContext(qctx, m, server)
	f := Finding{ID: id, Subject: server, Millis: c.Now().Sub(start).Milliseconds()}
	switch {
	case err == nil && resp.Rcode == dns.RcodeRefused:
		f.Severity, f.Code = Fail, codeRefused
		f.Evidence = []string{fmt.Sprintf("%s %s: REFUSED (the server does not serve us)", server, network)}
	case err == nil:
		f.Severity, f.Code = Pass, "answer"
		f.Evidence = []string{fmt.Sprintf("%s %s: %s in %dms (MX %s)", server, network, dns.RcodeToString[resp.Rcode], f.Millis, domain)}
	case errors.Is(err, syscall.ECONNREFUSED):
		f.Severity, f.Code = Fail, codeRefused
		f.Evidence = []string{fmt.Sprintf("%s %s: port 53 refused (%v)", server, network, err)}
	default:
		f.Severity, f.Code = Fail, dialCode(err)
		if f.Code == codeError {
			f.Code = codeTimeout // no usable answer reached us
		}
		f.Evidence = []string{fmt.Sprintf("%s %s: no answer after %dms (%v)", server, network, f.Millis, err)}
	}
	return f
}

// tally counts what the MX hosts did, for the verdict.
type tally struct {
	timeout, refused, unreachable, other int
	sessions, rejected                   int
	identities                           map[string]int // banner names of hosts whose name is unrelated
	domainsWithForeign                   map[string]bool
	// certs are the STARTTLS certificates that did not verify for their
	// MX host, one per host.
	certs []mxCert
	// rcptDomains are the domains whose MX answered the RCPT check;
	// notHosted those whose MX refused mail for the domain itself.
	rcptDomains, notHosted map[string]bool
}

// verdict returns the verdict's ID and, when the evidence is worth
// naming, its subject.
func (t *tally) verdict(resolved int) (id, subject string) {
	switch {
	case resolved == 0:
		return VerdictMXLookupFailed, ""
	case t.sessions == 0 && t.rejected == 0:
		switch {
		case t.timeout > 0 && t.refused == 0 && t.unreachable == 0:
			return VerdictPort25Blocked, ""
		case t.refused > 0 && t.timeout == 0 && t.unreachable == 0:
			return VerdictPort25Refused, ""
		case t.unreachable > 0 && t.timeout == 0 && t.refused == 0:
			return VerdictNoRoute, ""
		case t.timeout+t.refused+t.unreachable > 0:
			return VerdictPort25Blocked, ""
		}
		return VerdictSMTPRejected, ""
	case t.sessions == 0:
		return VerdictSMTPRejected, ""
	case len(t.domainsWithForeign) >= 2 && len(t.identities) == 1 && t.identities[firstKey(t.identities)] == t.sessions:
		// One box answers in the place of every domain's MX: a
		// transparent proxy (antivirus, gateway, ISP).
		return VerdictPort25Intercept, ""
	case len(t.notHosted) >= 2 && len(t.notHosted) == len(t.rcptDomains):
		// The MX of every domain refuses mail for its own domain. One
		// stale MX record is the domain's business; all of them at once
		// is something between us and them (an ISP answering port 25).
		return VerdictSMTPRejected, ""
	}
	if who := t.interceptedTLS(); who != "" {
		return VerdictTLSIntercepted, who
	}
	return VerdictOK, ""
}

// mxCert is a certificate an MX host presented at STARTTLS that did not
// verify for that host.
type mxCert struct {
	domain, host, ip string
	// authority is who vouches for the certificate: the certificate itself
	// when it is self-signed or chains to a root this computer trusts
	// (then only the very same certificate elsewhere is suspicious),
	// otherwise its unknown issuer (an antivirus or proxy mints a
	// certificate per server under its own authority).
	authority string
	// about describes the certificate or its issuer, for the verdict.
	about string
}

func newMXCert(chain []*x509.Certificate, roots *x509.CertPool, domain, host, ip string) mxCert {
	leaf := chain[0]
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	sum := sha256.Sum256(leaf.Raw)
	fp := hex.EncodeToString(sum[:])
	selfSigned := bytes.Equal(leaf.RawIssuer, leaf.RawSubject) &&
		leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature) == nil
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
	m := mxCert{domain: domain, host: strings.ToLower(host), ip: ip}
	if selfSigned || err == nil {
		m.authority = "certificate " + fp
		m.about = fmt.Sprintf("one certificate for %q (SHA-256 %s…)", leaf.Subject.CommonName, fp[:16])
	} else {
		m.authority = "issuer " + hex.EncodeToString(leaf.RawIssuer) + " " + hex.EncodeToString(leaf.AuthorityKeyId)
		m.about = fmt.Sprintf("certificates issued by %q, an authority this computer does not trust,", leaf.Issuer.String())
	}
	return m
}

// interceptedTLS looks for the evidence of a scanner in the middle of
// STARTTLS. One MX host presenting a certificate nobody vouches for is
// normal: opportunistic TLS does not authenticate the server (RFC 7435
// §1.3), and many mail servers use a self-signed certificate. But the mail
// servers of two different domains, at different addresses and under
// unrelated names, do not share one certificate or one unknown authority;
// something that answers for both does. It returns the evidence, or "".
func (t *tally) interceptedTLS() string {
	groups := map[string][]mxCert{}
	var order []string
	for _, c := range t.certs {
		if groups[c.authority] == nil {
			order = append(order, c.authority)
		}
		groups[c.authority] = append(groups[c.authority], c)
	}
	for _, k := range order {
		g := groups[k]
		evidence := false
		for i, a := range g {
			for _, b := range g[:i] {
				if a.domain != b.domain && a.ip != b.ip && !related(a.host, b.host) {
					evidence = true
				}
			}
		}
		if !evidence {
			continue
		}
		var hosts []string
		for _, c := range g {
			if !slices.Contains(hosts, c.host) {
				hosts = append(hosts, c.host)
			}
		}
		sortStrings(hosts)
		return g[0].about + " presented by the mail servers " + strings.Join(hosts, ", ")
	}
	return ""
}

func firstKey(m map[string]int) string {
	for k := range m {
		return k
	}
	return ""
}

// checkMXHost connects to port 25 of one MX host and, when it answers,
// reads banner and EHLO and tries STARTTLS (RFC 3207) with certificate
// verification, recording the signs of interception.
func checkMXHost(ctx context.Context, c *Config, r *Report, domain string, h mx.Host, t *tally) {
	addr := net.JoinHostPort(h.Addrs[0].String(), strconv.Itoa(c.MXPort))
	subj := h.Name + " " + addr
	conn, code, took, err := connect(ctx, c, addr)
	f := r.add(Finding{ID: "smtp.port25", Subject: subj, Code: code, Millis: took.Milliseconds()})
	if err != nil {
		f.Severity = Fail
		f.Evidence = []string{fmt.Sprintf("%s: %s after %s (%v)", addr, code, ms(took), err)}
		switch code {
		case codeTimeout, codeBlockedHere:
			t.timeout++
		case codeRefused, codeReset:
			t.refused++
		case codeUnreachable:
			t.unreachable++
		default:
			t.other++
		}
		return
	}
	f.Severity = Pass
	f.Evidence = []string{fmt.Sprintf("%s: connected in %s", addr, ms(took))}

	s := newSession(c, h.Name, addr, conn)
	s.mode = modeOpportunistic
	s.tlsConfig = tlsconf.Verified(h.Name, c.MXRootCAs)
	start := c.Now()
	cl, err := s.dial(ctx)
	took = c.Now().Sub(start)
	banner := s.greeting()
	var se *smtpclient.Error
	errors.As(err, &se)
	if banner == "" {
		ev := append([]string{}, s.server...)
		if err != nil {
			ev = append(ev, replyText(err))
		}
		r.add(Finding{ID: "smtp.banner", Subject: subj, Severity: Fail, Code: replyCode(err), Evidence: ev, Millis: took.Milliseconds()})
		t.rejected++
		return
	}
	r.add(Finding{ID: "smtp.banner", Subject: subj, Severity: Pass, Code: "220", Evidence: []string{banner}})
	if se != nil && se.Command != "STARTTLS" {
		r.add(Finding{ID: "smtp.ehlo", Subject: subj, Severity: Fail, Code: replyCode(err), Evidence: append(append([]string{}, s.server...), replyText(err))})
		t.rejected++
		return
	}
	t.sessions++

	// Who answers? A banner name unrelated to the MX host is a sign that
	// something in between answers in its place.
	name := bannerName(banner)
	idf := r.add(Finding{ID: "smtp.identity", Subject: subj, Severity: Pass, Code: "related", Evidence: []string{"banner name " + name}})
	if !related(name, h.Name) {
		idf.Severity, idf.Code = Warn, "unrelated"
		if t.identities == nil {
			t.identities, t.domainsWithForeign = map[string]int{}, map[string]bool{}
		}
		t.identities[strings.ToLower(name)]++
		t.domainsWithForeign[domain] = true
	}

	// EHLO and STARTTLS.
	offered := false
	for _, l := range s.server {
		if len(l) > 4 && strings.EqualFold(strings.TrimSpace(l[4:]), "STARTTLS") {
			offered = true
		}
	}
	r.add(Finding{ID: "smtp.ehlo", Subject: subj, Severity: Pass, Code: "250", Evidence: ehloLines(s.server)})
	plain := false // mailout would deliver to this host without TLS
	switch {
	case err != nil: // STARTTLS offered, handshake failed
		// A warning, never a verdict by itself: on the direct route TLS is
		// opportunistic (RFC 7435), and mailout delivers to this host all
		// the same. Interception needs more (see interceptedTLS).
		p := certProblem(err)
		ev := []string{replyText(err)}
		if chain := peekChain(ctx, c, h.Name, addr, false); len(chain) > 0 {
			leaf := chain[0]
			ev = append(ev, fmt.Sprintf("certificate for %q issued by %q", leaf.Subject.CommonName, leaf.Issuer.String()))
			if p != "" {
				t.certs = append(t.certs, newMXCert(chain, c.MXRootCAs, domain, h.Name, h.Addrs[0].String()))
			}
		}
		if p == "" {
			p, plain = "handshake", true
			ev = append(ev, "mailout delivers to this host without TLS")
		} else {
			ev = append(ev, "normal for a mail server: mailout still encrypts mail to this host (opportunistic TLS, RFC 7435, does not authenticate the server)")
		}
		r.add(Finding{ID: "smtp.starttls", Subject: subj, Severity: Warn, Code: p, Evidence: ev})
	case !offered:
		// Nothing remembers whether this host offered STARTTLS before, so
		// a missing STARTTLS is no evidence of stripping on its own.
		r.add(Finding{ID: "smtp.starttls", Subject: subj, Severity: Warn, Code: "not-offered",
			Evidence: []string{"EHLO does not list STARTTLS: mail to this host goes unencrypted (the server does not offer it, or something in between strips it)"}})
	default:
		st, _ := cl.TLS()
		r.add(Finding{ID: "smtp.starttls", Subject: subj, Severity: Pass, Code: "ok", Evidence: []string{certSummary(st)}})
	}
	if err != nil && cl != nil {
		_ = cl.Close()
		cl = nil
	}
	checkMXRcpt(ctx, c, r, domain, h.Name, addr, subj, cl, plain, t)
}

// checkMXRcpt asks the MX host whether it takes mail for its domain at all:
// MAIL FROM, RCPT TO the domain's postmaster, which every domain must
// accept (RFC 5321 §4.5.1), then RSET — no DATA, nothing is sent. An MX
// that answers "relay access denied" or "authentication required" does not
// host the domain any more (a stale MX record): a fault of that domain, not
// of the network. cl is the session of the checks so far, or nil when its
// STARTTLS failed: then a new session talks as mailout would deliver
// (opportunistic TLS without checking the certificate, or no TLS). cl is
// closed on return.
func checkMXRcpt(ctx context.Context, c *Config, r *Report, domain, host, addr, subj string, cl *smtpclient.Client, plain bool, t *tally) {
	if cl == nil {
		s := newSession(c, host, addr, nil)
		s.insecureProbe = true // no credentials are sent
		s.mode = modeOpportunistic
		if plain {
			s.mode = modeNone
		}
		var err error
		if cl, err = s.dial(ctx); err != nil {
			return // the findings of the first session say what is wrong
		}
	}
	defer func() { _ = cl.Quit(ctx) }()
	from := c.From
	if from == "" {
		from = "postmaster@" + c.HELO
	}
	rcpt := "postmaster@" + domain
	start := c.Now()
	err := cl.Verify(ctx, from, rcpt)
	f := r.add(Finding{ID: "smtp.rcpt", Subject: subj, Millis: c.Now().Sub(start).Milliseconds(),
		Evidence: []string{"MAIL FROM:<" + from + "> RCPT TO:<" + rcpt + "> then RSET, no DATA"}})
	if t.rcptDomains == nil {
		t.rcptDomains, t.notHosted = map[string]bool{}, map[string]bool{}
	}
	t.rcptDomains[domain] = true
	if err == nil {
		f.Severity, f.Code = Pass, "250"
		return
	}
	res := outcome.Classify(outcome.Attempt{Route: route.Direct, Host: host, Port: c.MXPort, Err: err})
	f.Severity, f.Code = Warn, replyCode(err)
	f.Evidence = append(f.Evidence, replyText(err),
		string(res.Class)+": "+outcome.Advice(res.Class, route.Direct, "en"))
	if res.Class == outcome.DomainNotHosted {
		t.notHosted[domain] = true
	}
}

// bannerName is the first word after "220" (RFC 5321 §4.3.1: the greeting
// starts with the server's domain).
func bannerName(banner string) string {
	fs := strings.Fields(strings.TrimLeft(banner, "0123456789- "))
	if len(fs) == 0 {
		return ""
	}
	return strings.TrimSuffix(fs[0], ".")
}

// related reports whether two host names share their last two labels
// (mx1.example.com and smtp.example.com) or one is an IP literal.
func related(a, b string) bool {
	if net.ParseIP(strings.Trim(a, "[]")) != nil {
		return true
	}
	tail := func(s string) string {
		l := strings.Split(strings.ToLower(strings.TrimSuffix(s, ".")), ".")
		if len(l) > 2 {
			l = l[len(l)-2:]
		}
		return strings.Join(l, ".")
	}
	return tail(a) == tail(b)
}

func ehloLines(server []string) []string {
	var out []string
	for _, l := range server {
		if strings.HasPrefix(l, "250") {
			out = append(out, l)
		}
	}
	return out
}

func sortStrings(s []string) { sort.Strings(s) }
