// Package smtpclient speaks one SMTP session (RFC 5321) to one server:
// connect, greeting, EHLO (HELO fallback), STARTTLS (RFC 3207), AUTH
// (RFC 4954), then any number of mail transactions, pipelined when the server
// offers PIPELINING (RFC 2920), and QUIT.
//
// Place in the flow: transport (relay or direct route) -> smtpclient.Dial ->
// Client.Send per rendered message -> *Error values -> outcome.Classify.
// It knows no campaigns, recipients lists or retry policy: every failure is
// returned as a typed *Error carrying the command, the reply code, the
// RFC 3463 enhanced code and, for I/O failures, the wrapped cause, so the
// classifier decides with errors.Is / errors.As and never by string.
//
// Every step has its own deadline (Timeouts, RFC 5321 §4.5.3.2) set once
// when the step starts, so a server trickling bytes cannot hold a session
// open past it; the message body is the exception, where each block
// written has a DataBlock deadline of its own (§4.5.3.2.5). The context
// cancels whatever is in flight.
//
// A Client is not safe for concurrent use: one goroutine drives it.
package smtpclient

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"mailout/internal/addr"
)

// TLSMode says how the session uses TLS.
type TLSMode int

const (
	// TLSNone never uses TLS.
	TLSNone TLSMode = iota
	// TLSOpportunistic uses STARTTLS when offered (RFC 7435). A failed
	// handshake returns an *Error wrapping ErrTLSHandshake, after which the
	// caller may dial again with TLSNone.
	TLSOpportunistic
	// TLSRequired fails with a "STARTTLS" *Error, before any AUTH, when
	// STARTTLS is not offered or does not succeed, so credentials never go
	// out in plaintext.
	TLSRequired
	// TLSImplicit speaks TLS from the first byte (RFC 8314, port 465).
	TLSImplicit
)

// Timeouts bounds each step of a session. A zero field takes its default.
// The defaults are RFC 5321 §4.5.3.2 where it names one: Greeting 5m, Mail
// 5m, Rcpt 5m, DataInit 2m, DataBlock 3m, DataTerm 10m. Where it does not,
// they follow Postfix: Connect 30s (smtp_connect_timeout), EHLO 5m
// (smtp_helo_timeout), StartTLS 5m (smtp_starttls_timeout), Auth 5m, Quit 5m
// (smtp_quit_timeout). RSET uses the Mail timeout.
type Timeouts struct {
	Connect, Greeting, EHLO, StartTLS, Auth, Mail, Rcpt, DataInit, DataBlock, DataTerm, Quit time.Duration
}

func (t Timeouts) withDefaults() Timeouts {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&t.Connect, 30*time.Second)
	def(&t.Greeting, 5*time.Minute)
	def(&t.EHLO, 5*time.Minute)
	def(&t.StartTLS, 5*time.Minute)
	def(&t.Auth, 5*time.Minute)
	def(&t.Mail, 5*time.Minute)
	def(&t.Rcpt, 5*time.Minute)
	def(&t.DataInit, 2*time.Minute)
	def(&t.DataBlock, 3*time.Minute)
	def(&t.DataTerm, 10*time.Minute)
	def(&t.Quit, 5*time.Minute)
	return t
}

// Config describes one session.
type Config struct {
	Addr      string // host:port to dial
	Host      string // server name for TLS verification and messages
	LocalName string // EHLO name; "localhost" when empty
	TLS       TLSMode
	// TLSConfig is used for STARTTLS and implicit TLS; it is cloned and its
	// ServerName set from Host when empty.
	TLSConfig *tls.Config
	// Username and Password are sent with AUTH when Username != "", only
	// over TLS unless AllowPlaintextAuth.
	Username, Password string
	AllowPlaintextAuth bool
	Timeouts           Timeouts
	// Dial opens the TCP connection; nil uses a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Trace, when set, receives the protocol transcript line by line
	// ("C: ..." and "S: ..."). AUTH exchanges and message bodies are
	// redacted.
	Trace func(line string)
}

// Client is one SMTP session.
type Client struct {
	cfg      Config
	to       Timeouts
	conn     net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	tlsState *tls.ConnectionState
	greeting string
	esmtp    bool
	ext      map[string]string
	broken   bool // I/O error, 421 or protocol error: not reusable
	dirty    bool // a failed transaction left state: RSET before the next
	redact   bool // inside an AUTH exchange
	// secrets are what the AUTH exchange sent (password, base64
	// responses): taken out of every reply read meanwhile, since some
	// servers echo them in their refusal.
	secrets []string
	// watching is set while watch's context.AfterFunc covers every step
	// (one SendMany call); cancelled is set by that func.
	watching  bool
	cancelled atomic.Bool
	// blockCtx is set while a message body is written: each block the
	// connection writer sends then gets a deadline of its own (DataBlock).
	blockCtx context.Context
}

// Dial connects, reads the greeting, says EHLO (HELO when EHLO gets 5xx),
// runs STARTTLS as cfg.TLS asks (then EHLO again), and authenticates when
// cfg.Username is set. On failure the connection is closed and the error is
// an *Error.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	c := &Client{cfg: cfg, to: cfg.Timeouts.withDefaults()}
	if c.cfg.LocalName == "" {
		c.cfg.LocalName = "localhost"
	}
	helo, err := EHLOName(c.cfg.LocalName)
	if err != nil {
		return nil, &Error{Command: "EHLO", Text: "unusable EHLO name: " + err.Error()}
	}
	c.cfg.LocalName = helo
	if err := c.connect(ctx); err != nil {
		return nil, err
	}
	if err := c.handshake(ctx); err != nil {
		c.abort(ctx)
		return nil, err
	}
	return c, nil
}

func (c *Client) tlsConfig() *tls.Config {
	tc := &tls.Config{}
	if c.cfg.TLSConfig != nil {
		tc = c.cfg.TLSConfig.Clone()
	}
	if tc.ServerName == "" {
		host := c.cfg.Host
		if host == "" {
			host, _, _ = net.SplitHostPort(c.cfg.Addr)
		}
		tc.ServerName = host
	}
	return tc
}

// connect dials and, for TLSImplicit, completes the TLS handshake.
func (c *Client) connect(ctx context.Context) error {
	dctx, cancel := context.WithTimeout(ctx, c.to.Connect)
	defer cancel()
	dial := c.cfg.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	conn, err := dial(dctx, "tcp", c.cfg.Addr)
	if err != nil {
		return &Error{Command: "connect", Err: withCtx(ctx, err)}
	}
	c.setConn(conn)
	if c.cfg.TLS == TLSImplicit {
		if err := c.startTLS(ctx); err != nil {
			c.conn.Close()
			return err
		}
	}
	return nil
}

func (c *Client) setConn(conn net.Conn) {
	c.conn = conn
	c.br = bufio.NewReaderSize(conn, readerSize)
	c.bw = bufio.NewWriterSize(connWriter{c}, writerSize)
}

// connWriter is where the buffered writer sends its bytes: straight to the
// connection, except while a message body is written (blockCtx set). Then
// the bytes go in blocks of at most writerSize, each under a deadline of
// DataBlock from its own start: RFC 5321 §4.5.3.2.5 times "each TCP SEND
// call transmitting a chunk of data", so a large message to a slow but
// steady server is not cut off, and a server that stops reading still is.
type connWriter struct{ c *Client }

func (w connWriter) Write(p []byte) (int, error) {
	c := w.c
	if c.blockCtx == nil {
		return c.conn.Write(p)
	}
	n := 0
	for len(p) > 0 {
		k := min(len(p), writerSize)
		c.blockDeadline()
		m, err := c.conn.Write(p[:k])
		n += m
		if err != nil {
			return n, err
		}
		p = p[k:]
	}
	return n, nil
}

// blockDeadline sets the write deadline of the next data block. Checked
// after it is set, a cancellation (blockCtx's or watch's) that came first
// still leaves the deadline in the past; one that comes later moves it
// there itself.
func (c *Client) blockDeadline() {
	d := time.Now().Add(c.to.DataBlock)
	if cd, ok := c.blockCtx.Deadline(); ok && cd.Before(d) {
		d = cd
	}
	_ = c.conn.SetWriteDeadline(d)
	if c.blockCtx.Err() != nil || (c.watching && c.cancelled.Load()) {
		_ = c.conn.SetDeadline(time.Unix(1, 0))
	}
}

// writerSize holds a typical message whole: a 20 KB body then leaves in one
// write instead of five 4 KB ones (each a system call and a wake-up of the
// server). Its memory is per session.
const writerSize = 64 << 10

// startTLS runs the client handshake over the current connection. Any
// plaintext still buffered is dropped with the old reader: bytes a server
// (or a man in the middle) sent after "220 ready" must not be read as
// replies inside TLS (RFC 3207 §5).
func (c *Client) startTLS(ctx context.Context) error {
	if n := c.br.Buffered(); n > 0 {
		c.trace(fmt.Sprintf("discarding %d bytes received in plaintext before the TLS handshake", n))
	}
	tconn := tls.Client(c.conn, c.tlsConfig())
	hctx, cancel := context.WithTimeout(ctx, c.to.StartTLS)
	defer cancel()
	if err := tconn.HandshakeContext(hctx); err != nil {
		c.broken = true
		return &Error{Command: "STARTTLS", Err: fmt.Errorf("%w: %w", ErrTLSHandshake, withCtx(ctx, err))}
	}
	st := tconn.ConnectionState()
	c.tlsState = &st
	c.setConn(tconn)
	c.ext = nil
	return nil
}

// handshake runs greeting, EHLO, STARTTLS and AUTH.
func (c *Client) handshake(ctx context.Context) error {
	r, err := c.cmd(ctx, "connect", c.to.Greeting, "")
	if err != nil {
		return err
	}
	c.greeting = r.Text()
	if r.Code != CodeReady {
		return c.replyError("connect", r)
	}
	if err := c.hello(ctx); err != nil {
		return err
	}
	if err := c.maybeStartTLS(ctx); err != nil {
		return err
	}
	if c.cfg.Username != "" {
		return c.auth(ctx)
	}
	return nil
}

// hello says EHLO and falls back to HELO when EHLO is refused with 5xx
// (RFC 5321 §4.1.1.1, §3.2).
func (c *Client) hello(ctx context.Context) error {
	r, err := c.cmd(ctx, "EHLO", c.to.EHLO, "EHLO "+c.cfg.LocalName)
	if err != nil {
		return err
	}
	if r.Code == CodeOK {
		c.esmtp = true
		c.ext = parseExtensions(r.Lines)
		return nil
	}
	if r.Code/100 != 5 {
		return c.replyError("EHLO", r)
	}
	r, err = c.cmd(ctx, "EHLO", c.to.EHLO, "HELO "+c.cfg.LocalName)
	if err != nil {
		return err
	}
	if r.Code != CodeOK {
		return c.replyError("EHLO", r)
	}
	c.esmtp = false
	c.ext = map[string]string{}
	return nil
}

// EHLOName returns the argument of EHLO and HELO (RFC 5321 §4.1.1.1) for
// a configured name, or why it cannot be one: a host
// name with its Unicode labels as A-labels (RFC 5890), or for an IP
// address an address literal (RFC 5321 §4.1.3): "[192.0.2.1]",
// "[IPv6:2001:db8::1]". A literal given in brackets is checked and kept.
func EHLOName(name string) (string, error) {
	lit, bracketed := strings.CutPrefix(name, "[")
	if bracketed {
		var ok bool
		if lit, ok = strings.CutSuffix(lit, "]"); !ok {
			return "", fmt.Errorf("%q: an address literal ends with \"]\"", name)
		}
		if len(lit) > 5 && strings.EqualFold(lit[:5], "IPv6:") {
			lit = lit[5:]
		}
	}
	if ip, err := netip.ParseAddr(lit); err == nil && ip.Zone() == "" {
		if ip = ip.Unmap(); ip.Is4() {
			return "[" + ip.String() + "]", nil
		}
		return "[IPv6:" + ip.String() + "]", nil
	}
	if bracketed {
		return "", fmt.Errorf("%q is not an address literal like [192.0.2.1] or [IPv6:2001:db8::1]", name)
	}
	return addr.HostName(name)
}

// parseExtensions reads the EHLO reply lines after the first (RFC 5321
// §4.1.1.1): keyword, optional parameters. Keywords are upper-cased; a
// repeated keyword keeps its first parameters; unknown ones are kept.
//
// Old Outlook and Exchange servers offer AUTH as "AUTH=LOGIN PLAIN", the
// form of a draft before RFC 2554; without an "AUTH" line, that is the
// AUTH offer.
func parseExtensions(lines []string) map[string]string {
	ext := map[string]string{}
	legacyAuth, hasLegacy := "", false
	for _, l := range lines[1:] {
		kw, params, _ := strings.Cut(strings.TrimSpace(l), " ")
		kw = strings.ToUpper(kw)
		if kw == "" {
			continue
		}
		if strings.HasPrefix(kw, "AUTH=") {
			if !hasLegacy {
				legacyAuth, hasLegacy = strings.TrimSpace(l)[len("AUTH="):], true
			}
			continue
		}
		if _, ok := ext[kw]; !ok {
			ext[kw] = strings.TrimSpace(params)
		}
	}
	if _, ok := ext["AUTH"]; !ok && hasLegacy {
		ext["AUTH"] = strings.TrimSpace(legacyAuth)
	}
	return ext
}

func (c *Client) maybeStartTLS(ctx context.Context) error {
	if c.cfg.TLS != TLSOpportunistic && c.cfg.TLS != TLSRequired {
		return nil
	}
	if _, ok := c.ext["STARTTLS"]; !ok {
		if c.cfg.TLS == TLSRequired {
			return &Error{Command: "STARTTLS", Text: "TLS required but the server did not offer STARTTLS"}
		}
		return nil
	}
	r, err := c.cmd(ctx, "STARTTLS", c.to.StartTLS, "STARTTLS")
	if err != nil {
		return err
	}
	if r.Code != CodeReady {
		if c.cfg.TLS == TLSRequired || r.Code == CodeServiceNotAvailable {
			return c.replyError("STARTTLS", r)
		}
		return nil // RFC 3207 §4: 454 and the like, go on in plaintext
	}
	if err := c.startTLS(ctx); err != nil {
		return err
	}
	return c.hello(ctx) // RFC 3207 §4.2: forget what was learned before TLS
}

// Extensions returns the EHLO keywords (upper-case) and their parameters.
func (c *Client) Extensions() map[string]string {
	m := make(map[string]string, len(c.ext))
	for k, v := range c.ext {
		m[k] = v
	}
	return m
}

// TLS returns the TLS connection state, if the session uses TLS.
func (c *Client) TLS() (tls.ConnectionState, bool) {
	if c.tlsState == nil {
		return tls.ConnectionState{}, false
	}
	return *c.tlsState, true
}

// AuthMechanisms returns the SASL mechanisms the server offers (RFC 4954 §3).
func (c *Client) AuthMechanisms() []string {
	return strings.Fields(strings.ToUpper(c.ext["AUTH"]))
}

// Greeting returns the text of the server's 220 banner.
func (c *Client) Greeting() string { return c.greeting }

// Usable reports whether the session can run another transaction. It is
// false after an I/O error, a 421 reply or a protocol error.
func (c *Client) Usable() bool { return !c.broken }

// Quit ends the session politely (RFC 5321 §4.1.1.10) and closes the
// connection. Its error concerns only the QUIT: a message accepted before
// stays delivered.
func (c *Client) Quit(ctx context.Context) error {
	if c.broken {
		c.conn.Close()
		return &Error{Command: "QUIT", Text: "connection not usable"}
	}
	r, err := c.cmd(ctx, "QUIT", c.to.Quit, "QUIT")
	c.broken = true
	c.conn.Close()
	if err != nil {
		return err
	}
	if r.Code != CodeClosing {
		return c.replyError("QUIT", r)
	}
	return nil
}

// Close closes the connection without QUIT.
func (c *Client) Close() error {
	c.broken = true
	return c.conn.Close()
}

// abort sends a QUIT without waiting long and closes; used when Dial fails
// after the connection was made (RFC 5321 §3.1: after a 554 greeting the
// client should QUIT).
func (c *Client) abort(ctx context.Context) {
	if !c.broken {
		qctx, cancel := context.WithTimeout(ctx, time.Second)
		_, _ = c.cmd(qctx, "QUIT", time.Second, "QUIT")
		cancel()
	}
	c.broken = true
	c.conn.Close()
}

// cmd writes line (if not empty) and reads one reply, under one deadline
// set now for the whole step.
func (c *Client) cmd(ctx context.Context, command string, timeout time.Duration, line string) (reply, error) {
	if c.broken {
		return reply{}, &Error{Command: command, Text: "connection not usable after an earlier failure"}
	}
	stop := c.deadline(ctx, timeout)
	defer stop()
	if line != "" {
		if err := c.writeLine(line); err != nil {
			return reply{}, c.ioError(ctx, command, err)
		}
		if err := c.bw.Flush(); err != nil {
			return reply{}, c.ioError(ctx, command, err)
		}
	}
	return c.read(ctx, command)
}

// read reads one reply; a 421 marks the connection unusable (RFC 5321
// §3.8: the server is closing the channel).
func (c *Client) read(ctx context.Context, command string) (reply, error) {
	r, err := readReply(c.br)
	if err != nil {
		return reply{}, c.ioError(ctx, command, err)
	}
	for i := range r.Lines {
		r.Lines[i] = redactSecrets(r.Lines[i], c.secrets)
	}
	for i, l := range r.Lines {
		if c.cfg.Trace == nil {
			break // the lines are not even formatted
		}
		sep := "-"
		if i == len(r.Lines)-1 {
			sep = " "
		}
		if i == 0 && r.Enhanced != "" {
			l = r.Enhanced + " " + l
		}
		c.trace(fmt.Sprintf("S: %d%s%s", r.Code, sep, l))
	}
	if r.Code == CodeServiceNotAvailable {
		c.broken = true
		c.conn.Close()
	}
	return r, nil
}

// readWithin reads one reply under a deadline of its own.
func (c *Client) readWithin(ctx context.Context, command string, timeout time.Duration) (reply, error) {
	stop := c.deadline(ctx, timeout)
	defer stop()
	return c.read(ctx, command)
}

func (c *Client) writeLine(line string) error {
	switch {
	case c.cfg.Trace == nil:
	case c.redact:
		c.trace("C: <redacted>")
	case strings.HasPrefix(strings.ToUpper(line), "AUTH "):
		mech, _, _ := strings.Cut(line[5:], " ")
		c.trace("C: AUTH " + mech + " <redacted>")
	default:
		c.trace("C: " + line)
	}
	if _, err := c.bw.WriteString(line); err != nil {
		return err
	}
	_, err := c.bw.WriteString("\r\n")
	return err
}

// deadline sets the connection deadline to now+timeout (or the context's
// earlier deadline) once, and arranges for a context cancellation to
// interrupt blocked I/O. The returned func must be called when the step
// ends. Under watch, the cancellation is arranged already: only the
// deadline moves.
func (c *Client) deadline(ctx context.Context, timeout time.Duration) func() {
	d := time.Now().Add(timeout)
	if cd, ok := ctx.Deadline(); ok && cd.Before(d) {
		d = cd
	}
	_ = c.conn.SetDeadline(d)
	if c.watching {
		// Set after the deadline and checked after it too: whichever of
		// this step and the cancellation comes last leaves the deadline
		// in the past.
		if c.cancelled.Load() {
			_ = c.conn.SetDeadline(time.Unix(1, 0))
		}
		return func() {}
	}
	stop := context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(time.Unix(1, 0)) })
	return func() { stop() }
}

// watch arranges once for ctx's cancellation to interrupt blocked I/O on
// every step until the returned func is called: a SendMany of many
// messages registers one context.AfterFunc instead of one per reply. Every
// step in between must run under ctx.
func (c *Client) watch(ctx context.Context) func() {
	c.cancelled.Store(false)
	c.watching = true
	stop := context.AfterFunc(ctx, func() {
		c.cancelled.Store(true)
		_ = c.conn.SetDeadline(time.Unix(1, 0))
	})
	return func() {
		stop()
		c.watching = false
	}
}

// ioError turns a read/write failure into an *Error and marks the
// connection unusable. A context error is wrapped beside the I/O error so
// that errors.Is(err, context.Canceled) and errors.As(err, **net.OpError)
// both work.
func (c *Client) ioError(ctx context.Context, command string, err error) *Error {
	c.broken = true
	c.conn.Close()
	return &Error{Command: command, Err: withCtx(ctx, err)}
}

// withCtx adds the context's error to err when the context ended.
func withCtx(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w: %w", cerr, err)
	}
	return err
}

// replyError converts a non-success reply into an *Error.
func (c *Client) replyError(command string, r reply) *Error {
	return &Error{Command: command, Code: r.Code, Enhanced: r.Enhanced, Text: r.Text()}
}

func (c *Client) trace(s string) {
	if c.cfg.Trace != nil {
		c.cfg.Trace(s)
	}
}
