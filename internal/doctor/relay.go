package doctor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"mailout/internal/mx"
	"mailout/internal/outcome"
	"mailout/internal/route"
	"mailout/internal/smtpclient"
	"mailout/internal/transport"
)

// runRelay checks every relay account in order; the report's verdict is the
// first account that works, else the first account's.
func runRelay(ctx context.Context, c *Config, r *Report) {
	if len(c.Relays) == 0 {
		r.Verdict = newVerdict(VerdictRelayProtocol, "", "")
		r.add(Finding{ID: "relay.config", Severity: Fail, Code: "no-account"})
		return
	}
	for _, acc := range c.Relays {
		v := checkRelay(ctx, c, r, acc)
		r.Accounts = append(r.Accounts, v)
	}
	r.Verdict = r.Accounts[0]
	for _, v := range r.Accounts {
		if v.ID == VerdictOK {
			r.Verdict = v
			break
		}
	}
}

// checkRelay runs the relay checks of the issue, step by step, on one
// account and returns its verdict.
func checkRelay(ctx context.Context, c *Config, r *Report, acc *transport.RelayAccount) Verdict {
	subj := acc.String() // password hidden
	verdict := func(id, suggest string) Verdict { return newVerdict(id, subj, suggest) }

	// 1. The host name resolves (NXDOMAIN: the address is wrong).
	addrs, v, done := resolveRelay(ctx, c, r, acc, subj)
	if done {
		return v
	}

	// 2. TCP connect to the port, on each address until one connects.
	var conn net.Conn
	var code string
	var addr string
	for _, a := range addrs {
		addr = net.JoinHostPort(a.String(), strconv.Itoa(acc.Port))
		var took = c.Now()
		var err error
		conn, code, _, err = connect(ctx, c, addr)
		f := r.add(Finding{ID: "relay.connect", Subject: subj, Code: code, Millis: c.Now().Sub(took).Milliseconds()})
		if err != nil {
			f.Severity = Fail
			f.Evidence = []string{fmt.Sprintf("%s: %v", addr, err)}
			continue
		}
		f.Severity = Pass
		f.Evidence = []string{fmt.Sprintf("%s: connected in %dms", addr, f.Millis)}
		break
	}
	if conn == nil {
		// 2b. The configured port fails: which usual port answers?
		if sug := probePorts(ctx, c, r, acc, addrs[0], subj); sug != "" {
			return verdict(VerdictRelayWrongPort, sug)
		}
		switch code {
		case codeTimeout, codeBlockedHere:
			return verdict(VerdictRelayBlocked, "")
		case codeUnreachable:
			return verdict(VerdictNoRoute, "")
		}
		return verdict(VerdictRelayRefused, "")
	}

	// 3. Banner, TLS, EHLO and login in one session.
	s := newSession(c, acc.Host, addr, conn)
	s.user, s.pass, s.plainAuth = acc.Username, acc.Password, acc.Insecure
	switch acc.TLS {
	case smtpclient.TLSImplicit:
		s.mode = modeImplicit
	case smtpclient.TLSNone:
		s.mode = modeNone
	default:
		s.mode = modeRequired
	}
	tc, err := acc.TLSConfig(c.RootCAs)
	if err != nil {
		r.add(Finding{ID: "relay.tls", Subject: subj, Severity: Fail, Code: "ca-file", Evidence: []string{err.Error()}})
		return verdict(VerdictRelayTLSFailed, "")
	}
	s.tlsConfig = tc
	start := c.Now()
	cl, err := s.dial(ctx)
	took := c.Now().Sub(start).Milliseconds()
	if err != nil {
		return relaySessionFailed(ctx, c, r, acc, s, addr, err, took)
	}
	defer cl.Quit(ctx) //nolint:errcheck // the diagnosis is done
	r.add(Finding{ID: "relay.banner", Subject: subj, Severity: Pass, Code: "220", Evidence: []string{cl.Greeting()}})
	if st, ok := cl.TLS(); ok {
		r.add(Finding{ID: "relay.tls", Subject: subj, Severity: Pass, Code: tlsCode(acc), Evidence: []string{certSummary(st)}})
	} else {
		r.add(Finding{ID: "relay.tls", Subject: subj, Severity: Warn, Code: "plaintext",
			Evidence: []string{"smtp+insecure://: no TLS; the password and the mail cross the network in clear text"}})
	}
	mechs := cl.AuthMechanisms()
	r.add(Finding{ID: "relay.ehlo", Subject: subj, Severity: Pass, Code: "250", Evidence: []string{ehloSummary(cl.Extensions())}})
	switch {
	case acc.Username != "":
		r.add(Finding{ID: "relay.auth", Subject: subj, Severity: Pass, Code: "235",
			Evidence: []string{"logged in as " + acc.Username + "; offered: " + strings.Join(mechs, " ")}})
	case len(mechs) > 0:
		r.add(Finding{ID: "relay.auth", Subject: subj, Severity: Skip, Code: "no-user",
			Evidence: []string{"no user name given; the server offers AUTH " + strings.Join(mechs, " ")}})
	default:
		r.add(Finding{ID: "relay.auth", Subject: subj, Severity: Skip, Code: "not-offered"})
	}

	// 4. MAIL FROM and RCPT TO a test address, then RSET: no DATA.
	from := c.From
	if from == "" {
		from = "postmaster@" + c.HELO
		if strings.Contains(acc.Username, "@") {
			from = acc.Username
		}
	}
	start = c.Now()
	err = cl.Verify(ctx, from, c.Rcpt)
	f := r.add(Finding{ID: "relay.rcpt", Subject: subj, Millis: c.Now().Sub(start).Milliseconds()})
	f.Evidence = []string{"MAIL FROM:<" + from + "> RCPT TO:<" + c.Rcpt + "> then RSET, no DATA"}
	if err == nil {
		f.Severity, f.Code = Pass, "250"
		return verdict(VerdictOK, "")
	}
	f.Severity, f.Code = Fail, replyCode(err)
	f.Evidence = append(f.Evidence, replyText(err))
	res := outcome.Classify(outcome.Attempt{Route: route.Relay, Host: acc.Host, Port: acc.Port, Err: err})
	switch res.Class {
	case outcome.AuthRequired:
		return verdict(VerdictAuthRequired, "")
	case outcome.RelayDenied:
		// The guide: "the server is there but won't talk to you: you must
		// authenticate, or you use another ISP's server". When it offers
		// AUTH and we did not log in, logging in is the fix.
		if acc.Username == "" && len(mechs) > 0 {
			return verdict(VerdictAuthRequired, "")
		}
		return verdict(VerdictRelayDenied, "")
	case outcome.SenderRejected:
		return verdict(VerdictSenderRejected, "")
	}
	if res.Kind == outcome.KindTemporary {
		f.Severity = Warn
	}
	return verdict(VerdictRelayProtocol, "")
}

// resolveRelay looks the relay's host name up (or takes its IP literal).
func resolveRelay(ctx context.Context, c *Config, r *Report, acc *transport.RelayAccount, subj string) ([]netip.Addr, Verdict, bool) {
	if ip, err := netip.ParseAddr(acc.Host); err == nil {
		r.add(Finding{ID: "relay.resolve", Subject: subj, Severity: Skip, Code: "ip-literal", Evidence: []string{ip.String()}})
		return []netip.Addr{ip}, Verdict{}, false
	}
	// RFC 6761 §6.4: ".invalid" names never exist; no query is sent.
	if h := strings.TrimSuffix(strings.ToLower(acc.Host), "."); h == "invalid" || strings.HasSuffix(h, ".invalid") {
		r.add(Finding{ID: "relay.resolve", Subject: subj, Severity: Fail, Code: string(mx.FailureNXDomain),
			Evidence: []string{acc.Host + ": the name does not exist (RFC 6761 reserves .invalid)"}})
		v := Verdict{ID: VerdictRelayHostUnknown, Subject: subj, Host: acc.Host}
		v.fill()
		return nil, v, true
	}
	res, err := mx.New(mx.Config{Servers: c.DNS, ResolvConf: c.ResolvConf, Timeout: c.Timeouts.DNS, FailureTTL: -1})
	if err != nil {
		r.add(Finding{ID: "relay.resolve", Subject: subj, Severity: Fail, Code: "no-dns-server", Evidence: []string{err.Error()}})
		return nil, newVerdict(VerdictDNSNoServer, subj, ""), true
	}
	start := c.Now()
	addrs, err := res.LookupHost(ctx, acc.Host)
	f := r.add(Finding{ID: "relay.resolve", Subject: subj, Millis: c.Now().Sub(start).Milliseconds()})
	if err == nil {
		f.Severity, f.Code = Pass, "answer"
		f.Evidence = []string{fmt.Sprintf("%s -> %v (DNS %s)", acc.Host, addrs, strings.Join(res.Servers(), ", "))}
		return addrs, Verdict{}, false
	}
	f.Severity, f.Evidence = Fail, []string{err.Error()}
	f.Code = "error"
	var me *mx.Error
	if errors.As(err, &me) {
		f.Code = string(me.Kind)
		switch me.Kind {
		case mx.FailureTimeout, mx.FailureRefused, mx.FailureServFail:
			// No answer worth the name: the DNS path, not the relay's name.
			return nil, newVerdict(VerdictRelayDNS, subj, ""), true
		}
	}
	v := Verdict{ID: VerdictRelayHostUnknown, Subject: subj, Host: acc.Host}
	v.fill()
	return nil, v, true
}

// relaySessionFailed turns a failed banner/TLS/EHLO/AUTH into findings and a
// verdict, probing the port once more to name a TLS mode mismatch.
func relaySessionFailed(ctx context.Context, c *Config, r *Report, acc *transport.RelayAccount, s *session, addr string, err error, took int64) Verdict {
	subj := acc.String()
	verdict := func(id, suggest string) Verdict { return newVerdict(id, subj, suggest) }
	var se *smtpclient.Error
	if !errors.As(err, &se) {
		se = &smtpclient.Error{Command: "connect", Err: err}
	}
	ev := append([]string{}, s.server...)
	ev = append(ev, replyText(se))
	switch se.Command {
	case "connect":
		if se.Code >= 400 {
			r.add(Finding{ID: "relay.banner", Subject: subj, Severity: Fail, Code: strconv.Itoa(se.Code), Evidence: ev, Millis: took})
			return verdict(VerdictRelayDenied, "")
		}
		// No greeting: a STARTTLS URL on an implicit-TLS port waits for
		// a greeting the server never sends (it waits for a ClientHello).
		r.add(Finding{ID: "relay.banner", Subject: subj, Severity: Fail, Code: "no-greeting", Evidence: ev, Millis: took})
		if acc.TLS != smtpclient.TLSImplicit {
			if m := probeMode(ctx, c, acc.Host, addr); m.implicit {
				r.add(Finding{ID: "relay.tls-mode", Subject: subj, Severity: Fail, Code: "implicit-tls-port", Evidence: []string{m.evidence}})
				return verdict(VerdictTLSModeMismatch, suggestURL(acc, "smtps", acc.Port))
			}
		}
		return verdict(VerdictRelayProtocol, "")
	case "STARTTLS":
		if errors.Is(err, smtpclient.ErrTLSHandshake) {
			if p := certProblem(err); p != "" {
				if leaf := peekCert(ctx, c, acc.Host, addr, acc.TLS == smtpclient.TLSImplicit); leaf != nil {
					ev = append(ev, fmt.Sprintf("certificate for %q issued by %q", leaf.Subject.CommonName, leaf.Issuer.String()))
				}
				r.add(Finding{ID: "relay.tls", Subject: subj, Severity: Fail, Code: p, Evidence: ev, Millis: took})
				if p == "unknown-authority" || p == "fingerprint-mismatch" {
					return verdict(VerdictTLSIntercepted, "")
				}
				return verdict(VerdictRelayTLSFailed, "")
			}
			if acc.TLS == smtpclient.TLSImplicit {
				// TLS from the first byte got a plaintext "220": the port
				// speaks STARTTLS (RFC 3207), the URL says implicit TLS.
				if m := probeMode(ctx, c, acc.Host, addr); m.code == codeConnected && !m.implicit {
					r.add(Finding{ID: "relay.tls-mode", Subject: subj, Severity: Fail, Code: "starttls-port", Evidence: []string{m.evidence}})
					return verdict(VerdictTLSModeMismatch, suggestURL(acc, "smtp", acc.Port))
				}
			}
		}
		r.add(Finding{ID: "relay.tls", Subject: subj, Severity: Fail, Code: tlsFailCode(se), Evidence: ev, Millis: took})
		return verdict(VerdictRelayTLSFailed, "")
	case "EHLO":
		r.add(Finding{ID: "relay.ehlo", Subject: subj, Severity: Fail, Code: replyCode(se), Evidence: ev, Millis: took})
		return verdict(VerdictRelayProtocol, "")
	case "AUTH":
		f := r.add(Finding{ID: "relay.auth", Subject: subj, Severity: Fail, Code: replyCode(se), Evidence: ev, Millis: took})
		switch {
		case se.Code == smtpclient.CodeAuthInvalid || se.Enhanced == "5.7.8": // RFC 4954 §6
			return verdict(VerdictAuthFailed, "")
		case se.Code == 0:
			f.Code = "unavailable"
			return verdict(VerdictAuthUnavailable, "")
		case se.Code == smtpclient.CodeAuthRequired || se.Code == smtpclient.CodeEncryptionRequired: // RFC 4954 §6
			return verdict(VerdictRelayTLSFailed, "")
		}
		return verdict(VerdictAuthFailed, "")
	}
	r.add(Finding{ID: "relay.session", Subject: subj, Severity: Fail, Code: replyCode(se), Evidence: ev, Millis: took})
	return verdict(VerdictRelayProtocol, "")
}

// probePorts tries the usual submission ports on the same host and returns
// the URL of the first that speaks SMTP, or "".
func probePorts(ctx context.Context, c *Config, r *Report, acc *transport.RelayAccount, ip netip.Addr, subj string) string {
	for _, p := range c.ProbePorts {
		if p == acc.Port {
			continue
		}
		addr := net.JoinHostPort(ip.String(), strconv.Itoa(p))
		m := probeMode(ctx, c, acc.Host, addr)
		f := r.add(Finding{ID: "relay.probe", Subject: addr, Code: m.code, Evidence: []string{m.evidence}})
		if m.code != codeConnected {
			f.Severity = Skip
			continue
		}
		f.Severity = Pass
		scheme := "smtps"
		switch {
		case m.implicit:
		case m.starttls:
			scheme = "smtp"
		default:
			scheme = "smtp+insecure"
		}
		if len(m.auth) > 0 {
			f.Evidence = append(f.Evidence, "AUTH "+strings.Join(m.auth, " "))
		}
		return suggestURL(acc, scheme, p)
	}
	return ""
}

// suggestURL is acc with another scheme and port, password hidden.
func suggestURL(acc *transport.RelayAccount, scheme string, port int) string {
	a := *acc
	a.Scheme, a.Port, a.Password = scheme, port, ""
	return a.String()
}

func tlsCode(acc *transport.RelayAccount) string {
	if acc.TLS == smtpclient.TLSImplicit {
		return "implicit"
	}
	return "starttls"
}

func tlsFailCode(se *smtpclient.Error) string {
	if errors.Is(se, smtpclient.ErrTLSHandshake) {
		return "handshake"
	}
	if se.Code == 0 {
		return "not-offered"
	}
	return strconv.Itoa(se.Code)
}

func replyCode(err error) string {
	var se *smtpclient.Error
	if errors.As(err, &se) && se.Code != 0 {
		return strconv.Itoa(se.Code)
	}
	return dialCode(err)
}

// replyText is the server's reply as it wrote it, or the error.
func replyText(err error) string {
	var se *smtpclient.Error
	if errors.As(err, &se) && se.Code != 0 {
		t := strconv.Itoa(se.Code)
		if se.Enhanced != "" {
			t += " " + se.Enhanced
		}
		return t + " " + strings.ReplaceAll(se.Text, "\n", " / ")
	}
	return err.Error()
}

func ehloSummary(ext map[string]string) string {
	keys := make([]string, 0, len(ext))
	for k, v := range ext {
		if v != "" {
			k += " " + v
		}
		keys = append(keys, k)
	}
	sortStrings(keys)
	return "EHLO: " + strings.Join(keys, ", ")
}
