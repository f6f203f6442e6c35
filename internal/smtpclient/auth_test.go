package smtpclient

import (
	"crypto/tls"
	"encoding/base64"
	"slices"
	"strings"
	"sync"
	"testing"

	"mailout/internal/smtptest"
)

// AUTH against go-smtp's server (through smtptest) with each mechanism:
// the right password logs in, a wrong one is a 535 AUTH error, and the
// transcript never shows the password.
func TestAuthMechanisms(t *testing.T) {
	serverTLS, pool, _ := smtptest.NewTestCert(t, "localhost")
	const user, pass = "alice", "s3cret-pass"
	for _, mech := range []string{"PLAIN", "LOGIN", "CRAM-MD5"} {
		t.Run(mech, func(t *testing.T) {
			srv := smtptest.Start(t, smtptest.Options{
				TLS:            serverTLS,
				Auth:           map[string]string{user: pass},
				AuthMechanisms: []string{mech},
				RequireAuth:    true,
			})
			var mu sync.Mutex
			var transcript []string
			cfg := Config{
				Addr: srv.Addr, Host: "localhost", TLS: TLSRequired,
				TLSConfig: &tls.Config{RootCAs: pool},
				Username:  user, Password: pass, Timeouts: shortTimeouts(),
				Trace: func(l string) { mu.Lock(); transcript = append(transcript, l); mu.Unlock() },
			}
			c, err := Dial(ctx, cfg)
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			if _, err := c.Send(ctx, "alice@x.org", []string{"b@y.com"}, []byte("Subject: t\r\n\r\nhi\r\n"), SendOptions{}); err != nil {
				t.Fatalf("Send: %v", err)
			}
			_ = c.Quit(ctx)
			if m := srv.Messages(); len(m) != 1 || m[0].AuthUser != user || !m[0].TLS {
				t.Errorf("server got %+v, want one message from %s over TLS", m, user)
			}

			cfg.Password = "wrong"
			_, err = Dial(ctx, cfg)
			if e := asError(t, err); e.Command != "AUTH" || e.Code != 535 {
				t.Errorf("wrong password: got %v, want AUTH 535", err)
			}
			if strings.Contains(err.Error(), "wrong") {
				t.Errorf("error %q shows the password", err)
			}

			mu.Lock()
			all := strings.Join(transcript, "\n")
			mu.Unlock()
			for _, secret := range []string{pass, base64.StdEncoding.EncodeToString([]byte(pass)), base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))} {
				if strings.Contains(all, secret) {
					t.Errorf("transcript contains a secret %q:\n%s", secret, all)
				}
			}
			if !strings.Contains(all, "C: AUTH "+mech) {
				t.Errorf("transcript lacks the AUTH line:\n%s", all)
			}
		})
	}
}

func TestAuthRefusedWithoutTLS(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{Auth: map[string]string{"u": "p"}})
	_, err := Dial(ctx, Config{Addr: srv.Addr, Username: "u", Password: "p", Timeouts: shortTimeouts()})
	if e := asError(t, err); e.Command != "AUTH" || e.Code != 0 {
		t.Fatalf("got %v, want a local AUTH refusal", err)
	}
	c, err := Dial(ctx, Config{Addr: srv.Addr, Username: "u", Password: "p", AllowPlaintextAuth: true, Timeouts: shortTimeouts()})
	if err != nil {
		t.Fatalf("AllowPlaintextAuth: %v", err)
	}
	_ = c.Quit(ctx)
}

func TestChooseMechanism(t *testing.T) {
	tests := []struct {
		offered []string
		tls     bool
		want    string
	}{
		{[]string{"LOGIN", "PLAIN", "CRAM-MD5"}, true, "PLAIN"},
		{[]string{"LOGIN", "PLAIN", "CRAM-MD5"}, false, "CRAM-MD5"},
		{[]string{"LOGIN", "CRAM-MD5"}, true, "CRAM-MD5"},
		{[]string{"LOGIN"}, true, "LOGIN"},
		{[]string{"XOAUTH2", "GSSAPI"}, true, ""},
	}
	for _, tt := range tests {
		if got := chooseMechanism(tt.offered, tt.tls); got != tt.want {
			t.Errorf("chooseMechanism(%v, tls=%v) = %q, want %q", tt.offered, tt.tls, got, tt.want)
		}
	}
}

// A server that echoes the AUTH exchange in its refusal: neither the
// password nor the base64 strings the client sent reach the error or the
// transcript.
func TestAuthEchoRedacted(t *testing.T) {
	const user, pass = "user", "Tr0ub4dor&3"
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	plain := b64("\x00" + user + "\x00" + pass)
	tests := []struct {
		name, script string
		secrets      []string
	}{
		{"PLAIN", `
S: 220 mx.test ESMTP
C: EHLO client.test
S: 250-mx.test
S: 250 AUTH PLAIN
C: AUTH PLAIN ` + plain + `
S: 535 5.7.8 Authentication failed: ` + plain + ` (` + pass + `)
C: QUIT
S: 221 Bye`, []string{plain, strings.TrimRight(plain, "="), pass}},
		{"LOGIN", `
S: 220 mx.test ESMTP
C: EHLO client.test
S: 250-mx.test
S: 250 AUTH LOGIN
C: AUTH LOGIN
S: 334 VXNlcm5hbWU6
C: ` + b64(user) + `
S: 334 UGFzc3dvcmQ6
C: ` + b64(pass) + `
S: 535-5.7.8 bad credentials ` + b64(pass) + `
S: 535 5.7.8 password was ` + pass + `
C: QUIT
S: 221 Bye`, []string{b64(pass), pass}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startScript(t, nil, tt.script)
			var mu sync.Mutex
			var transcript []string
			_, err := dialScript(t, s, func(cfg *Config) {
				cfg.Username, cfg.Password, cfg.AllowPlaintextAuth = user, pass, true
				cfg.Trace = func(l string) { mu.Lock(); transcript = append(transcript, l); mu.Unlock() }
			})
			e := asError(t, err)
			if e.Command != "AUTH" || e.Code != 535 || !strings.Contains(e.Text, "<redacted>") {
				t.Fatalf("got %v, want AUTH 535 with the echo redacted", err)
			}
			s.done(t)
			mu.Lock()
			all := strings.Join(transcript, "\n")
			mu.Unlock()
			for _, secret := range tt.secrets {
				for what, text := range map[string]string{"error text": e.Text, "error": err.Error(), "transcript": all} {
					if strings.Contains(text, secret) {
						t.Errorf("%s holds the secret %q:\n%s", what, secret, text)
					}
				}
			}
		})
	}
}

// Old Outlook and Exchange servers announce AUTH only in the pre-standard
// form "AUTH=LOGIN PLAIN". Without an "AUTH " line it is the offer.
func TestLegacyAuthEquals(t *testing.T) {
	tests := []struct {
		lines []string
		want  string
	}{
		{[]string{"mx", "AUTH=LOGIN PLAIN"}, "LOGIN PLAIN"},
		{[]string{"mx", "auth=login"}, "login"},
		{[]string{"mx", "AUTH=LOGIN", "AUTH PLAIN CRAM-MD5"}, "PLAIN CRAM-MD5"},
		{[]string{"mx", "AUTH CRAM-MD5", "AUTH=LOGIN"}, "CRAM-MD5"},
	}
	for _, tt := range tests {
		ext := parseExtensions(tt.lines)
		if got, ok := ext["AUTH"]; !ok || got != tt.want {
			t.Errorf("parseExtensions(%q)[AUTH] = %q (%v), want %q", tt.lines, got, ok, tt.want)
		}
	}

	s := startScript(t, nil, `
S: 220 exchange.test Microsoft ESMTP MAIL Service ready
C: EHLO client.test
S: 250-exchange.test Hello
S: 250-AUTH=LOGIN
S: 250 8BITMIME
C: AUTH LOGIN
S: 334 VXNlcm5hbWU6
C: dXNlcg==
S: 334 UGFzc3dvcmQ6
C: c2VjcmV0
S: 235 2.7.0 Authentication successful
C: QUIT
S: 221 Bye`)
	c := mustDial(t, s, func(cfg *Config) {
		cfg.Username, cfg.Password, cfg.AllowPlaintextAuth = "user", "secret", true
	})
	if got := c.AuthMechanisms(); !slices.Equal(got, []string{"LOGIN"}) {
		t.Errorf("AuthMechanisms() = %v, want [LOGIN]", got)
	}
	if err := c.Quit(ctx); err != nil {
		t.Errorf("Quit: %v", err)
	}
	s.done(t)
}
