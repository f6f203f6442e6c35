// Package pop3 is a small POP3 client (RFC 1939) with STLS (RFC 2595):
// what reading a bounce mailbox needs — log in, list the messages with
// their unique ids (UIDL), fetch one (RETR), quit. It never deletes.
//
// It is written here rather than taken from a library: the protocol part
// used is a few commands, and the maintained POP3 libraries for Go either
// lack STLS or pull in far more than this.
package pop3

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// ErrServer is wrapped by the errors of a command the server answered
// with -ERR.
var ErrServer = errors.New("pop3: the server refused")

// ErrNoSTLS is returned by StartTLS when the server does not offer STLS.
var ErrNoSTLS = errors.New("pop3: the server does not offer STLS")

// ErrProtocol is wrapped by the errors of a malformed answer.
var ErrProtocol = errors.New("pop3: malformed answer")

// MaxMessage is Retr's default size limit.
const MaxMessage = 32 << 20

// Client is one POP3 session.
type Client struct {
	conn    net.Conn
	r       *bufio.Reader
	timeout time.Duration
}

// Dial connects to addr and reads the greeting. With tc set the
// connection is TLS from the start (POP3S, RFC 8314 §3.3).
func Dial(ctx context.Context, addr string, tc *tls.Config, timeout time.Duration) (*Client, error) {
	if timeout <= 0 {
		timeout = time.Minute
	}
	d := &net.Dialer{Timeout: timeout}
	var conn net.Conn
	var err error
	if tc != nil {
		td := &tls.Dialer{NetDialer: d, Config: tc}
		conn, err = td.DialContext(ctx, "tcp", addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	c := &Client{conn: conn, r: bufio.NewReader(conn), timeout: timeout}
	// RFC 1939 §4: the server greets with +OK.
	if _, err := c.status(); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// Close closes the connection without QUIT.
func (c *Client) Close() error { return c.conn.Close() }

func (c *Client) cmd(format string, args ...any) (string, error) {
	_ = c.conn.SetDeadline(time.Now().Add(c.timeout))
	if _, err := fmt.Fprintf(c.conn, format+"\r\n", args...); err != nil {
		return "", err
	}
	return c.status()
}

// status reads a status line: "+OK text" or "-ERR text".
func (c *Client) status() (string, error) {
	_ = c.conn.SetDeadline(time.Now().Add(c.timeout))
	line, err := c.line()
	if err != nil {
		return "", err
	}
	switch {
	case strings.HasPrefix(line, "+OK"):
		return strings.TrimSpace(line[3:]), nil
	case strings.HasPrefix(line, "-ERR"):
		return "", fmt.Errorf("%w: %s", ErrServer, clean(strings.TrimSpace(line[4:])))
	}
	return "", fmt.Errorf("%w: %q", ErrProtocol, clean(line))
}

func (c *Client) line() (string, error) {
	b, err := c.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return "", fmt.Errorf("%w: line too long", ErrProtocol)
	}
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// multi reads a multi-line answer up to the lone "." (RFC 1939 §3),
// undoing the dot-stuffing. An answer over limit bytes is read to its end
// all the same, so the session stays usable, up to drainLimit: its first
// limit bytes come back with an error wrapping ErrTooLarge. A longer one
// closes the connection (the session is lost, and the error says so).
func (c *Client) multi(limit int) ([]byte, error) {
	var out bytes.Buffer
	total, lineStart := 0, true
	for {
		_ = c.conn.SetDeadline(time.Now().Add(c.timeout))
		// ReadSlice, not ReadBytes: a line without an end is read in
		// pieces of the buffer's size and counted, never held whole.
		b, err := c.r.ReadSlice('\n')
		whole := err == nil
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
		if lineStart && whole && (bytes.Equal(b, []byte(".\r\n")) || bytes.Equal(b, []byte(".\n"))) {
			if total > limit {
				return out.Bytes(), &TooLargeError{Size: total, Limit: limit}
			}
			return out.Bytes(), nil
		}
		if lineStart && b[0] == '.' {
			b = b[1:]
		}
		lineStart = whole
		total += len(b)
		if total > drainLimit(limit) {
			c.conn.Close()
			return out.Bytes(), &TooLargeError{Size: total, Limit: limit, Lost: true}
		}
		if room := limit - out.Len(); room > 0 {
			out.Write(b[:min(len(b), room)])
		}
	}
}

// drainLimit is how much of an answer over limit is read and dropped to
// keep the session: beyond it the connection is closed instead.
func drainLimit(limit int) int { return min(16*limit, 1<<30) }

// ErrTooLarge is wrapped by the error of an answer over its size limit.
var ErrTooLarge = errors.New("pop3: answer over the size limit")

// TooLargeError is an answer over its size limit: Size bytes (at least;
// all of them unless Lost) against Limit.
type TooLargeError struct {
	Size, Limit int
	// Lost: the answer was not read to its end and the connection is
	// closed.
	Lost bool
}

func (e *TooLargeError) Error() string {
	if e.Lost {
		return fmt.Sprintf("pop3: answer over %d bytes, the limit is %d: not read to its end, the session is closed", e.Size, e.Limit)
	}
	return fmt.Sprintf("pop3: answer of %d bytes, the limit is %d", e.Size, e.Limit)
}

func (e *TooLargeError) Unwrap() error { return ErrTooLarge }

// StartTLS upgrades the session (RFC 2595 §4: STLS, then the handshake).
func (c *Client) StartTLS(tc *tls.Config) error {
	caps, err := c.Capabilities()
	if err != nil || !caps["STLS"] {
		return ErrNoSTLS
	}
	if _, err := c.cmd("STLS"); err != nil {
		return err
	}
	tconn := tls.Client(c.conn, tc)
	_ = tconn.SetDeadline(time.Now().Add(c.timeout))
	if err := tconn.Handshake(); err != nil {
		return err
	}
	c.conn, c.r = tconn, bufio.NewReader(tconn)
	return nil
}

// Capabilities asks CAPA (RFC 2449); a server without it has none.
func (c *Client) Capabilities() (map[string]bool, error) {
	caps := map[string]bool{}
	if _, err := c.cmd("CAPA"); err != nil {
		if errors.Is(err, ErrServer) {
			return caps, nil
		}
		return nil, err
	}
	b, err := c.multi(64 << 10)
	if err != nil {
		return nil, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			caps[strings.ToUpper(f[0])] = true
		}
	}
	return caps, nil
}

// Login sends USER and PASS (RFC 1939 §7). The password appears in no
// error.
func (c *Client) Login(user, pass string) error {
	if strings.ContainsAny(user+pass, "\r\n") {
		return fmt.Errorf("%w: user or password with a line break", ErrProtocol)
	}
	if _, err := c.cmd("USER %s", user); err != nil {
		return err
	}
	_, err := c.cmd("PASS %s", pass)
	return err
}

// Message is one message of the maildrop.
type Message struct {
	Num int
	UID string
}

// UIDL lists the messages with their unique ids (RFC 1939 §7).
func (c *Client) UIDL() ([]Message, error) {
	if _, err := c.cmd("UIDL"); err != nil {
		return nil, err
	}
	b, err := c.multi(16 << 20)
	if err != nil {
		return nil, err
	}
	var out []Message
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return nil, fmt.Errorf("%w: UIDL line %q", ErrProtocol, clean(l))
		}
		n, err := strconv.Atoi(f[0])
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%w: UIDL line %q", ErrProtocol, clean(l))
		}
		out = append(out, Message{Num: n, UID: f[1]})
	}
	return out, nil
}

// Retr returns message num, its line endings as the server sent them. A
// message over limit bytes (MaxMessage when limit ≤ 0) gives its first
// limit bytes and a *TooLargeError; the session stays usable unless the
// error says it is Lost.
func (c *Client) Retr(num, limit int) ([]byte, error) {
	if limit <= 0 {
		limit = MaxMessage
	}
	if _, err := c.cmd("RETR %d", num); err != nil {
		return nil, err
	}
	return c.multi(limit)
}

// Quit ends the session (RFC 1939 §6: the UPDATE state).
func (c *Client) Quit() error {
	_, err := c.cmd("QUIT")
	cerr := c.conn.Close()
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return cerr
}

// clean keeps a server's words printable.
func clean(s string) string {
	if len(s) > 200 {
		s = s[:200]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}
