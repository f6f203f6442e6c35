package peertest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/smtp"
	"net/textproto"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// These tests prove the peer set-up everyone else relies on: a real
// exchange with Postfix using only the standard library's net/smtp.

// loginAuth is the LOGIN SASL mechanism (draft-murchison-sasl-login), which
// net/smtp does not provide: the server prompts "Username:" then "Password:".
type loginAuth struct{ user, pass string }

func (a loginAuth) Start(*smtp.ServerInfo) (string, []byte, error) { return "LOGIN", nil, nil }

func (a loginAuth) Next(fromServer []byte, more bool) ([]byte, error) {
	if !more {
		return nil, nil
	}
	switch strings.ToLower(strings.TrimSpace(string(fromServer))) {
	case "username:":
		return []byte(a.user), nil
	case "password:":
		return []byte(a.pass), nil
	}
	return nil, fmt.Errorf("unexpected LOGIN challenge %q", fromServer)
}

// testMessage is an RFC 5322 message with CRLF line endings whose body has
// lines that need dot-stuffing (RFC 5321 §4.5.2) on the way.
func testMessage(rcpt, token string) []byte {
	lines := []string{
		"From: Peer Test <sender@example.com>",
		"To: <" + rcpt + ">",
		"Subject: peertest " + token,
		"Date: Thu, 26 Nov 2026 12:00:00 +0000",
		"Message-ID: <" + token + "@mailout.test>",
		"MIME-Version: 1.0",
		"Content-Type: text/plain; charset=utf-8",
		"X-Mailout-Token: " + token,
		"",
		"Hello " + rcpt + ",",
		".a line that starts with a dot",
		".",
		"..two dots",
		"last line",
	}
	return []byte(strings.Join(lines, "\r\n") + "\r\n")
}

// sendVia runs one SMTP transaction over an established client.
func sendVia(t *testing.T, c *smtp.Client, auth smtp.Auth, rcpt string, msg []byte) {
	t.Helper()
	if auth != nil {
		if err := c.Auth(auth); err != nil {
			t.Fatalf("AUTH: %v", err)
		}
	}
	if err := c.Mail("sender@example.com"); err != nil {
		t.Fatalf("MAIL: %v", err)
	}
	if err := c.Rcpt(rcpt); err != nil {
		t.Fatalf("RCPT: %v", err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatalf("DATA: %v", err)
	}
	if _, err := w.Write(msg); err != nil {
		t.Fatalf("writing the message: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("end of DATA: %v", err)
	}
	if err := c.Quit(); err != nil {
		t.Fatalf("QUIT: %v", err)
	}
}

func dialSubmission(t *testing.T, p *PostfixPeer) *smtp.Client {
	t.Helper()
	c, err := smtp.Dial(p.Submission)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Hello("client.mailout.test"); err != nil {
		t.Fatal(err)
	}
	return c
}

// checkStored asserts that stored is sent as Postfix stores it: only
// Postfix's trace headers prepended, then sent byte for byte with LF line
// ends (Maildir) and dot-stuffing undone.
func checkStored(t *testing.T, stored, sent []byte) {
	t.Helper()
	want := bytes.ReplaceAll(sent, []byte("\r\n"), []byte("\n"))
	prefix, ok := bytes.CutSuffix(stored, want)
	if !ok {
		t.Fatalf("stored message does not end with the message sent.\nstored:\n%s\nsent:\n%s", stored, want)
	}
	allowed := map[string]bool{"return-path": true, "x-original-to": true, "delivered-to": true, "received": true}
	sc := bufio.NewScanner(bytes.NewReader(prefix))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t") {
			continue // folded continuation (RFC 5322 §2.2.3)
		}
		name, _, _ := strings.Cut(line, ":")
		if !allowed[strings.ToLower(name)] {
			t.Errorf("Postfix prepended an unexpected line %q", line)
		}
	}
}

func TestPostfixRelaysAuthenticated(t *testing.T) {
	p := Postfix(t)
	p.Clean(t)
	host, _, err := net.SplitHostPort(p.Submission)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		implicit bool // SMTPS port instead of STARTTLS on the submission port
		auth     smtp.Auth
		rcpt     string
	}{
		{"starttls plain", false, smtp.PlainAuth("", p.User, p.Pass, host), "someone@example.org"},
		{"starttls login", false, loginAuth{p.User, p.Pass}, "login.user@example.net"},
		{"starttls cram-md5", false, smtp.CRAMMD5Auth(p.User, p.Pass), "cram+tag@example.com"},
		{"implicit tls plain", true, smtp.PlainAuth("", p.User, p.Pass, host), "Mixed.Case@Example.COM"},
	}
	sent := map[string][]byte{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c *smtp.Client
			if tc.implicit {
				conn, err := tls.Dial("tcp", p.SMTPS, p.TLSConfig(t, host))
				if err != nil {
					t.Fatalf("TLS to %s: %v", p.SMTPS, err)
				}
				if c, err = smtp.NewClient(conn, host); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				if err := c.Hello("client.mailout.test"); err != nil {
					t.Fatal(err)
				}
			} else {
				c = dialSubmission(t, p)
				if err := c.StartTLS(p.TLSConfig(t, host)); err != nil {
					t.Fatalf("STARTTLS: %v", err)
				}
			}
			if ok, mechs := c.Extension("AUTH"); !ok || !strings.Contains(mechs, "PLAIN") {
				t.Fatalf("AUTH over TLS: advertised %v %q, want PLAIN among them", ok, mechs)
			}
			msg := testMessage(tc.rcpt, strings.ReplaceAll(tc.name, " ", "-"))
			sendVia(t, c, tc.auth, tc.rcpt, msg)
			sent[tc.rcpt] = msg
		})
	}
	if t.Failed() {
		return
	}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := p.WaitDelivered(ctx, t, len(sent)); err != nil {
		t.Fatal(err)
	}
	for _, rcpt := range slices.Sorted(maps.Keys(sent)) {
		got := p.Delivered(t, rcpt)
		if len(got) != 1 {
			t.Errorf("%s: %d messages delivered, want 1", rcpt, len(got))
			continue
		}
		checkStored(t, got[0], sent[rcpt])
	}
	if got := p.Delivered(t, "nobody@example.org"); len(got) != 0 {
		t.Errorf("nobody@example.org: %d messages, want none", len(got))
	}

	p.Clean(t)
	if err := p.WaitDelivered(ctx, t, 0); err != nil {
		t.Fatal(err)
	}
	if got := p.Delivered(t, "someone@example.org"); len(got) != 0 {
		t.Errorf("after Clean: %d messages for someone@example.org, want none", len(got))
	}
}

// replyCode returns the SMTP reply of err, which net/smtp reports as a
// *textproto.Error.
func replyCode(t *testing.T, err error) *textproto.Error {
	t.Helper()
	var te *textproto.Error
	if !errors.As(err, &te) {
		t.Fatalf("error %v (%T) is not an SMTP reply", err, err)
	}
	return te
}

func TestPostfixRefusals(t *testing.T) {
	p := Postfix(t)
	host, _, err := net.SplitHostPort(p.Submission)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("plain port denies relaying", func(t *testing.T) {
		c, err := smtp.Dial(p.Plain)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Hello("client.mailout.test"); err != nil {
			t.Fatal(err)
		}
		if ok, _ := c.Extension("AUTH"); ok {
			t.Error("plain port offers AUTH, want none")
		}
		if err := c.Mail("sender@example.com"); err != nil {
			t.Fatalf("MAIL: %v", err)
		}
		te := replyCode(t, c.Rcpt("someone@example.org"))
		if te.Code != 554 || !strings.HasPrefix(te.Msg, "5.7.1 ") || !strings.Contains(te.Msg, "Relay access denied") {
			t.Errorf("RCPT to an outside domain: %d %s, want 554 5.7.1 ... Relay access denied", te.Code, te.Msg)
		}
	})

	t.Run("submission requires STARTTLS", func(t *testing.T) {
		c := dialSubmission(t, p)
		if ok, _ := c.Extension("STARTTLS"); !ok {
			t.Error("STARTTLS not offered")
		}
		if ok, mechs := c.Extension("AUTH"); ok {
			t.Errorf("AUTH %q offered before STARTTLS, want none (smtpd_tls_auth_only)", mechs)
		}
		te := replyCode(t, c.Mail("sender@example.com"))
		if te.Code != 530 || !strings.HasPrefix(te.Msg, "5.7.0 ") {
			t.Errorf("MAIL before STARTTLS: %d %s, want 530 5.7.0", te.Code, te.Msg)
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		c := dialSubmission(t, p)
		if err := c.StartTLS(p.TLSConfig(t, host)); err != nil {
			t.Fatalf("STARTTLS: %v", err)
		}
		te := replyCode(t, c.Auth(smtp.PlainAuth("", p.User, "not-"+p.Pass, host)))
		if te.Code != 535 || !strings.HasPrefix(te.Msg, "5.7.8 ") {
			t.Errorf("AUTH with a wrong password: %d %s, want 535 5.7.8", te.Code, te.Msg)
		}
	})

	t.Run("certificate not trusted without the peer CA", func(t *testing.T) {
		c := dialSubmission(t, p)
		err := c.StartTLS(&tls.Config{ServerName: host, MinVersion: tls.VersionTLS12})
		if err == nil {
			t.Fatal("STARTTLS verified the self-signed certificate against the system roots")
		}
		if ce := (*tls.CertificateVerificationError)(nil); !errors.As(err, &ce) {
			t.Errorf("STARTTLS error %v, want a certificate verification error", err)
		}
	})
}

func TestParseEnv(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		want    map[string]string
		wantErr bool
	}{
		{"empty", "", map[string]string{}, false},
		{"comments and blanks", "# c\n\n  \nA=1\n", map[string]string{"A": "1"}, false},
		{"as written by the script", "MAILOUT_PEER_POSTFIX_SUBMISSION=127.0.0.1:2587\nMAILOUT_PEER_POSTFIX_CA=/var/lib/mailout-peers/tls/cert.pem\n",
			map[string]string{"MAILOUT_PEER_POSTFIX_SUBMISSION": "127.0.0.1:2587", "MAILOUT_PEER_POSTFIX_CA": "/var/lib/mailout-peers/tls/cert.pem"}, false},
		{"value with equals sign", "K=a=b\r\n", map[string]string{"K": "a=b"}, false},
		{"empty value", "K=\n", map[string]string{"K": ""}, false},
		{"last wins", "K=1\nK=2\n", map[string]string{"K": "2"}, false},
		{"no equals", "JUSTTEXT\n", nil, true},
		{"bad key", "1K=v\n", nil, true},
		{"key with space", "export K=v\n", nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseEnv(strings.NewReader(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseEnv(%q) error %v, want error %v", tc.in, err, tc.wantErr)
			}
			if !tc.wantErr && !maps.Equal(got, tc.want) {
				t.Errorf("parseEnv(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

// Setting reads the env file the set-up script writes, and a variable of
// the process environment overrides it.
func TestSettingFromEnvFileAndEnvironment(t *testing.T) {
	file := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(file, []byte("# test\nMAILOUT_CHROMIUM=/usr/bin/chromium\nMAILOUT_AXE=/x/axe.min.js\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(envFileVar, file)
	t.Setenv("MAILOUT_CHROMIUM", "")
	t.Setenv("MAILOUT_AXE", "/elsewhere/axe.min.js")
	if got := Setting("MAILOUT_CHROMIUM"); got != "/usr/bin/chromium" {
		t.Errorf("Setting(MAILOUT_CHROMIUM) = %q, want the env file's /usr/bin/chromium", got)
	}
	if got := Setting("MAILOUT_AXE"); got != "/elsewhere/axe.min.js" {
		t.Errorf("Setting(MAILOUT_AXE) = %q, want the environment's /elsewhere/axe.min.js", got)
	}
	if got := Setting("MAILOUT_NOT_THERE"); got != "" {
		t.Errorf("Setting(MAILOUT_NOT_THERE) = %q, want empty", got)
	}
	t.Setenv(envFileVar, filepath.Join(t.TempDir(), "missing"))
	if got := Setting("MAILOUT_CHROMIUM"); got != "" {
		t.Errorf("Setting(MAILOUT_CHROMIUM) without an env file = %q, want empty", got)
	}
}

func FuzzParseEnv(f *testing.F) {
	f.Add("A=1\n# c\nB=x=y\n")
	f.Add("1=2")
	f.Add("\x00=\n=\n")
	f.Fuzz(func(t *testing.T, in string) {
		m, err := parseEnv(strings.NewReader(in))
		if err != nil {
			return
		}
		// Round trip: writing the parsed pairs back yields the same map.
		var b strings.Builder
		for k, v := range m {
			if !validKey(k) {
				t.Fatalf("parsed invalid key %q", k)
			}
			fmt.Fprintf(&b, "%s=%s\n", k, v)
		}
		again, err := parseEnv(strings.NewReader(b.String()))
		if err != nil {
			t.Fatalf("re-parsing %q: %v", b.String(), err)
		}
		if !maps.Equal(m, again) {
			t.Fatalf("round trip changed %v into %v", m, again)
		}
	})
}

func TestFirstDeliveredTo(t *testing.T) {
	cases := []struct {
		name, in, want string
		wantErr        bool
	}{
		{"virtual(8) order", "Return-Path: <s@example.com>\nX-Original-To: a@b.example\nDelivered-To: a@b.example\nReceived: x\n\nbody\nDelivered-To: no@x\n", "a@b.example", false},
		{"first of two", "Delivered-To: one@x\nDelivered-To: two@x\n\n", "one@x", false},
		{"case-insensitive name", "delivered-to:  A@x \n\n", "A@x", false},
		{"only in body", "Subject: s\n\nDelivered-To: a@x\n", "", true},
		{"none", "Subject: s\n", "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := firstDeliveredTo(strings.NewReader(tc.in))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("firstDeliveredTo = %q, %v; want %q, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestSameAddress(t *testing.T) {
	cases := []struct {
		a, b string
		want bool
	}{
		{"a@example.org", "a@example.org", true},
		{"a@Example.ORG", "a@example.org", true},
		{"A@example.org", "a@example.org", false}, // local parts may be case-sensitive
		{"a@example.org", "a@example.net", false},
		{"\"x@y\"@example.org", "\"x@y\"@EXAMPLE.org", true},
		{"postmaster", "postmaster", true},
	}
	for _, tc := range cases {
		if got := sameAddress(tc.a, tc.b); got != tc.want {
			t.Errorf("sameAddress(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestDNSPeerAnswers checks the DNS peer with the standard library's DNS
// client: the records scripts/test-setup.sh promises are there.
func TestDNSPeerAnswers(t *testing.T) {
	p := DNS(t)
	r := p.Resolver()
	ctx := t.Context()
	for _, d := range p.MXDomains {
		mxs, err := r.LookupMX(ctx, d)
		if err != nil || len(mxs) != 1 || mxs[0].Host != p.MXHost+"." || mxs[0].Pref != 10 {
			t.Errorf("MX %s = %v, %v; want 10 %s.", d, mxs, err, p.MXHost)
		}
	}
	mxs, err := r.LookupMX(ctx, p.FallbackDomain)
	if err != nil || len(mxs) != 2 || mxs[0].Pref != 5 || mxs[1].Host != p.MXHost+"." {
		t.Errorf("MX %s = %v, %v; want a dead MX 5 and MX 10 %s.", p.FallbackDomain, mxs, err, p.MXHost)
	}
	addrs, err := r.LookupHost(ctx, p.MXHost)
	if err != nil || !slices.Equal(addrs, []string{"127.0.0.1"}) {
		t.Errorf("%s = %v, %v; want 127.0.0.1", p.MXHost, addrs, err)
	}
	addrs, err = r.LookupHost(ctx, p.ImplicitDomain)
	if err != nil || !slices.Equal(addrs, []string{"127.0.0.1"}) {
		t.Errorf("%s = %v, %v; want 127.0.0.1", p.ImplicitDomain, addrs, err)
	}
	// No MX for the implicit domain (the A record above is what makes it
	// an implicit MX rather than a missing domain).
	if mxs, err := r.LookupMX(ctx, p.ImplicitDomain); err == nil && len(mxs) > 0 {
		t.Errorf("MX %s = %v, want none", p.ImplicitDomain, mxs)
	}
	_, err = r.LookupMX(ctx, p.NXDomain)
	var de *net.DNSError
	if !errors.As(err, &de) || !de.IsNotFound {
		t.Errorf("MX %s: %v, want not found", p.NXDomain, err)
	}
}
