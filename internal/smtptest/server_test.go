package smtptest

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"os"
	"testing"
	"time"

	"mailout/internal/smtpclient"
)

var bg = context.Background()

func timeouts() smtpclient.Timeouts {
	d := 5 * time.Second
	return smtpclient.Timeouts{Connect: d, Greeting: d, EHLO: d, StartTLS: d, Auth: d, Mail: d, Rcpt: d, DataInit: d, DataBlock: d, DataTerm: d, Quit: d}
}

func dial(t *testing.T, s *Server, mod func(*smtpclient.Config)) *smtpclient.Client {
	t.Helper()
	cfg := smtpclient.Config{Addr: s.Addr, Host: "localhost", Timeouts: timeouts()}
	if mod != nil {
		mod(&cfg)
	}
	c, err := smtpclient.Dial(bg, cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// send runs one transaction and returns the error that decides the
// recipient's fate: its RCPT refusal, else the transaction's error.
func send(t *testing.T, c *smtpclient.Client, rcpt string) error {
	t.Helper()
	res, err := c.Send(bg, "sender@example.org", []string{rcpt}, []byte("Subject: t\r\n\r\nhello\r\n"), smtpclient.SendOptions{})
	if len(res) == 1 && res[0].Err != nil {
		return res[0].Err
	}
	return err
}

func asError(t *testing.T, err error) *smtpclient.Error {
	t.Helper()
	var e *smtpclient.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not *smtpclient.Error", err)
	}
	return e
}

func TestSinkReceives(t *testing.T) {
	s := Start(t, Options{})
	c := dial(t, s, nil)
	for _, rcpt := range []string{"a@example.com", "b@example.net"} {
		if err := send(t, c, rcpt); err != nil {
			t.Fatalf("send to %s: %v", rcpt, err)
		}
	}
	ctx, cancel := context.WithTimeout(bg, 5*time.Second)
	defer cancel()
	if err := s.WaitMessages(ctx, 2); err != nil {
		t.Fatal(err)
	}
	m := s.Messages()
	if m[0].From != "sender@example.org" || m[1].Rcpts[0] != "b@example.net" || string(m[0].Data) != "Subject: t\r\n\r\nhello\r\n" || m[0].TLS {
		t.Errorf("messages = %+v", m)
	}
	if n := s.Connections(); n != 1 {
		t.Errorf("Connections() = %d, want 1", n)
	}
	short, cancel2 := context.WithTimeout(bg, 20*time.Millisecond)
	defer cancel2()
	if err := s.WaitMessages(short, 3); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitMessages for a third message = %v, want deadline", err)
	}
}

func TestFaults(t *testing.T) {
	tests := []struct {
		name      string
		fault     func(ev Event) *Fault
		command   string
		code      int
		enhanced  string
		ambiguous bool
		unusable  bool
	}{
		{"mail 451", at("mail", &Fault{Code: 451, Enhanced: "4.3.0", Text: "try later"}), "MAIL", 451, "4.3.0", false, false},
		{"mail 421 closes", at("mail", &Fault{Code: 421, Enhanced: "4.7.0", Text: "bye"}), "MAIL", 421, "4.7.0", false, true},
		{"rcpt 550", at("rcpt", &Fault{Code: 550, Enhanced: "5.1.1", Text: "unknown"}), "RCPT", 550, "5.1.1", false, false},
		{"rcpt dropped", at("rcpt", &Fault{Drop: true}), "RCPT", 0, "", false, true},
		{"data rejected after body", at("data", &Fault{Code: 554, Enhanced: "5.7.1", Text: "spam"}), "BODY", 554, "5.7.1", false, false},
		{"data dropped mid-DATA", at("data", &Fault{Drop: true}), "BODY", 0, "", true, true},
		{"body dropped before reply", at("body", &Fault{DropAfterBody: true}), "BODY", 0, "", true, true},
		{"body 452", at("body", &Fault{Code: 452, Enhanced: "4.3.1", Text: "disk full"}), "BODY", 452, "4.3.1", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Start(t, Options{Faults: tt.fault})
			c := dial(t, s, nil)
			err := send(t, c, "rcpt@example.com")
			e := asError(t, err)
			if e.Command != tt.command || e.Code != tt.code || e.Enhanced != tt.enhanced {
				t.Errorf("got %v, want %s %d %s", err, tt.command, tt.code, tt.enhanced)
			}
			if e.Ambiguous() != tt.ambiguous {
				t.Errorf("Ambiguous() = %v, want %v", e.Ambiguous(), tt.ambiguous)
			}
			if c.Usable() == tt.unusable {
				t.Errorf("Usable() = %v, want %v", c.Usable(), !tt.unusable)
			}
			if n := len(s.Messages()); n != 0 {
				t.Errorf("server kept %d messages after a fault", n)
			}
		})
	}
}

// at returns a fault script that faults at step only.
func at(step string, f *Fault) func(Event) *Fault {
	return func(ev Event) *Fault {
		if ev.Step == step {
			return f
		}
		return nil
	}
}

func TestConnectFaults(t *testing.T) {
	t.Run("554 greeting", func(t *testing.T) {
		s := Start(t, Options{Faults: at("connect", &Fault{Code: 554, Enhanced: "5.7.1", Text: "go away"})})
		_, err := smtpclient.Dial(bg, smtpclient.Config{Addr: s.Addr, Timeouts: timeouts()})
		if e := asError(t, err); e.Command != "connect" || e.Code != 554 || e.Text != "go away" {
			t.Errorf("got %v", err)
		}
	})
	t.Run("stalled greeting", func(t *testing.T) {
		s := Start(t, Options{Faults: at("connect", &Fault{Stall: time.Hour})})
		to := timeouts()
		to.Greeting = 50 * time.Millisecond
		_, err := smtpclient.Dial(bg, smtpclient.Config{Addr: s.Addr, Timeouts: to})
		if e := asError(t, err); e.Command != "connect" || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("got %v", err)
		}
		done := make(chan struct{})
		go func() { s.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Close blocked on a stalled connection")
		}
	})
}

// Count lets a script fail only the first attempt.
func TestFaultCount(t *testing.T) {
	s := Start(t, Options{Faults: func(ev Event) *Fault {
		if ev.Step == "rcpt" && ev.Count == 1 {
			return &Fault{Code: 451, Enhanced: "4.7.1", Text: "greylisted"}
		}
		return nil
	}})
	c := dial(t, s, nil)
	if e := asError(t, send(t, c, "x@example.com")); e.Code != 451 {
		t.Fatalf("first attempt: %v", e)
	}
	if err := send(t, c, "x@example.com"); err != nil {
		t.Fatalf("second attempt: %v", err)
	}
}

func TestLocalPartFaults(t *testing.T) {
	tests := []struct {
		local     string
		command   string
		code      int
		enhanced  string
		ambiguous bool
	}{
		{"unknown", "RCPT", 550, "5.1.1", false},
		{"full+1", "RCPT", 452, "4.2.2", false},
		{"ratelimit", "RCPT", 421, "4.7.28", false},
		{"temp", "RCPT", 451, "4.3.0", false},
		{"reject", "BODY", 554, "5.7.1", false},
		{"drop", "BODY", 0, "", true},
		{"dropafter", "BODY", 0, "", true},
		{"greylist", "RCPT", 451, "4.7.1", false},
	}
	s := Start(t, Options{LocalPartFaults: true})
	for _, tt := range tests {
		t.Run(tt.local, func(t *testing.T) {
			c := dial(t, s, nil)
			err := send(t, c, tt.local+"@example.com")
			e := asError(t, err)
			if e.Command != tt.command || e.Code != tt.code || e.Enhanced != tt.enhanced || e.Ambiguous() != tt.ambiguous {
				t.Errorf("got %v (ambiguous %v), want %s %d %s", err, e.Ambiguous(), tt.command, tt.code, tt.enhanced)
			}
		})
	}
	t.Run("greylist passes the second time", func(t *testing.T) {
		c := dial(t, s, nil)
		if err := send(t, c, "greylist@example.com"); err != nil {
			t.Fatalf("retry after greylisting: %v", err)
		}
	})
	t.Run("ordinary address delivered", func(t *testing.T) {
		c := dial(t, s, nil)
		if err := send(t, c, "someone@example.com"); err != nil {
			t.Fatal(err)
		}
	})
	if n := len(s.Messages()); n != 2 {
		t.Errorf("server kept %d messages, want 2", n)
	}
}

func TestAuthAndRelay(t *testing.T) {
	s := Start(t, Options{
		Auth:         map[string]string{"user": "pw"},
		RequireAuth:  true,
		RelayDomains: []string{"local.example"},
	})
	anon := dial(t, s, nil)
	if e := asError(t, send(t, anon, "a@local.example")); e.Command != "MAIL" || e.Code != 530 || e.Enhanced != "5.7.0" {
		t.Errorf("MAIL before AUTH: %v", e)
	}
	authed := dial(t, s, func(cfg *smtpclient.Config) {
		cfg.Username, cfg.Password, cfg.AllowPlaintextAuth = "user", "pw", true
	})
	if err := send(t, authed, "b@elsewhere.example"); err != nil {
		t.Errorf("authenticated relay: %v", err)
	}
	if m := s.Messages(); len(m) != 1 || m[0].AuthUser != "user" {
		t.Errorf("messages = %+v", m)
	}

	open := Start(t, Options{RelayDomains: []string{"local.example"}})
	c := dial(t, open, nil)
	if e := asError(t, send(t, c, "x@elsewhere.example")); e.Command != "RCPT" || e.Code != 554 || e.Enhanced != "5.7.1" {
		t.Errorf("relay to another domain: %v", e)
	}
	if err := send(t, c, "x@local.example"); err != nil {
		t.Errorf("local domain: %v", err)
	}
}

func TestTLS(t *testing.T) {
	serverTLS, pool, fp := NewTestCert(t)
	for _, implicit := range []bool{false, true} {
		mode := smtpclient.TLSRequired
		if implicit {
			mode = smtpclient.TLSImplicit
		}
		s := Start(t, Options{TLS: serverTLS, ImplicitTLS: implicit})
		c := dial(t, s, func(cfg *smtpclient.Config) {
			cfg.TLS = mode
			cfg.TLSConfig = &tls.Config{RootCAs: pool}
		})
		st, ok := c.TLS()
		if !ok {
			t.Fatalf("implicit=%v: no TLS", implicit)
		}
		sum := sha256.Sum256(st.PeerCertificates[0].Raw)
		if hex.EncodeToString(sum[:]) != fp {
			t.Errorf("fingerprint %x, NewTestCert said %s", sum, fp)
		}
		if err := send(t, c, "a@example.com"); err != nil {
			t.Fatal(err)
		}
		if m := s.Messages(); len(m) != 1 || !m[0].TLS {
			t.Errorf("implicit=%v: messages %+v, want one over TLS", implicit, m)
		}
	}
}

func TestMaxMessageBytes(t *testing.T) {
	s := Start(t, Options{MaxMessageBytes: 100})
	c := dial(t, s, nil)
	_, err := c.Send(bg, "a@x.org", []string{"b@y.com"}, make([]byte, 200), smtpclient.SendOptions{})
	if e := asError(t, err); e.Code != 552 || e.Enhanced != "5.3.4" {
		t.Errorf("got %v, want 552 5.3.4", err)
	}
}

func BenchmarkSink(b *testing.B) {
	s := Start(b, Options{})
	c, err := smtpclient.Dial(bg, smtpclient.Config{Addr: s.Addr})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	body := []byte("Subject: bench\r\n\r\nhello\r\n")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Send(bg, "a@x.org", []string{"b@y.com"}, body, smtpclient.SendOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
