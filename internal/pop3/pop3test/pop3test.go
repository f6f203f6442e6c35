// Package pop3test is an in-process POP3 server on loopback for tests:
// one maildrop, USER/PASS, CAPA, STLS (RFC 2595) when given a TLS
// configuration, UIDL, RETR, DELE and QUIT (RFC 1939).
package pop3test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Options configure a Server.
type Options struct {
	User, Pass string
	// TLS, when set, offers STLS; with Implicit the listener is TLS from
	// the first byte (POP3S).
	TLS      *tls.Config
	Implicit bool
}

// Server is a running POP3 server.
type Server struct {
	Addr string
	opt  Options
	ln   net.Listener

	mu   sync.Mutex
	msgs []msg
	// Logins counts successful logins; PlainPass counts PASS commands
	// received before TLS.
	Logins, PlainPass int
	wg                sync.WaitGroup
}

type msg struct {
	uid  string
	data []byte
	del  bool
}

// Start listens on 127.0.0.1 and serves until the test ends.
func Start(t testing.TB, opt Options) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if opt.Implicit {
		ln = tls.NewListener(ln, opt.TLS)
	}
	s := &Server{Addr: ln.Addr().String(), opt: opt, ln: ln}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return s
}

// Add puts a message in the maildrop under uid.
func (s *Server) Add(uid string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, msg{uid: uid, data: data})
}

// Count is how many messages the maildrop holds.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			s.session(c)
		}()
	}
}

func (s *Server) session(c net.Conn) {
	r, w := bufio.NewReader(c), bufio.NewWriter(c)
	out := func(format string, args ...any) {
		fmt.Fprintf(w, format+"\r\n", args...)
		w.Flush()
	}
	secure := s.opt.Implicit
	var user string
	authed := false
	out("+OK pop3test ready")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		f := strings.Fields(strings.TrimRight(line, "\r\n"))
		if len(f) == 0 {
			out("-ERR empty command")
			continue
		}
		arg := ""
		if len(f) > 1 {
			arg = f[1]
		}
		switch strings.ToUpper(f[0]) {
		case "CAPA":
			out("+OK")
			caps := "USER\r\nUIDL\r\n"
			if s.opt.TLS != nil && !secure {
				caps += "STLS\r\n"
			}
			fmt.Fprintf(w, "%s.\r\n", caps)
			w.Flush()
		case "STLS":
			if s.opt.TLS == nil || secure {
				out("-ERR no STLS")
				continue
			}
			out("+OK begin TLS")
			tc := tls.Server(c, s.opt.TLS)
			if tc.Handshake() != nil {
				return
			}
			c, secure = tc, true
			r, w = bufio.NewReader(tc), bufio.NewWriter(tc)
		case "USER":
			user = arg
			out("+OK")
		case "PASS":
			if !secure {
				s.mu.Lock()
				s.PlainPass++
				s.mu.Unlock()
			}
			if user == s.opt.User && strings.TrimPrefix(strings.TrimRight(line, "\r\n")[4:], " ") == s.opt.Pass {
				authed = true
				s.mu.Lock()
				s.Logins++
				s.mu.Unlock()
				out("+OK logged in")
			} else {
				out("-ERR [AUTH] authentication failed")
			}
		case "UIDL":
			if !authed {
				out("-ERR not logged in")
				continue
			}
			s.mu.Lock()
			var b strings.Builder
			for i, m := range s.msgs {
				if !m.del {
					fmt.Fprintf(&b, "%d %s\r\n", i+1, m.uid)
				}
			}
			s.mu.Unlock()
			fmt.Fprintf(w, "+OK\r\n%s.\r\n", b.String())
			w.Flush()
		case "RETR":
			n, err := strconv.Atoi(arg)
			s.mu.Lock()
			if !authed || err != nil || n < 1 || n > len(s.msgs) || s.msgs[n-1].del {
				s.mu.Unlock()
				out("-ERR no such message")
				continue
			}
			data := s.msgs[n-1].data
			s.mu.Unlock()
			fmt.Fprintf(w, "+OK %d octets\r\n", len(data))
			// RFC 1939 §3: CRLF lines, a leading "." doubled.
			for _, l := range bytes.SplitAfter(bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n")), []byte("\n")) {
				if len(l) == 0 {
					continue
				}
				l = bytes.TrimSuffix(l, []byte("\n"))
				if bytes.HasPrefix(l, []byte(".")) {
					w.WriteByte('.')
				}
				w.Write(l)
				w.WriteString("\r\n")
			}
			w.WriteString(".\r\n")
			w.Flush()
		case "DELE":
			n, _ := strconv.Atoi(arg)
			s.mu.Lock()
			if n >= 1 && n <= len(s.msgs) {
				s.msgs[n-1].del = true
			}
			s.mu.Unlock()
			out("+OK")
		case "QUIT":
			s.mu.Lock()
			kept := s.msgs[:0]
			for _, m := range s.msgs {
				if !m.del {
					kept = append(kept, m)
				}
			}
			s.msgs = kept
			s.mu.Unlock()
			out("+OK bye")
			return
		default:
			out("-ERR unknown command")
		}
	}
}
