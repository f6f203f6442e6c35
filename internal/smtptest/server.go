// Package smtptest runs an SMTP server in the same process, on loopback,
// built on github.com/emersion/go-smtp, with scripted faults: a 4xx or 5xx
// at any step, a stall, a dropped connection mid-DATA or after the body.
//
// Place in the flow: it stands where a relay or an MX would be. Tests of
// smtpclient, transport, scheduler and doctor point their SMTP traffic at
// it and read back what it received; the CLI runs it as a development sink
// where the recipient's local part picks the fault (Options.LocalPartFaults).
//
// Faults are decided by Options.Faults, called at each step ("connect",
// "mail", "rcpt", "data", "body") with an Event; a nil *Fault means normal
// behaviour. go-smtp always answers 354 to DATA once a recipient was
// accepted, so a Fault with a Code at the "data" step is given as the reply
// to the final "." (after the body was read), and Drop at "data" closes the
// connection after 354, mid-DATA.
package smtptest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// Options configures a Server. The zero value is a plain sink on
// 127.0.0.1 with a random port.
type Options struct {
	Addr   string // default "127.0.0.1:0"
	Domain string // EHLO domain, default "smtptest.localhost"
	// TLS enables STARTTLS, or TLS from the first byte with ImplicitTLS.
	TLS         *tls.Config
	ImplicitTLS bool
	// Auth maps user to password; when non-nil, AUTH is offered with
	// AuthMechanisms (default PLAIN and LOGIN; CRAM-MD5 may be listed).
	// Without TLS, AUTH is allowed in plaintext; with TLS only after
	// STARTTLS (as a real submission server does).
	Auth           map[string]string
	AuthMechanisms []string
	// RequireAuth answers MAIL before AUTH with 530 5.7.0.
	RequireAuth bool
	// RelayDomains, when set, makes RCPT to any other domain by an
	// unauthenticated client fail with 554 5.7.1 Relay access denied.
	RelayDomains []string
	// Faults is called at each step; it may be called from several
	// goroutines at once.
	Faults func(ev Event) *Fault
	// MaxMessageBytes is announced with SIZE and enforced (RFC 1870).
	MaxMessageBytes int64
	// LocalPartFaults makes the recipient's local part (before any "+tag")
	// pick the fault: "greylist" (451 4.7.1 the first time for a sender and
	// recipient, then accepted), "unknown" (550 5.1.1), "full" (452 4.2.2),
	// "ratelimit" (421 4.7.28, connection closed), "temp" (451 4.3.0),
	// "reject" (554 5.7.1 after the body), "drop" (connection dropped
	// mid-DATA), "dropafter" (connection dropped after the body, before the
	// reply), "slow" (final reply delayed by one second).
	LocalPartFaults bool
	// OnMessage, when set, is called with each accepted message instead of
	// keeping it: a long-running development sink keeps no messages.
	OnMessage func(Received)
}

// Event is one step of a session, passed to Options.Faults.
type Event struct {
	// Step is "connect", "mail", "rcpt", "data" (before the body is read)
	// or "body" (after it was read, before the reply).
	Step string
	From string
	Rcpt string // for "rcpt"
	// Count is how many times Step has happened on this server, this one
	// included (1 the first time).
	Count int
}

// Fault is what the server does instead of the normal reply.
type Fault struct {
	// Code, Enhanced and Text form the reply; a 421 closes the connection
	// after it (RFC 5321 §3.8). Code 0 means the normal reply.
	Code     int
	Enhanced string
	Text     string
	// Stall delays the reply (or, for "connect", the greeting).
	Stall time.Duration
	// Drop closes the connection without a reply ("data": after 354,
	// mid-DATA).
	Drop bool
	// DropAfterBody reads the whole body, then closes the connection
	// without answering the final "." ("data" and "body" steps).
	DropAfterBody bool
}

// Received is one accepted message.
type Received struct {
	From     string
	Rcpts    []string
	Data     []byte // exact bytes after un-dot-stuffing, CRLF line ends
	TLS      bool
	AuthUser string
	// Client is the client's address (IP:port) and HELO the name it
	// gave in EHLO or HELO.
	Client string
	HELO   string
	// At is when the message was accepted (the reply to its data).
	At time.Time
}

// Server is a running test server.
type Server struct {
	Addr string // host:port it listens on

	opt     Options
	srv     *smtp.Server
	ln      net.Listener
	handoff *chanListener
	done    chan struct{}
	wg      sync.WaitGroup

	mu        sync.Mutex
	msgs      []Received
	changed   chan struct{} // closed and replaced when msgs grows
	counts    map[string]int
	greylist  map[string]bool
	conns     int
	open      int                   // sessions open now
	peak      int                   // the most sessions open at once
	pending   map[net.Conn]struct{} // accepted, not yet handed to go-smtp
	closeOnce sync.Once
}

// TB is the part of testing.TB that Start and NewTestCert use. It is
// declared here so that the package does not import testing: the mailout
// binary runs this server as its sink, and importing testing would link the
// test framework (and its command-line flags) into the binary. A
// *testing.T or *testing.B satisfies it.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// Start starts a server for a test and stops it in t.Cleanup.
func Start(t TB, opt Options) *Server {
	t.Helper()
	s, err := New(opt)
	if err != nil {
		t.Fatalf("smtptest: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// New starts a server; Close stops it.
func New(opt Options) (*Server, error) {
	if opt.Addr == "" {
		opt.Addr = "127.0.0.1:0"
	}
	if opt.Domain == "" {
		opt.Domain = "smtptest.localhost"
	}
	if opt.Auth != nil && len(opt.AuthMechanisms) == 0 {
		opt.AuthMechanisms = []string{"PLAIN", "LOGIN"}
	}
	if opt.ImplicitTLS && opt.TLS == nil {
		return nil, errors.New("ImplicitTLS needs a TLS config")
	}
	ln, err := net.Listen("tcp", opt.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	s := &Server{
		Addr:     ln.Addr().String(),
		opt:      opt,
		ln:       ln,
		done:     make(chan struct{}),
		changed:  make(chan struct{}),
		counts:   map[string]int{},
		greylist: map[string]bool{},
		pending:  map[net.Conn]struct{}{},
	}
	s.handoff = &chanListener{addr: ln.Addr(), ch: make(chan net.Conn), done: s.done}
	srv := smtp.NewServer(&backend{s: s})
	srv.Domain = opt.Domain
	srv.MaxMessageBytes = opt.MaxMessageBytes
	srv.AllowInsecureAuth = opt.TLS == nil
	srv.EnableSMTPUTF8 = true
	srv.ErrorLog = log.New(io.Discard, "", 0)
	// RFC 5321 §4.5.3.2.7: a server waits at least 5 minutes for the next
	// command; past that an idle client is dropped.
	srv.ReadTimeout = 5 * time.Minute
	srv.WriteTimeout = time.Minute
	if !opt.ImplicitTLS {
		srv.TLSConfig = opt.TLS
	}
	s.srv = srv
	s.wg.Add(2)
	go func() { defer s.wg.Done(); _ = srv.Serve(s.handoff) }()
	go func() { defer s.wg.Done(); s.acceptLoop() }()
	return s, nil
}

// Close stops listening, closes every connection and waits for the
// server's goroutines.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		s.ln.Close()
		s.mu.Lock()
		for c := range s.pending {
			c.Close()
		}
		s.mu.Unlock()
		_ = s.srv.Close()
		s.wg.Wait()
	})
	return nil
}

// acceptLoop accepts connections, applies the "connect" fault, and hands
// the connection to go-smtp.
func (s *Server) acceptLoop() {
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns++
		s.pending[conn] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handleConnect(conn)
		}()
	}
}

func (s *Server) handleConnect(conn net.Conn) {
	defer func() {
		s.mu.Lock()
		delete(s.pending, conn)
		s.mu.Unlock()
	}()
	f := s.fault(Event{Step: "connect"})
	if f != nil {
		if !s.stall(f.Stall) {
			conn.Close()
			return
		}
		if f.Drop || f.DropAfterBody {
			conn.Close()
			return
		}
		if f.Code != 0 {
			// RFC 5321 §3.1: a server that will not talk says so in the
			// greeting; this one then closes.
			fmt.Fprintf(conn, "%s\r\n", replyLine(f.Code, f.Enhanced, f.Text, s.opt.Domain+" not accepting mail"))
			conn.Close()
			return
		}
	}
	if s.opt.ImplicitTLS {
		conn = tls.Server(conn, s.opt.TLS)
	}
	select {
	case s.handoff.ch <- conn:
	case <-s.done:
		conn.Close()
	}
}

// stall waits d, or until the server closes; false means it closed.
func (s *Server) stall(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.done:
		return false
	}
}

// fault counts the step and asks Options.Faults.
func (s *Server) fault(ev Event) *Fault {
	s.mu.Lock()
	s.counts[ev.Step]++
	ev.Count = s.counts[ev.Step]
	s.mu.Unlock()
	if s.opt.Faults == nil {
		return nil
	}
	return s.opt.Faults(ev)
}

func (s *Server) deliver(m Received) {
	if s.opt.OnMessage != nil {
		s.opt.OnMessage(m)
		return
	}
	s.mu.Lock()
	s.msgs = append(s.msgs, m)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// Messages returns a copy of the messages received so far.
func (s *Server) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.msgs...)
}

// WaitMessages returns when at least n messages were received, or with the
// context's error.
func (s *Server) WaitMessages(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		got, ch := len(s.msgs), s.changed
		s.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("smtptest: %d of %d messages: %w", got, n, ctx.Err())
		}
	}
}

// Connections returns how many connections were accepted so far.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// PeakConnections returns the most SMTP sessions that were open at once.
func (s *Server) PeakConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

// replyLine formats "code enhanced text" with defaults.
func replyLine(code int, enhanced, text, def string) string {
	if text == "" {
		text = def
	}
	if enhanced != "" {
		return fmt.Sprintf("%d %s %s", code, enhanced, text)
	}
	return fmt.Sprintf("%d %s", code, text)
}

// chanListener hands go-smtp the connections that passed the connect step.
type chanListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error   { return nil }
func (l *chanListener) Addr() net.Addr { return l.addr }

// domainOf returns the lower-case domain of an address.
func domainOf(addr string) string {
	_, d, _ := strings.Cut(addr, "@")
	return strings.ToLower(d)
}
