package transport

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"mailout/internal/outcome"
	"mailout/internal/route"
	"mailout/internal/smtpclient"
)

// RelayConfig configures the relay route.
type RelayConfig struct {
	// Accounts are tried in order: the next takes over when one fails for
	// a reason local to that account (credentials, relay denied,
	// unreachable, TLS).
	Accounts []*RelayAccount
	// LocalName is the EHLO name.
	LocalName string
	// MaxConns caps the sessions open at once per account.
	MaxConns int
	// PerConnection caps the messages sent on one session (0 = no cap).
	PerConnection int
	// RootCAs overrides the system roots for every account without its own
	// CA file (e.g. --relay-ca). nil = system roots (SSL_CERT_FILE honoured
	// by crypto/x509).
	RootCAs  *x509.CertPool
	Timeouts smtpclient.Timeouts
	// IdleTimeout: a pooled session unused for longer is closed rather than
	// reused (servers drop idle clients; Postfix after 300 s). Default 30 s.
	IdleTimeout time.Duration
	Dial        func(ctx context.Context, network, addr string) (net.Conn, error)
	Logger      *slog.Logger
	Now         func() time.Time
}

// Relay is the relay route: a pool of SMTP sessions per account, several
// messages per session.
type Relay struct {
	cfg      RelayConfig
	accounts []*relayAccount
	active   atomic.Int32
}

type relayAccount struct {
	acc    *RelayAccount
	tls    *tls.Config
	idle   chan *session
	slots  chan struct{} // one token per open session
	closed atomic.Bool
}

type session struct {
	c        *smtpclient.Client
	sent     int
	lastUsed time.Time
}

// quitTimeout bounds the QUIT of a session that is done: its messages are
// recorded already, so waiting the RFC's 5 minutes would only hold a slot.
const quitTimeout = 5 * time.Second

// end closes the session, with QUIT when it can still talk. A failing QUIT
// changes nothing about what was sent.
func (s *session) end(ctx context.Context) {
	if s.c.Usable() {
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), quitTimeout)
		_ = s.c.Quit(qctx)
		cancel()
	}
	_ = s.c.Close()
}

// NewRelay checks the accounts' TLS settings and returns the route. No
// connection is made until the first Deliver.
func NewRelay(cfg RelayConfig) (*Relay, error) {
	if len(cfg.Accounts) == 0 {
		return nil, errors.New("relay route: no relay account given (--relay smtp://user:pass@host:587)")
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 1
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Relay{cfg: cfg}
	for _, a := range cfg.Accounts {
		tc, err := tlsConfigFor(a, cfg.RootCAs)
		if err != nil {
			return nil, err
		}
		r.accounts = append(r.accounts, &relayAccount{
			acc: a, tls: tc,
			idle:  make(chan *session, cfg.MaxConns),
			slots: make(chan struct{}, cfg.MaxConns),
		})
	}
	return r, nil
}

// tlsConfigFor builds the TLS settings of one account: the system roots (or
// the given pool, or the account's CA file), or exactly one certificate by
// its SHA-256 fingerprint.
func tlsConfigFor(a *RelayAccount, roots *x509.CertPool) (*tls.Config, error) {
	tc := &tls.Config{ServerName: a.Host, MinVersion: tls.VersionTLS12, RootCAs: roots}
	if a.CAFile != "" {
		pool, err := LoadCAFile(a.CAFile)
		if err != nil {
			return nil, err
		}
		tc.RootCAs = pool
	}
	if len(a.Fingerprint) > 0 {
		want := a.Fingerprint
		// The chain is not checked against any root: the user pinned this
		// very certificate, which is stronger for a self-signed relay.
		tc.InsecureSkipVerify = true
		tc.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errors.New("the server sent no certificate")
			}
			got := sha256.Sum256(raw[0])
			if !bytes.Equal(got[:], want) {
				return fmt.Errorf("certificate fingerprint sha256:%x does not match the pinned one", got)
			}
			return nil
		}
	}
	return tc, nil
}

// Deliver sends m through the first account that works.
func (r *Relay) Deliver(ctx context.Context, m *Message) Result {
	return r.DeliverBatch(ctx, []*Message{m}, nil)[0]
}

// accountFault: the failure is the account's or its server's, not the
// recipient's, so another account may do better.
func accountFault(r outcome.Result) bool {
	switch r.Class {
	case outcome.AuthRequired, outcome.AuthFailed, outcome.RelayDenied,
		outcome.ConnectRefused, outcome.ConnectTimeout, outcome.NetworkUnreachable,
		outcome.DNSNXDomain, outcome.DNSUnreachable, outcome.TLSFailed:
		return true
	}
	return false
}

func (r *Relay) classify(a *relayAccount, err error, step outcome.Step) outcome.Result {
	res := outcome.Classify(outcome.Attempt{Route: route.Relay, Step: step, Host: a.acc.Host, Port: a.acc.Port, Err: err})
	if res.Host == "" {
		res.Host = a.acc.Host
	}
	return res
}

// get returns an idle session or dials a new one within the account's cap.
// With fresh it always dials: when every slot is held by an idle session,
// one of them is ended to make room.
func (r *Relay) get(ctx context.Context, a *relayAccount, fresh bool) (*session, bool, error) {
	usable := func(s *session) bool {
		return !fresh && s.c.Usable() && r.cfg.Now().Sub(s.lastUsed) < r.cfg.IdleTimeout
	}
	for {
		if fresh {
			select {
			case a.slots <- struct{}{}:
				return r.dial(ctx, a)
			default:
			}
		} else {
			select { // an idle session comes first
			case s := <-a.idle:
				if usable(s) {
					return s, true, nil
				}
				r.discard(ctx, a, s)
				continue
			default:
			}
		}
		select {
		case s := <-a.idle:
			if usable(s) {
				return s, true, nil
			}
			r.discard(ctx, a, s)
		case a.slots <- struct{}{}:
			return r.dial(ctx, a)
		case <-ctx.Done():
			return nil, false, &smtpclient.Error{Command: "connect", Err: ctx.Err()}
		}
	}
}

// dial opens a session in a slot the caller took.
func (r *Relay) dial(ctx context.Context, a *relayAccount) (*session, bool, error) {
	c, err := smtpclient.Dial(ctx, r.clientConfig(a))
	if err != nil {
		<-a.slots
		return nil, false, err
	}
	return &session{c: c, lastUsed: r.cfg.Now()}, false, nil
}

// put returns a session to the pool, or ends it when it is spent.
func (r *Relay) put(ctx context.Context, a *relayAccount, s *session) {
	if !s.c.Usable() || a.closed.Load() || (r.cfg.PerConnection > 0 && s.sent >= r.cfg.PerConnection) {
		r.discard(ctx, a, s)
		return
	}
	select {
	case a.idle <- s:
	default:
		r.discard(ctx, a, s)
	}
}

// discard ends a session and frees its slot.
func (r *Relay) discard(ctx context.Context, a *relayAccount, s *session) {
	s.end(ctx)
	<-a.slots
}

func (a *relayAccount) closeIdle(ctx context.Context) {
	for {
		select {
		case s := <-a.idle:
			s.end(ctx)
			<-a.slots
		default:
			return
		}
	}
}

func (r *Relay) clientConfig(a *relayAccount) smtpclient.Config {
	return smtpclient.Config{
		Addr:               a.acc.Addr(),
		Host:               a.acc.Host,
		LocalName:          r.cfg.LocalName,
		TLS:                a.acc.TLS,
		TLSConfig:          a.tls,
		Username:           a.acc.Username,
		Password:           a.acc.Password,
		AllowPlaintextAuth: a.acc.Insecure,
		Timeouts:           r.cfg.Timeouts,
		Dial:               r.cfg.Dial,
	}
}

// Close ends every pooled session with QUIT.
func (r *Relay) Close() error {
	for _, a := range r.accounts {
		a.closed.Store(true)
		a.closeIdle(context.Background())
	}
	return nil
}

var _ Transport = (*Relay)(nil)
