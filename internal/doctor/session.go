package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"strings"

	"mailout/internal/smtpclient"
	"mailout/internal/tlsconf"
)

type tlsMode int

const (
	modeNone tlsMode = iota
	modeOpportunistic
	modeRequired
	modeImplicit
)

func (m tlsMode) client() smtpclient.TLSMode {
	switch m {
	case modeOpportunistic:
		return smtpclient.TLSOpportunistic
	case modeRequired:
		return smtpclient.TLSRequired
	case modeImplicit:
		return smtpclient.TLSImplicit
	}
	return smtpclient.TLSNone
}

// session is one SMTP session of a check, with the server's lines kept as
// evidence (the client's lines are not kept: AUTH is never recorded).
type session struct {
	c          *Config
	host, addr string
	conn       net.Conn // already connected, used once; nil = dial
	mode       tlsMode
	user, pass string
	plainAuth  bool
	tlsConfig  *tls.Config
	// insecureProbe skips certificate verification: for probes that send
	// no credentials and only read what a port speaks.
	insecureProbe bool
	server        []string
}

func newSession(c *Config, host, addr string, conn net.Conn) *session {
	return &session{c: c, host: host, addr: addr, conn: conn}
}

func (s *session) dial(ctx context.Context) (*smtpclient.Client, error) {
	tc := s.tlsConfig
	if tc == nil {
		tc = tlsconf.Verified(s.host, nil)
	}
	if s.insecureProbe {
		tc = &tls.Config{ServerName: s.host, InsecureSkipVerify: true} //nolint:gosec // probe: no credentials
	}
	dial := s.c.Dial
	if conn := s.conn; conn != nil {
		s.conn = nil
		dial = func(context.Context, string, string) (net.Conn, error) { return conn, nil }
	}
	t := s.c.Timeouts.SMTP
	return smtpclient.Dial(ctx, smtpclient.Config{
		Addr: s.addr, Host: s.host, LocalName: s.c.HELO, TLS: s.mode.client(), TLSConfig: tc,
		Username: s.user, Password: s.pass, AllowPlaintextAuth: s.plainAuth,
		Timeouts: smtpclient.Timeouts{Connect: s.c.Timeouts.Connect, Greeting: s.c.Timeouts.Greeting, EHLO: t, StartTLS: t,
			Auth: t, Mail: t, Rcpt: t, Quit: t},
		Dial: dial,
		Trace: func(line string) {
			if strings.HasPrefix(line, "S: ") && len(s.server) < 64 {
				s.server = append(s.server, strings.TrimPrefix(line, "S: "))
			}
		},
	})
}

// greeting returns the first greeting line the server sent, if any.
func (s *session) greeting() string {
	if len(s.server) > 0 && strings.HasPrefix(s.server[0], "220") {
		return s.server[0]
	}
	return ""
}

// peekCert completes a TLS handshake without verification to show which
// certificate the server presents (evidence for an interception verdict).
func peekCert(ctx context.Context, c *Config, host, addr string, implicit bool) *x509.Certificate {
	if chain := peekChain(ctx, c, host, addr, implicit); len(chain) > 0 {
		return chain[0]
	}
	return nil
}

// peekChain is peekCert with the whole chain the server sent, leaf first.
func peekChain(ctx context.Context, c *Config, host, addr string, implicit bool) []*x509.Certificate {
	s := newSession(c, host, addr, nil)
	s.insecureProbe = true
	s.mode = modeRequired
	if implicit {
		s.mode = modeImplicit
	}
	cl, err := s.dial(ctx)
	if err != nil {
		return nil
	}
	defer cl.Close()
	st, ok := cl.TLS()
	if !ok || len(st.PeerCertificates) == 0 {
		return nil
	}
	return st.PeerCertificates
}
