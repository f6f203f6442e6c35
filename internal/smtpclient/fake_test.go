package smtpclient

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// scriptServer plays one SMTP session on 127.0.0.1:0 from a script, one
// step per line:
//
//	S: text      server writes "text\r\n" (consecutive S lines go out in
//	             one write, so a client sees them together)
//	C: text      server reads a line and it must equal text
//	X: close     server closes the connection
//	X: sleep D   server waits D (a time.Duration)
//	X: starttls  server runs a TLS handshake with tlsConf
//	X: skipdata  server reads lines up to and including "."
//	X: readline  server reads one line, whatever it is
//
// The test fails on the first difference; done() waits for the script.
type scriptServer struct {
	Addr string
	errc chan error
}

func startScript(t *testing.T, tlsConf *tls.Config, script string) *scriptServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &scriptServer{Addr: ln.Addr().String(), errc: make(chan error, 1)}
	steps := strings.Split(strings.TrimSpace(script), "\n")
	go func() {
		defer ln.Close()
		conn, err := ln.Accept()
		if err != nil {
			s.errc <- err
			return
		}
		defer conn.Close()
		s.errc <- play(conn, tlsConf, steps)
	}()
	t.Cleanup(func() { ln.Close() })
	return s
}

func play(conn net.Conn, tlsConf *tls.Config, steps []string) error {
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	var out strings.Builder
	flush := func() error {
		if out.Len() == 0 {
			return nil
		}
		_, err := conn.Write([]byte(out.String()))
		out.Reset()
		return err
	}
	for n, st := range steps {
		st = strings.TrimLeft(strings.TrimRight(st, "\r"), " \t")
		kind, arg, _ := strings.Cut(st, ":")
		arg = strings.TrimPrefix(arg, " ")
		if kind != "S" {
			if err := flush(); err != nil {
				return fmt.Errorf("step %d: write: %w", n+1, err)
			}
		}
		switch kind {
		case "S":
			out.WriteString(arg + "\r\n")
		case "C":
			line, err := br.ReadString('\n')
			if err != nil {
				return fmt.Errorf("step %d: want client line %q, got error %v", n+1, arg, err)
			}
			if got := strings.TrimRight(line, "\r\n"); got != arg {
				return fmt.Errorf("step %d: client wrote %q, want %q", n+1, got, arg)
			}
		case "X":
			verb, param, _ := strings.Cut(arg, " ")
			switch verb {
			case "close":
				return conn.Close()
			case "sleep":
				d, _ := time.ParseDuration(param)
				time.Sleep(d)
			case "starttls":
				tc := tls.Server(conn, tlsConf)
				if err := tc.Handshake(); err != nil {
					return fmt.Errorf("step %d: handshake: %w", n+1, err)
				}
				conn, br = tc, bufio.NewReader(tc)
			case "readline":
				if _, err := br.ReadString('\n'); err != nil {
					return fmt.Errorf("step %d: %w", n+1, err)
				}
			case "skipdata":
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return fmt.Errorf("step %d: reading data: %w", n+1, err)
					}
					if line == ".\r\n" {
						break
					}
				}
			default:
				return fmt.Errorf("step %d: bad script verb %q", n+1, verb)
			}
		default:
			return fmt.Errorf("step %d: bad script line %q", n+1, st)
		}
	}
	return flush()
}

// done waits for the script to end and fails the test on a difference.
func (s *scriptServer) done(t *testing.T) {
	t.Helper()
	select {
	case err := <-s.errc:
		if err != nil {
			t.Errorf("script: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("script did not finish")
	}
}

// dialScript dials a script server with short timeouts.
func dialScript(t *testing.T, s *scriptServer, mod func(*Config)) (*Client, error) {
	t.Helper()
	cfg := Config{Addr: s.Addr, Host: "localhost", LocalName: "client.test", Timeouts: shortTimeouts()}
	if mod != nil {
		mod(&cfg)
	}
	return Dial(context.Background(), cfg)
}

func shortTimeouts() Timeouts {
	d := 5 * time.Second
	return Timeouts{Connect: d, Greeting: d, EHLO: d, StartTLS: d, Auth: d, Mail: d, Rcpt: d, DataInit: d, DataBlock: d, DataTerm: d, Quit: d}
}

func mustDial(t *testing.T, s *scriptServer, mod func(*Config)) *Client {
	t.Helper()
	c, err := dialScript(t, s, mod)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	return c
}

// asError extracts the *Error or fails.
func asError(t *testing.T, err error) *Error {
	t.Helper()
	e, ok := err.(*Error)
	if !ok {
		t.Fatalf("error %v (%T) is not *Error", err, err)
	}
	return e
}

const (
	greetESMTP = `
S: 220 mx.test ESMTP
C: EHLO client.test
S: 250-mx.test
S: 250-PIPELINING
S: 250-8BITMIME
S: 250 ENHANCEDSTATUSCODES`
	greetSerial = `
S: 220 mx.test ESMTP
C: EHLO client.test
S: 250-mx.test
S: 250 8BITMIME`
)
