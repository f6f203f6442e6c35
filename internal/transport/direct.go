package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"mailout/internal/mx"
	"mailout/internal/outcome"
	"mailout/internal/route"
	"mailout/internal/smtpclient"
)

// MXResolver finds the mail servers of a domain (internal/mx).
type MXResolver interface {
	Lookup(ctx context.Context, domain string) ([]mx.Host, error)
}

// DirectConfig configures the direct route.
type DirectConfig struct {
	Resolver MXResolver
	// LocalName is the EHLO name: this machine's fully qualified name.
	LocalName string
	// Port is 25 (RFC 5321 §4.5.4); tests use another.
	Port int
	// PerConnection caps the messages sent on one session (0 = no cap).
	PerConnection int
	// MaxIdle caps the sessions kept open between messages, all hosts
	// together; default 64. Negative keeps none: every session ends when
	// its message or group is done (a fleet counting connections across
	// workers, internal/fleet, needs an idle session not to outlive the
	// slot it was opened under).
	MaxIdle int
	// MaxPerHost caps the sessions open at once to one MX host address,
	// whatever the recipient domain: many domains share one provider's MX
	// (Postfix's destination concurrency is per next hop too). Default 5.
	MaxPerHost int
	// IdleTimeout: a session unused longer is not reused; default 30 s.
	IdleTimeout time.Duration
	// DownFor: after a host could not be reached, it is not dialled again
	// for this long (the down cache); default 1 minute.
	DownFor  time.Duration
	Timeouts smtpclient.Timeouts
	Dial     func(ctx context.Context, network, addr string) (net.Conn, error)
	// LocalAddr, when set and Dial is not, is the source address of
	// every connection: a worker of a fleet sends from its own IP (the
	// one its HELO name and the sender's SPF record name).
	LocalAddr net.IP
	Logger    *slog.Logger
	Now       func() time.Time
}

// Direct is the direct route: MX lookup per recipient domain (cached by the
// resolver), then SMTP to the MX hosts in preference order with
// opportunistic STARTTLS (RFC 7435), several messages per session.
type Direct struct {
	cfg DirectConfig

	pool *sessionPool // by host address "ip:port"

	mu   sync.Mutex
	down map[string]downEntry
	// noTLS remembers hosts whose TLS handshake failed: they are spoken to
	// in plaintext for the rest of the run.
	noTLS map[string]bool
}

type downEntry struct {
	until time.Time
	res   outcome.Result
}

// NewDirect returns the direct route.
func NewDirect(cfg DirectConfig) (*Direct, error) {
	if cfg.Resolver == nil {
		return nil, errors.New("direct route: no resolver")
	}
	if cfg.Port == 0 {
		cfg.Port = 25
	}
	if cfg.LocalAddr != nil && cfg.Dial == nil {
		cfg.Dial = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: cfg.LocalAddr}}).DialContext
	}
	if cfg.MaxIdle == 0 {
		cfg.MaxIdle = 64
	}
	if cfg.MaxPerHost <= 0 {
		cfg.MaxPerHost = 5
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 30 * time.Second
	}
	if cfg.DownFor <= 0 {
		cfg.DownFor = time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Direct{cfg: cfg, pool: newSessionPool(cfg.MaxPerHost, cfg.MaxIdle, cfg.IdleTimeout, cfg.Now),
		down: map[string]downEntry{}, noTLS: map[string]bool{}}, nil
}

// Deliver looks up the recipient domain's mail servers and tries them in
// order (RFC 5321 §5.1) until one answers the transaction.
func (d *Direct) Deliver(ctx context.Context, m *Message) Result {
	return d.deliver(ctx, m, false)
}

// deliver is Deliver; fresh says m had its retry on a fresh session
// already and must go on a new one (retryFresh).
func (d *Direct) deliver(ctx context.Context, m *Message, fresh bool) Result {
	hosts, err := d.cfg.Resolver.Lookup(ctx, m.Domain)
	if err != nil {
		res := outcome.Classify(outcome.Attempt{Route: route.Direct, Step: outcome.StepResolve, Host: m.Domain, Err: err})
		return Result{Result: res, Via: "direct"}
	}
	var last Result
	tried := 0
	for _, h := range hosts {
		for _, a := range h.Addrs {
			addr := net.JoinHostPort(a.String(), strconv.Itoa(d.cfg.Port))
			if res, down := d.isDown(addr); down {
				last = Result{Result: res, Via: "direct:" + h.Name}
				continue
			}
			tried++
			res, next := d.deliverTo(ctx, h.Name, a, addr, m, fresh)
			if !next {
				return res
			}
			last = res
			if ctx.Err() != nil {
				return last
			}
		}
	}
	if tried > 1 && last.Text != "" {
		last.Text = fmt.Sprintf("no mail server of %s could be used (%d tried); last: %s", m.Domain, tried, last.Text)
	}
	return last
}

// deliverTo makes the attempt on one host address. next reports that the
// failure was the host's (unreachable, refused the session), so the next
// MX host should be tried within the same attempt. With fresh the session
// is a new one, and m gets no further retry on another (retryFresh).
func (d *Direct) deliverTo(ctx context.Context, host string, ip netip.Addr, addr string, m *Message, fresh bool) (Result, bool) {
	via := "direct:" + host
	retried := map[int]bool{0: fresh}
	for {
		s, reused, err := d.get(ctx, host, addr, fresh)
		if err != nil {
			res := d.classify(host, err, outcome.StepConnect)
			var se *smtpclient.Error
			if errors.As(err, &se) && se.Code == 0 && (se.Command == "connect" || se.Command == "") {
				d.markDown(addr, res)
			}
			// Any failure before the transaction is the host's: next MX
			// (a 5xx greeting is no bounce).
			return Result{Result: res, Via: via}, true
		}
		err = txError(s.c.SendMany(ctx, transactions([]*Message{m}, []int{0}), nil)[0])
		s.sent++
		s.lastUsed = d.cfg.Now()
		d.put(ctx, addr, s)
		if retryFresh(ctx, reused, retried, 0, err) {
			fresh = true // the session ended at MAIL; nothing was sent
			continue
		}
		return Result{Result: d.result(host, addr, s, err), Via: via}, false
	}
}

// result classifies the outcome of one message sent on s, noting a
// delivery made without TLS because the handshake with addr failed.
func (d *Direct) result(host, addr string, s *session, err error) outcome.Result {
	res := d.classify(host, err, outcome.StepMail)
	if _, ok := s.c.TLS(); !ok && res.Class == outcome.Delivered && d.tlsFallback(addr) {
		res.Reason = "delivered without TLS: the TLS handshake with this host failed earlier"
	}
	return res
}

func (d *Direct) classify(host string, err error, step outcome.Step) outcome.Result {
	res := outcome.Classify(outcome.Attempt{Route: route.Direct, Step: step, Host: host, Port: d.cfg.Port, Err: err})
	if res.Host == "" {
		res.Host = host
	}
	return res
}

func (d *Direct) isDown(addr string) (outcome.Result, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.down[addr]
	if !ok {
		return outcome.Result{}, false
	}
	if d.cfg.Now().After(e.until) {
		delete(d.down, addr)
		return outcome.Result{}, false
	}
	return e.res, true
}

func (d *Direct) markDown(addr string, res outcome.Result) {
	d.mu.Lock()
	d.down[addr] = downEntry{until: d.cfg.Now().Add(d.cfg.DownFor), res: res}
	d.mu.Unlock()
}

func (d *Direct) tlsFallback(addr string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.noTLS[addr]
}

// get returns a session to addr from the pool (see sessionPool.get),
// dialling with opportunistic STARTTLS, and plaintext when the handshake
// fails (RFC 7435).
func (d *Direct) get(ctx context.Context, host, addr string, fresh bool) (*session, bool, error) {
	return d.pool.get(ctx, addr, fresh, func(ctx context.Context) (*session, error) { return d.dial(ctx, host, addr) })
}

func (d *Direct) dial(ctx context.Context, host, addr string) (*session, error) {
	d.mu.Lock()
	noTLS := d.noTLS[addr]
	d.mu.Unlock()
	cfg := smtpclient.Config{
		Addr: addr, Host: host, LocalName: d.cfg.LocalName, TLS: smtpclient.TLSOpportunistic,
		// Opportunistic TLS does not authenticate the server (RFC 7435
		// §1.3): a self-signed or expired certificate still gets TLS.
		TLSConfig: &tls.Config{ServerName: host, InsecureSkipVerify: true, MinVersion: tls.VersionTLS10},
		Timeouts:  d.cfg.Timeouts, Dial: d.cfg.Dial,
	}
	if noTLS {
		cfg.TLS = smtpclient.TLSNone
	}
	c, err := smtpclient.Dial(ctx, cfg)
	if err != nil && !noTLS && errors.Is(err, smtpclient.ErrTLSHandshake) {
		d.cfg.Logger.Info("TLS handshake failed; delivering to this host without TLS", "mx_host", host, "addr", addr, "err", err)
		d.mu.Lock()
		d.noTLS[addr] = true
		d.mu.Unlock()
		cfg.TLS = smtpclient.TLSNone
		c, err = smtpclient.Dial(ctx, cfg)
	}
	if err != nil {
		return nil, err
	}
	return &session{c: c, lastUsed: d.cfg.Now()}, nil
}

// put gives a session back to the pool for the next message to addr.
func (d *Direct) put(ctx context.Context, addr string, s *session) {
	d.pool.put(ctx, addr, s, d.cfg.PerConnection)
}

// Close ends every idle session with QUIT; sessions in use are ended when
// they come back.
func (d *Direct) Close() error {
	d.pool.closeIdle(context.Background(), "", true)
	return nil
}

var _ Transport = (*Direct)(nil)
