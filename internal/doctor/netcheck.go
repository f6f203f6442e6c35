package doctor

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"mailout/internal/tlsconf"
)

// Codes of a TCP connect: what the guide calls "the port is blocked"
// (timeout: the SYN is dropped by a firewall, an antivirus, the gateway or
// the ISP), "connection refused" (an RST: nothing listens, or a firewall
// rejects), a reset, and no route at all.
const (
	codeConnected   = "connected"
	codeTimeout     = "timeout"
	codeRefused     = "refused"
	codeReset       = "reset"
	codeUnreachable = "unreachable"
	// codeBlockedHere: the kernel of this very machine refused to send the
	// packet (EPERM/EACCES): a firewall rule on this computer.
	codeBlockedHere = "blocked-here"
	codeError       = "error"
)

// dialCode names a dial error.
func dialCode(err error) string {
	var ne net.Error
	switch {
	case err == nil:
		return codeConnected
	case errors.Is(err, syscall.ECONNREFUSED):
		return codeRefused
	case errors.Is(err, syscall.ECONNRESET):
		return codeReset
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EACCES):
		return codeBlockedHere
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return codeUnreachable
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return codeTimeout
	}
	return codeError
}

// connect opens a TCP connection with the connect timeout and says how it
// went.
func connect(ctx context.Context, c *Config, addr string) (net.Conn, string, time.Duration, error) {
	start := c.Now()
	dctx, cancel := context.WithTimeout(ctx, c.Timeouts.Connect)
	defer cancel()
	conn, err := c.Dial(dctx, "tcp", addr)
	return conn, dialCode(err), c.Now().Sub(start), err
}

// portMode is what answers on a port, found without credentials.
type portMode struct {
	code     string // codeConnected when something SMTP-like answered, else a dial code
	implicit bool   // TLS from the first byte (RFC 8314 §3.3)
	starttls bool   // plaintext greeting, STARTTLS offered (RFC 3207)
	greeting string
	auth     []string // AUTH mechanisms offered (after TLS when there is TLS)
	evidence string
}

// probeMode finds out how a port speaks: a plaintext "220" greeting (SMTP,
// possibly with STARTTLS) or silence followed by a successful TLS handshake
// (implicit TLS). No credentials are sent; the certificate is not checked
// here, only the protocol.
func probeMode(ctx context.Context, c *Config, host, addr string) portMode {
	conn, code, took, err := connect(ctx, c, addr)
	if err != nil {
		return portMode{code: code, evidence: fmt.Sprintf("%s: %s after %s", addr, code, ms(took))}
	}
	line, rerr := readLine(conn, c.Timeouts.Greeting)
	conn.Close()
	if rerr == nil && strings.HasPrefix(line, "220") {
		m := portMode{code: codeConnected, greeting: line}
		m.starttls, m.auth = ehloProbe(ctx, c, host, addr, false)
		m.evidence = fmt.Sprintf("%s: plaintext greeting %q", addr, line)
		return m
	}
	if rerr == nil {
		return portMode{code: "not-smtp", evidence: fmt.Sprintf("%s: answered %q, not an SMTP greeting", addr, line)}
	}
	// Silence: perhaps the server waits for a TLS ClientHello.
	conn, code, _, err = connect(ctx, c, addr)
	if err != nil {
		return portMode{code: code, evidence: fmt.Sprintf("%s: %s", addr, code)}
	}
	defer conn.Close()
	tc := tls.Client(conn, &tls.Config{ServerName: host, InsecureSkipVerify: true}) //nolint:gosec // protocol probe only, no credentials
	hctx, cancel := context.WithTimeout(ctx, c.Timeouts.SMTP)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		return portMode{code: "no-greeting", evidence: fmt.Sprintf("%s: no greeting and no TLS handshake (%v)", addr, err)}
	}
	line, _ = readLine(tc, c.Timeouts.Greeting)
	m := portMode{code: codeConnected, implicit: true, greeting: line,
		evidence: fmt.Sprintf("%s: TLS from the first byte, greeting %q", addr, line)}
	_, m.auth = ehloProbe(ctx, c, host, addr, true)
	return m
}

// ehloProbe dials once more and reads the EHLO keywords: whether STARTTLS is
// offered and the AUTH mechanisms (after STARTTLS when offered: servers
// usually offer AUTH only over TLS, RFC 4954 §4).
func ehloProbe(ctx context.Context, c *Config, host, addr string, implicit bool) (starttls bool, auth []string) {
	s := newSession(c, host, addr, nil)
	s.insecureProbe = true
	if implicit {
		s.mode = modeImplicit
	} else {
		s.mode = modeOpportunistic
	}
	cl, err := s.dial(ctx)
	if err != nil {
		return false, nil
	}
	defer cl.Close()
	_, tlsOn := cl.TLS()
	return tlsOn && !implicit, cl.AuthMechanisms()
}

// readLine reads one line within d.
func readLine(conn net.Conn, d time.Duration) (string, error) {
	_ = conn.SetReadDeadline(time.Now().Add(d))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil && line == "" {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// certProblem names a certificate verification failure, "" if err is not
// one: "unknown-authority" (a self-signed certificate, or one issued by an
// interception proxy's own authority), "fingerprint-mismatch" (not the
// pinned certificate), "wrong-host", "invalid" (expired, not yet valid…).
func certProblem(err error) string {
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	var tv *tls.CertificateVerificationError
	var pm *tlsconf.PinMismatchError
	switch {
	case errors.As(err, &pm):
		return "fingerprint-mismatch"
	case errors.As(err, &ua):
		return "unknown-authority"
	case errors.As(err, &he):
		return "wrong-host"
	case errors.As(err, &ci):
		return "invalid"
	case errors.As(err, &tv):
		return "invalid"
	}
	return ""
}

// certSummary describes the leaf certificate of a TLS state.
func certSummary(st tls.ConnectionState) string {
	if len(st.PeerCertificates) == 0 {
		return tls.VersionName(st.Version)
	}
	leaf := st.PeerCertificates[0]
	return fmt.Sprintf("%s %s, certificate for %q issued by %q", tls.VersionName(st.Version),
		tls.CipherSuiteName(st.CipherSuite), leaf.Subject.CommonName, leaf.Issuer.String())
}

func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }
