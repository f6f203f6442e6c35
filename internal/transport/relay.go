package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"strconv"
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
	// MaxIdle caps the sessions kept open between messages, all accounts
	// together (0 = only MaxConns bounds them). Negative keeps none, as
	// DirectConfig.MaxIdle.
	MaxIdle int
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
	pool     *sessionPool // by account (relayAccount.key)
}

type relayAccount struct {
	acc *RelayAccount
	tls *tls.Config
	key string // the account's sessions in the pool
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
	r := &Relay{cfg: cfg, pool: newSessionPool(cfg.MaxConns, cfg.MaxIdle, cfg.IdleTimeout, cfg.Now)}
	for i, a := range cfg.Accounts {
		tc, err := a.TLSConfig(cfg.RootCAs)
		if err != nil {
			return nil, err
		}
		r.accounts = append(r.accounts, &relayAccount{acc: a, tls: tc, key: strconv.Itoa(i)})
	}
	return r, nil
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

// get returns a session of account a from the pool (see sessionPool.get).
func (r *Relay) get(ctx context.Context, a *relayAccount, fresh bool) (*session, bool, error) {
	return r.pool.get(ctx, a.key, fresh, func(ctx context.Context) (*session, error) {
		c, err := smtpclient.Dial(ctx, r.clientConfig(a))
		if err != nil {
			return nil, err
		}
		return &session{c: c, lastUsed: r.cfg.Now()}, nil
	})
}

// put gives a session of account a back to the pool, or ends it when it
// is spent.
func (r *Relay) put(ctx context.Context, a *relayAccount, s *session) {
	r.pool.put(ctx, a.key, s, r.cfg.PerConnection)
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
	r.pool.closeIdle(context.Background(), "", true)
	return nil
}

var _ Transport = (*Relay)(nil)
