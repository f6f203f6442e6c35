package smtpclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"mailout/internal/smtptest"
)

var ctx = context.Background()

func TestSendPipelined(t *testing.T) {
	s := startScript(t, nil, greetESMTP+`
C: MAIL FROM:<a@example.org>
C: RCPT TO:<b@example.com>
C: RCPT TO:<c@example.com>
C: DATA
S: 250 2.1.0 Ok
S: 250 2.1.5 Ok
S: 250 2.1.5 Ok
S: 354 go ahead
C: Subject: hi
C: 
C: body
C: .
S: 250 2.0.0 Ok: queued as 1
C: QUIT
S: 221 2.0.0 Bye`)
	c := mustDial(t, s, nil)
	res, err := c.Send(ctx, "a@example.org", []string{"b@example.com", "c@example.com"}, []byte("Subject: hi\r\n\r\nbody\r\n"), SendOptions{})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Errorf("%s: %v", r.Rcpt, r.Err)
		}
	}
	if err := c.Quit(ctx); err != nil {
		t.Errorf("Quit: %v", err)
	}
	s.done(t)
}

func TestSendSerial(t *testing.T) {
	s := startScript(t, nil, greetSerial+`
C: MAIL FROM:<a@example.org> BODY=8BITMIME
S: 250 Ok
C: RCPT TO:<b@example.com>
S: 250 Ok
C: DATA
S: 354 go ahead
C: caf`+"\u00e9"+`
C: .
S: 250 Ok
C: QUIT
S: 221 Bye`)
	c := mustDial(t, s, nil)
	if _, ok := c.Extensions()["PIPELINING"]; ok {
		t.Fatal("PIPELINING seen but not offered")
	}
	if _, err := c.Send(ctx, "a@example.org", []string{"b@example.com"}, []byte("caf\u00e9\n"), SendOptions{EightBit: true}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if err := c.Quit(ctx); err != nil {
		t.Errorf("Quit: %v", err)
	}
	s.done(t)
}

func TestSendMixedRcpt(t *testing.T) {
	s := startScript(t, nil, greetESMTP+`
C: MAIL FROM:<a@x.org>
C: RCPT TO:<ok@y.com>
C: RCPT TO:<busy@y.com>
C: RCPT TO:<gone@y.com>
C: RCPT TO:<many@y.com>
C: DATA
S: 250 2.1.0 Ok
S: 250 2.1.5 Ok
S: 450 4.2.1 Mailbox busy
S: 550 5.1.1 User unknown
S: 452 4.5.3 Too many recipients
S: 354 go ahead
C: hello
C: .
S: 250 2.0.0 queued
C: QUIT
S: 221 Bye`)
	c := mustDial(t, s, nil)
	res, err := c.Send(ctx, "a@x.org", []string{"ok@y.com", "busy@y.com", "gone@y.com", "many@y.com"}, []byte("hello"), SendOptions{})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	want := []struct {
		code     int
		enhanced string
	}{{0, ""}, {450, "4.2.1"}, {550, "5.1.1"}, {452, "4.5.3"}}
	for i, w := range want {
		if w.code == 0 {
			if res[i].Err != nil {
				t.Errorf("%s: %v, want accepted", res[i].Rcpt, res[i].Err)
			}
			continue
		}
		e := asError(t, res[i].Err)
		if e.Command != "RCPT" || e.Code != w.code || e.Enhanced != w.enhanced {
			t.Errorf("%s: got %s %d %s, want RCPT %d %s", res[i].Rcpt, e.Command, e.Code, e.Enhanced, w.code, w.enhanced)
		}
	}
	if !errors.As(res[2].Err, new(*Error)) || !res[2].Err.(*Error).Permanent() || !res[1].Err.(*Error).Temporary() {
		t.Error("550 must be Permanent and 450 Temporary")
	}
	_ = c.Quit(ctx)
	s.done(t)
}

// All recipients refused, DATA refused: no body goes out, the client reads
// every reply and resets before the next transaction.
func TestSendAllRcptRejected(t *testing.T) {
	s := startScript(t, nil, greetESMTP+`
C: MAIL FROM:<a@x.org>
C: RCPT TO:<b@y.com>
C: RCPT TO:<c@y.com>
C: DATA
S: 250 2.1.0 Ok
S: 550 5.1.1 No such user b
S: 550 5.1.1 No such user c
S: 554 5.5.1 No valid recipients
C: RSET
S: 250 2.0.0 Ok
C: MAIL FROM:<a@x.org>
C: RCPT TO:<d@y.com>
C: DATA
S: 250 Ok
S: 250 Ok
S: 354 go
C: x
C: .
S: 250 Ok
C: QUIT
S: 221 Bye`)
	c := mustDial(t, s, nil)
	res, err := c.Send(ctx, "a@x.org", []string{"b@y.com", "c@y.com"}, []byte("x"), SendOptions{})
	if err != nil {
		t.Fatalf("Send: err = %v, want nil with per-recipient refusals", err)
	}
	for _, r := range res {
		if e := asError(t, r.Err); e.Code != 550 || e.Enhanced != "5.1.1" {
			t.Errorf("%s: %v", r.Rcpt, r.Err)
		}
	}
	if !c.Usable() {
		t.Fatal("client unusable after refused recipients")
	}
	if _, err := c.Send(ctx, "a@x.org", []string{"d@y.com"}, []byte("x"), SendOptions{}); err != nil {
		t.Fatalf("second Send: %v", err)
	}
	_ = c.Quit(ctx)
	s.done(t)
}

func TestSend421AfterMail(t *testing.T) {
	s := startScript(t, nil, greetSerial+`
C: MAIL FROM:<a@x.org>
S: 421 4.7.0 Too many connections, closing
X: close`)
	c := mustDial(t, s, nil)
	_, err := c.Send(ctx, "a@x.org", []string{"b@y.com"}, []byte("x"), SendOptions{})
	e := asError(t, err)
	if e.Command != "MAIL" || e.Code != 421 || e.Enhanced != "4.7.0" || !e.Temporary() {
		t.Errorf("got %+v", e)
	}
	if c.Usable() {
		t.Error("client still usable after 421")
	}
	s.done(t)
}

// A server that hangs up while the body is being written: the write fails,
// and the error is not ambiguous because the final "." never went out.
func TestSendDropMidData(t *testing.T) {
	s := startScript(t, nil, greetSerial+`
C: MAIL FROM:<a@x.org>
S: 250 Ok
C: RCPT TO:<b@y.com>
S: 250 Ok
C: DATA
S: 354 go
C: Subject: big
X: close`)
	c := mustDial(t, s, nil)
	body := append([]byte("Subject: big\r\n\r\n"), bytes.Repeat([]byte(strings.Repeat("x", 76)+"\r\n"), 50_000)...)
	_, err := c.Send(ctx, "a@x.org", []string{"b@y.com"}, body, SendOptions{})
	e := asError(t, err)
	if e.Command != "BODY" || e.Code != 0 || e.Ambiguous() {
		t.Errorf("got %v (ambiguous %v), want a non-ambiguous BODY I/O error", e, e.Ambiguous())
	}
	var op *net.OpError
	if !errors.As(err, &op) {
		t.Errorf("error %v does not wrap *net.OpError", err)
	}
	if c.Usable() {
		t.Error("client usable after a dropped connection")
	}
	s.done(t)
}

// The whole message went out and the connection closed before the reply:
// possibly delivered.
func TestSendDropAfterDot(t *testing.T) {
	s := startScript(t, nil, greetSerial+`
C: MAIL FROM:<a@x.org>
S: 250 Ok
C: RCPT TO:<b@y.com>
S: 250 Ok
C: DATA
S: 354 go
X: skipdata
X: close`)
	c := mustDial(t, s, nil)
	_, err := c.Send(ctx, "a@x.org", []string{"b@y.com"}, []byte("hi\r\n"), SendOptions{})
	e := asError(t, err)
	if e.Command != "BODY" || !e.Ambiguous() || !errors.Is(err, ErrAmbiguous) || !e.Temporary() {
		t.Errorf("got %v (ambiguous %v), want an ambiguous BODY error", err, e.Ambiguous())
	}
	s.done(t)
}

// The reply to "." is slow: within DataTerm it counts; past it, the error is
// a deadline, ambiguous.
func TestSendSlowFinalReply(t *testing.T) {
	script := greetSerial + `
C: MAIL FROM:<a@x.org>
S: 250 Ok
C: RCPT TO:<b@y.com>
S: 250 Ok
C: DATA
S: 354 go
X: skipdata
X: sleep 150ms
S: 250 Ok
X: readline`
	tests := []struct {
		name     string
		dataTerm time.Duration
		wantOK   bool
	}{
		{"within DataTerm", 3 * time.Second, true},
		{"past DataTerm", 50 * time.Millisecond, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startScript(t, nil, script)
			c := mustDial(t, s, func(cfg *Config) { cfg.Timeouts.DataTerm = tt.dataTerm })
			_, err := c.Send(ctx, "a@x.org", []string{"b@y.com"}, []byte("hi"), SendOptions{})
			if tt.wantOK {
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				_ = c.Quit(ctx)
			} else {
				e := asError(t, err)
				if !errors.Is(err, os.ErrDeadlineExceeded) || !e.Ambiguous() || e.Command != "BODY" {
					t.Fatalf("got %v, want an ambiguous BODY deadline error", err)
				}
				c.Close()
			}
			<-s.errc
		})
	}
}

// QUIT failing after a 250 for the message does not undo the delivery.
func TestQuitFailureAfterDelivery(t *testing.T) {
	s := startScript(t, nil, greetSerial+`
C: MAIL FROM:<a@x.org>
S: 250 Ok
C: RCPT TO:<b@y.com>
S: 250 Ok
C: DATA
S: 354 go
X: skipdata
S: 250 Ok queued
X: close`)
	c := mustDial(t, s, nil)
	res, err := c.Send(ctx, "a@x.org", []string{"b@y.com"}, []byte("hi"), SendOptions{})
	if err != nil || res[0].Err != nil {
		t.Fatalf("Send: %v %v", err, res[0].Err)
	}
	s.done(t)
	qerr := c.Quit(ctx)
	if e := asError(t, qerr); e.Command != "QUIT" {
		t.Errorf("Quit error %v, want a QUIT error", qerr)
	}
}

func TestHELOFallback(t *testing.T) {
	s := startScript(t, nil, `
S: 220 old.test SMTP
C: EHLO client.test
S: 502 5.5.2 Command not recognized
C: HELO client.test
S: 250 old.test
C: MAIL FROM:<a@x.org>
S: 250 Ok
C: RCPT TO:<b@y.com>
S: 250 Ok
C: DATA
S: 354 go
C: hi
C: .
S: 250 Ok
C: QUIT
S: 221 Bye`)
	c := mustDial(t, s, nil)
	if n := len(c.Extensions()); n != 0 {
		t.Errorf("HELO session has %d extensions", n)
	}
	if c.Greeting() != "old.test SMTP" {
		t.Errorf("Greeting() = %q", c.Greeting())
	}
	if _, err := c.Send(ctx, "a@x.org", []string{"b@y.com"}, []byte("hi"), SendOptions{}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	_ = c.Quit(ctx)
	s.done(t)
}

// The message is too large for the announced SIZE: refused before MAIL.
func TestSizeExceeded(t *testing.T) {
	s := startScript(t, nil, `
S: 220 mx.test ESMTP
C: EHLO client.test
S: 250-mx.test
S: 250 SIZE 10
C: QUIT
S: 221 Bye`)
	c := mustDial(t, s, nil)
	_, err := c.Send(ctx, "a@x.org", []string{"b@y.com"}, []byte("more than ten bytes"), SendOptions{})
	if e := asError(t, err); e.Command != "MAIL" || e.Code != 552 || e.Enhanced != "5.3.4" {
		t.Errorf("got %v, want MAIL 552 5.3.4", err)
	}
	_ = c.Quit(ctx)
	s.done(t)
}

// Plaintext pipelined behind "220 ready" must not be read as a reply inside
// TLS; the pre-TLS capabilities are forgotten.
func TestSTARTTLSInjectionDiscarded(t *testing.T) {
	serverTLS, pool, _ := smtptest.NewTestCert(t, "localhost")
	s := startScript(t, serverTLS, `
S: 220 mx.test ESMTP
C: EHLO client.test
S: 250-mx.test
S: 250-AUTH PLAIN
S: 250 STARTTLS
C: STARTTLS
S: 220 2.0.0 Ready
S: 250-injected
S: 250 AUTH INJECTED
X: starttls
C: EHLO client.test
S: 250-mx.test
S: 250 PIPELINING
C: QUIT
S: 221 Bye`)
	c := mustDial(t, s, func(cfg *Config) {
		cfg.TLS = TLSRequired
		cfg.TLSConfig = &tls.Config{RootCAs: pool}
	})
	if _, ok := c.TLS(); !ok {
		t.Fatal("session is not TLS")
	}
	ext := c.Extensions()
	if _, ok := ext["PIPELINING"]; !ok || ext["AUTH"] != "" {
		t.Errorf("extensions after TLS = %v, want only the post-TLS ones", ext)
	}
	if err := c.Quit(ctx); err != nil {
		t.Errorf("Quit: %v", err)
	}
	s.done(t)
}

// TLSRequired against a server that does not offer STARTTLS: fail before
// AUTH, credentials never sent.
func TestTLSRequiredNotOffered(t *testing.T) {
	s := startScript(t, nil, `
S: 220 mx.test ESMTP
C: EHLO client.test
S: 250-mx.test
S: 250 AUTH PLAIN LOGIN
C: QUIT
S: 221 Bye`)
	_, err := dialScript(t, s, func(cfg *Config) {
		cfg.TLS = TLSRequired
		cfg.Username, cfg.Password = "u", "secret"
	})
	e := asError(t, err)
	if e.Command != "STARTTLS" || !strings.Contains(e.Text, "did not offer STARTTLS") {
		t.Errorf("got %v", err)
	}
	s.done(t)
}

// Opportunistic TLS with a certificate the client refuses: the error says
// the handshake failed so the caller can retry in plaintext.
func TestOpportunisticHandshakeFailure(t *testing.T) {
	serverTLS, _, _ := smtptest.NewTestCert(t, "localhost")
	srv := smtptest.Start(t, smtptest.Options{TLS: serverTLS})
	_, err := Dial(ctx, Config{Addr: srv.Addr, Host: "localhost", TLS: TLSOpportunistic, Timeouts: shortTimeouts()})
	e := asError(t, err)
	if e.Command != "STARTTLS" || !errors.Is(err, ErrTLSHandshake) {
		t.Fatalf("got %v, want a STARTTLS handshake error", err)
	}
	c, err := Dial(ctx, Config{Addr: srv.Addr, Host: "localhost", TLS: TLSNone, Timeouts: shortTimeouts()})
	if err != nil {
		t.Fatalf("plaintext retry: %v", err)
	}
	_ = c.Quit(ctx)
}

func TestMalformedReplies(t *testing.T) {
	tests := []struct {
		name  string
		reply string
	}{
		{"four-digit code", "2500 ok"},
		{"letters", "abc"},
		{"mixed codes", "250-first\n251 second"},
		{"no separator", "250ok"},
		{"line too long", "250 " + strings.Repeat("a", 1200)},
		{"too many lines", strings.Repeat("250-x\n", 150) + "250 x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startScript(t, nil, greetSerial+`
C: MAIL FROM:<a@x.org>
S: `+strings.ReplaceAll(tt.reply, "\n", "\nS: ")+`
X: sleep 10ms`)
			c := mustDial(t, s, nil)
			_, err := c.Send(ctx, "a@x.org", []string{"b@y.com"}, []byte("x"), SendOptions{})
			e := asError(t, err)
			if !errors.Is(err, ErrProtocol) || e.Command != "MAIL" {
				t.Errorf("got %v, want a MAIL protocol error", err)
			}
			if c.Usable() {
				t.Error("client usable after a malformed reply")
			}
			<-s.errc
		})
	}
}

// Deadlines: a server that never greets hits the Greeting timeout; a
// cancelled context stops a blocked read.
func TestDeadlinesAndCancel(t *testing.T) {
	t.Run("greeting timeout", func(t *testing.T) {
		s := startScript(t, nil, "X: sleep 200ms")
		_, err := dialScript(t, s, func(cfg *Config) { cfg.Timeouts.Greeting = 50 * time.Millisecond })
		if e := asError(t, err); e.Command != "connect" || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("got %v", err)
		}
		var op *net.OpError
		if !errors.As(err, &op) {
			t.Errorf("%v does not wrap *net.OpError", err)
		}
		<-s.errc
	})
	t.Run("context cancelled", func(t *testing.T) {
		s := startScript(t, nil, greetSerial+`
C: MAIL FROM:<a@x.org>
X: sleep 200ms`)
		c := mustDial(t, s, nil)
		cctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(30*time.Millisecond, cancel)
		_, err := c.Send(cctx, "a@x.org", []string{"b@y.com"}, []byte("x"), SendOptions{})
		if e := asError(t, err); e.Command != "MAIL" || !errors.Is(err, context.Canceled) {
			t.Errorf("got %v", err)
		}
		<-s.errc
	})
}

func TestVerify(t *testing.T) {
	s := startScript(t, nil, greetSerial+`
C: MAIL FROM:<>
S: 250 Ok
C: RCPT TO:<nobody@y.com>
S: 550 5.1.1 unknown
C: RSET
S: 250 Ok
C: QUIT
S: 221 Bye`)
	c := mustDial(t, s, nil)
	err := c.Verify(ctx, "", "nobody@y.com")
	if e := asError(t, err); e.Command != "RCPT" || e.Code != 550 {
		t.Errorf("got %v", err)
	}
	_ = c.Quit(ctx)
	s.done(t)
}

func TestAddressInjectionRefused(t *testing.T) {
	s := startScript(t, nil, greetSerial+`
C: QUIT
S: 221 Bye`)
	c := mustDial(t, s, nil)
	_, err := c.Send(ctx, "a@x.org>\r\nRCPT TO:<evil@z", []string{"b@y.com"}, []byte("x"), SendOptions{})
	if e := asError(t, err); e.Command != "MAIL" {
		t.Errorf("got %v", err)
	}
	_ = c.Quit(ctx)
	s.done(t)
}

// Pipelined MAIL refused: the RCPT and DATA replies are read to stay in
// step, the MAIL refusal is the transaction's error, and the next
// transaction starts with RSET.
func TestSendPipelinedMailRefused(t *testing.T) {
	s := startScript(t, nil, greetESMTP+`
C: MAIL FROM:<a@x.org>
C: RCPT TO:<b@y.com>
C: DATA
S: 550 5.7.1 Sender blocked
S: 503 5.5.1 Need MAIL
S: 503 5.5.1 Need MAIL
C: RSET
S: 250 Ok
C: QUIT
S: 221 Bye`)
	c := mustDial(t, s, nil)
	res, err := c.Send(ctx, "a@x.org", []string{"b@y.com"}, []byte("x"), SendOptions{})
	if e := asError(t, err); e.Command != "MAIL" || e.Code != 550 || e.Enhanced != "5.7.1" {
		t.Errorf("got %v, want MAIL 550 5.7.1", err)
	}
	if res[0].Err != nil {
		t.Errorf("recipient result %v: a 503 after a refused MAIL says nothing about it", res[0].Err)
	}
	if err := c.resetIfDirty(ctx); err != nil {
		t.Fatal(err)
	}
	_ = c.Quit(ctx)
	s.done(t)
}

// Pipelined: every RCPT refused but DATA answered 354. The client ends the
// data at once with a lone "." and reports no transaction error.
func TestSendPipelinedDataAcceptedWithoutRcpt(t *testing.T) {
	s := startScript(t, nil, greetESMTP+`
C: MAIL FROM:<a@x.org>
C: RCPT TO:<b@y.com>
C: DATA
S: 250 Ok
S: 550 5.1.1 unknown
S: 354 go ahead
C: .
S: 554 5.5.1 No valid recipients
C: RSET
S: 250 Ok
C: QUIT
S: 221 Bye`)
	c := mustDial(t, s, nil)
	res, err := c.Send(ctx, "a@x.org", []string{"b@y.com"}, []byte("secret body"), SendOptions{})
	if err != nil {
		t.Errorf("Send: %v", err)
	}
	if e := asError(t, res[0].Err); e.Code != 550 {
		t.Errorf("recipient: %v", e)
	}
	if err := c.resetIfDirty(ctx); err != nil {
		t.Fatal(err)
	}
	_ = c.Quit(ctx)
	s.done(t)
}
