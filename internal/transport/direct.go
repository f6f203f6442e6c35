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
	// together; default 64.
	MaxIdle int
	// IdleTimeout: a session unused longer is not reused; default 30 s.
	IdleTimeout time.Duration
	// DownFor: after a host could not be reached, it is not dialled again
	// for this long (RELIABILITY.md #13 "down cache"); default 1 minute.
	DownFor  time.Duration
	Timeouts smtpclient.Timeouts
	Dial     func(ctx context.Context, network, addr string) (net.Conn, error)
	Logger   *slog.Logger
	Now      func() time.Time
}

// Direct is the direct route: MX lookup per recipient domain (cached by the
// resolver), then SMTP to the MX hosts in preference order with
// opportunistic STARTTLS (RFC 7435), several messages per session.
type Direct struct {
	cfg DirectConfig

	mu    sync.Mutex
	idle  map[string][]*session // by host address "ip:port"
	nIdle int
	down  map[string]downEntry
	// noTLS remembers hosts whose TLS handshake failed: they are spoken to
	// in plaintext for the rest of the run (RELIABILITY.md #44).
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
	if cfg.MaxIdle <= 0 {
		cfg.MaxIdle = 64
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
	return &Direct{cfg: cfg, idle: map[string][]*session{}, down: map[string]downEntry{}, noTLS: map[string]bool{}}, nil
}

// Deliver looks up the recipient domain's mail servers and tries them in
// order (RFC 5321 §5.1) until one answers the transaction.
func (d *Direct) Deliver(ctx context.Context, m *Message) Result {
	hosts, err := d.cfg.Resolver.Lookup(ctx, m.Domain)
	if err != nil {
		res := outcome.Classify(outcome.Attempt{Route: "direct", Step: outcome.StepResolve, Host: m.Domain, Err: err})
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
			res, next := d.deliverTo(ctx, h.Name, a, addr, m)
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
// MX host should be tried within the same attempt.
func (d *Direct) deliverTo(ctx context.Context, host string, ip netip.Addr, addr string, m *Message) (Result, bool) {
	via := "direct:" + host
	for try := 0; ; try++ {
		s, reused, err := d.get(ctx, host, addr)
		if err != nil {
			res := d.classify(host, err, outcome.StepConnect)
			var se *smtpclient.Error
			if errors.As(err, &se) && se.Code == 0 && (se.Command == "connect" || se.Command == "") {
				d.markDown(addr, res)
			}
			// Any failure before the transaction is the host's: next MX
			// (RELIABILITY.md #13, #14, #16: a 5xx greeting is no bounce).
			return Result{Result: res, Via: via}, true
		}
		rcpts, err := s.c.Send(ctx, m.From, []string{m.To}, m.Data,
			smtpclient.SendOptions{SMTPUTF8: m.SMTPUTF8, Size: len(m.Data)})
		if err == nil && len(rcpts) == 1 && rcpts[0].Err != nil {
			err = rcpts[0].Err
		}
		s.sent++
		s.lastUsed = d.cfg.Now()
		d.put(ctx, addr, s)
		var se *smtpclient.Error
		if reused && try == 0 && errors.As(err, &se) && se.Command == "MAIL" && se.Code == 0 {
			continue // the server closed the idle session; nothing was sent
		}
		res := d.classify(host, err, outcome.StepMail)
		if _, ok := s.c.TLS(); !ok && res.Class == outcome.Delivered && d.tlsFallback(addr) {
			res.Reason = "delivered without TLS: the TLS handshake with this host failed earlier"
		}
		return Result{Result: res, Via: via}, false
	}
}

func (d *Direct) classify(host string, err error, step outcome.Step) outcome.Result {
	res := outcome.Classify(outcome.Attempt{Route: "direct", Step: step, Host: host, Port: d.cfg.Port, Err: err})
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

// get returns an idle session to addr or dials one: opportunistic STARTTLS,
// and plaintext when the handshake fails (RFC 7435; RELIABILITY.md #44).
func (d *Direct) get(ctx context.Context, host, addr string) (*session, bool, error) {
	d.mu.Lock()
	for len(d.idle[addr]) > 0 {
		l := d.idle[addr]
		s := l[len(l)-1]
		d.idle[addr] = l[:len(l)-1]
		d.nIdle--
		if s.c.Usable() && d.cfg.Now().Sub(s.lastUsed) < d.cfg.IdleTimeout {
			d.mu.Unlock()
			return s, true, nil
		}
		d.mu.Unlock()
		d.discard(ctx, s)
		d.mu.Lock()
	}
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
		return nil, false, err
	}
	return &session{c: c, lastUsed: d.cfg.Now()}, false, nil
}

// put keeps a session for the next message to the same host.
func (d *Direct) put(ctx context.Context, addr string, s *session) {
	if !s.c.Usable() || (d.cfg.PerConnection > 0 && s.sent >= d.cfg.PerConnection) {
		d.discard(ctx, s)
		return
	}
	d.mu.Lock()
	if d.nIdle >= d.cfg.MaxIdle {
		d.mu.Unlock()
		d.discard(ctx, s)
		return
	}
	d.idle[addr] = append(d.idle[addr], s)
	d.nIdle++
	d.mu.Unlock()
}

func (d *Direct) discard(ctx context.Context, s *session) {
	if s.c.Usable() {
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = s.c.Quit(qctx)
		cancel()
	}
	_ = s.c.Close()
}

// Close ends every idle session with QUIT.
func (d *Direct) Close() error {
	d.mu.Lock()
	all := d.idle
	d.idle = map[string][]*session{}
	d.nIdle = 0
	d.mu.Unlock()
	for _, l := range all {
		for _, s := range l {
			d.discard(context.Background(), s)
		}
	}
	return nil
}

var _ Transport = (*Direct)(nil)
