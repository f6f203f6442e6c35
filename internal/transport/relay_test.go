package transport

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailout/internal/outcome"
	"mailout/internal/smtpclient"
	"mailout/internal/smtptest"
)

const testPass = "s3cret-Passw0rd"

func msg(to string) *Message {
	body := "From: news@example.com\r\nTo: " + to + "\r\nSubject: hi\r\nMessage-ID: <1@example.com>\r\n\r\nHello " + to + "\r\n.leading dot\r\n"
	return &Message{From: "news@example.com", To: to, Domain: "example.org", MessageID: "1@example.com", Data: []byte(body)}
}

// account builds a relay account for a test server.
func account(t *testing.T, raw string) *RelayAccount {
	t.Helper()
	a, _, err := ParseRelayURL(raw, func(string) string { return "" }, func(string) ([]byte, error) { return nil, errors.New("no") })
	if err != nil {
		t.Fatalf("ParseRelayURL(%s): %v", raw, err)
	}
	return a
}

func newRelay(t *testing.T, roots *x509.CertPool, conns int, accounts ...*RelayAccount) *Relay {
	t.Helper()
	r, err := NewRelay(RelayConfig{Accounts: accounts, LocalName: "sender.example.com", MaxConns: conns, RootCAs: roots,
		Timeouts: smtpclient.Timeouts{Connect: 2 * time.Second, Greeting: 5 * time.Second, DataTerm: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// submission starts a server like a provider's port 587: STARTTLS, AUTH
// required, relaying only when authenticated.
func submission(t *testing.T, faults func(smtptest.Event) *smtptest.Fault) (*smtptest.Server, *x509.CertPool, string) {
	t.Helper()
	tc, pool, fp := smtptest.NewTestCert(t)
	s := smtptest.Start(t, smtptest.Options{TLS: tc, Auth: map[string]string{"user": testPass},
		RequireAuth: true, RelayDomains: []string{"example.com"}, Faults: faults})
	return s, pool, fp
}

func TestRelayDeliversOverSTARTTLSWithAuth(t *testing.T) {
	s, pool, _ := submission(t, nil)
	r := newRelay(t, pool, 2, account(t, "smtp://user:"+testPass+"@"+s.Addr))
	const n = 20
	for i := range n {
		res := r.Deliver(t.Context(), msg(fmt.Sprintf("rcpt%d@example.org", i)))
		if res.Class != outcome.Delivered {
			t.Fatalf("message %d: %+v", i, res)
		}
		if res.Via != "relay:127.0.0.1" {
			t.Errorf("Via = %q", res.Via)
		}
	}
	got := s.Messages()
	if len(got) != n {
		t.Fatalf("server got %d messages, want %d", len(got), n)
	}
	for _, m := range got {
		if !m.TLS || m.AuthUser != "user" {
			t.Errorf("message to %v: TLS=%v auth=%q; want TLS and AUTH", m.Rcpts, m.TLS, m.AuthUser)
		}
	}
	if !strings.Contains(string(got[0].Data), "\r\n.leading dot\r\n") {
		t.Errorf("dot-stuffing did not round-trip: %q", got[0].Data)
	}
	// Several messages per connection, one transaction after another.
	if c := s.Connections(); c >= n {
		t.Errorf("%d connections for %d messages: sessions are not reused", c, n)
	}
}

func TestRelayPinnedSelfSignedCertificate(t *testing.T) {
	s, _, fp := submission(t, nil)
	r := newRelay(t, nil, 1, account(t, "smtp://user:"+testPass+"@"+s.Addr+"?fingerprint=sha256:"+fp))
	if res := r.Deliver(t.Context(), msg("a@example.org")); res.Class != outcome.Delivered {
		t.Fatalf("pinned certificate: %+v", res)
	}
	wrong := strings.Repeat("ab", 32)
	r2 := newRelay(t, nil, 1, account(t, "smtp://user:"+testPass+"@"+s.Addr+"?fingerprint=sha256:"+wrong))
	if res := r2.Deliver(t.Context(), msg("a@example.org")); res.Class != outcome.TLSFailed {
		t.Fatalf("wrong pin: class %s, want tls-failed (%+v)", res.Class, res)
	}
}

func TestRelayUntrustedCertificateFailsClosed(t *testing.T) {
	s, _, _ := submission(t, nil)
	r := newRelay(t, x509.NewCertPool(), 1, account(t, "smtp://user:"+testPass+"@"+s.Addr))
	res := r.Deliver(t.Context(), msg("a@example.org"))
	if res.Class != outcome.TLSFailed || !res.LocalFault {
		t.Fatalf("untrusted certificate: %+v, want tls-failed (local)", res)
	}
	if len(s.Messages()) != 0 {
		t.Fatal("a message went out over an unverified connection")
	}
}

func TestRelayRefusesAuthWithoutSTARTTLS(t *testing.T) {
	// A server (or a MITM) that does not offer STARTTLS: the password must
	// not be sent.
	s := smtptest.Start(t, smtptest.Options{Auth: map[string]string{"user": testPass}, RequireAuth: true})
	r := newRelay(t, nil, 1, account(t, "smtp://user:"+testPass+"@"+s.Addr))
	res := r.Deliver(t.Context(), msg("a@example.org"))
	if res.Class != outcome.TLSFailed {
		t.Fatalf("class %s, want tls-failed: %+v", res.Class, res)
	}
	if strings.Contains(res.Text, testPass) || strings.Contains(res.Reason, testPass) {
		t.Fatal("password in the result text")
	}
}

func TestRelayFailureClasses(t *testing.T) {
	tests := []struct {
		name   string
		url    func(addr string) string
		faults func(smtptest.Event) *smtptest.Fault
		to     string
		class  outcome.Class
		kind   outcome.Kind
		code   int
	}{
		{name: "wrong password", url: func(a string) string { return "smtp://user:wrong@" + a }, class: outcome.AuthFailed, kind: outcome.KindPermanentForRun, code: 535},
		{name: "no credentials", url: func(a string) string { return "smtp://" + a }, class: outcome.AuthRequired, kind: outcome.KindPermanentForRun, code: 530},
		{name: "user unknown", url: okURL, faults: onRcpt(550, "5.1.1", "<x@example.org>: Recipient address rejected: User unknown in virtual mailbox table"),
			class: outcome.RecipientUnknown, kind: outcome.KindPermanent, code: 550},
		{name: "mailbox full", url: okURL, faults: onRcpt(452, "4.2.2", "Mailbox full"), class: outcome.MailboxFull, kind: outcome.KindTemporary, code: 452},
		{name: "rate limited", url: okURL, faults: onMail(421, "4.7.0", "Too many messages, slow down"), class: outcome.RateLimited, kind: outcome.KindTemporary, code: 421},
		{name: "greylisted", url: okURL, faults: onRcpt(451, "4.7.1", "Greylisting in action, please come back later"), class: outcome.Greylisted, kind: outcome.KindTemporary, code: 451},
		{name: "sender rejected", url: okURL, faults: onMail(553, "5.7.1", "<news@example.com>: Sender address rejected: not owned by user user"), class: outcome.SenderRejected, kind: outcome.KindPermanent, code: 553},
		{name: "content rejected", url: okURL, faults: onBody(554, "5.7.1", "Message rejected as spam"), class: outcome.ContentRejected, kind: outcome.KindPermanent, code: 554},
		{name: "dropped mid-data", url: okURL, faults: func(e smtptest.Event) *smtptest.Fault {
			if e.Step == "data" {
				return &smtptest.Fault{Drop: true}
			}
			return nil
		}, class: outcome.ProtocolError, kind: outcome.KindTemporary},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, pool, _ := submission(t, tt.faults)
			r := newRelay(t, pool, 1, account(t, tt.url(s.Addr)))
			res := r.Deliver(t.Context(), msg("x@example.org"))
			if res.Class != tt.class || res.Kind != tt.kind || res.Code != tt.code {
				t.Fatalf("got class %s kind %s code %d (%s); want %s %s %d", res.Class, res.Kind, res.Code, res.Text, tt.class, tt.kind, tt.code)
			}
			if res.Reason == "" {
				t.Error("no reason")
			}
			if outcome.Advice(res.Class, "relay", "en") == "" || outcome.Advice(res.Class, "relay", "es") == "" {
				t.Error("no advice")
			}
		})
	}
}

func okURL(a string) string { return "smtp://user:" + testPass + "@" + a }

func onStep(step string, code int, enh, text string) func(smtptest.Event) *smtptest.Fault {
	return func(e smtptest.Event) *smtptest.Fault {
		if e.Step == step {
			return &smtptest.Fault{Code: code, Enhanced: enh, Text: text}
		}
		return nil
	}
}
func onRcpt(code int, enh, text string) func(smtptest.Event) *smtptest.Fault {
	return onStep("rcpt", code, enh, text)
}
func onMail(code int, enh, text string) func(smtptest.Event) *smtptest.Fault {
	return onStep("mail", code, enh, text)
}
func onBody(code int, enh, text string) func(smtptest.Event) *smtptest.Fault {
	return onStep("body", code, enh, text)
}

func TestRelayRelayDenied(t *testing.T) {
	// An open port that does not relay for us (another ISP's server).
	s := smtptest.Start(t, smtptest.Options{RelayDomains: []string{"example.com"}})
	r := newRelay(t, nil, 1, account(t, "smtp+insecure://"+s.Addr))
	res := r.Deliver(t.Context(), msg("x@example.org"))
	if res.Class != outcome.RelayDenied || res.Kind != outcome.KindPermanentForRun || !res.LocalFault {
		t.Fatalf("%+v, want relay-denied, permanent for the run, local", res)
	}
}

func TestRelayConnectRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now: the kernel answers RST
	r := newRelay(t, nil, 1, account(t, "smtp+insecure://"+addr))
	res := r.Deliver(t.Context(), msg("x@example.org"))
	if res.Class != outcome.ConnectRefused || !res.LocalFault {
		t.Fatalf("%+v, want connect-refused (local)", res)
	}
}

func TestRelayHostDoesNotExist(t *testing.T) {
	// .invalid never resolves (RFC 2606 §2).
	r := newRelay(t, nil, 1, account(t, "smtp+insecure://smtp.mailout-test.invalid:2525"))
	res := r.Deliver(t.Context(), msg("x@example.org"))
	if res.Class != outcome.DNSNXDomain || !res.LocalFault {
		t.Fatalf("%+v, want dns-nxdomain (a configuration fault)", res)
	}
}

// failoverRelay is a relay of two accounts: the first trusts its server's
// certificate and gets as far as AUTH (535, wrong password); the second
// pins its own server's certificate and works.
func failoverRelay(t *testing.T) (*Relay, *smtptest.Server) {
	t.Helper()
	bad, roots, _ := submission(t, nil)
	good, _, _ := submission(t, nil)
	r, err := NewRelay(RelayConfig{
		Accounts: []*RelayAccount{
			account(t, "smtp://user:wrong@"+bad.Addr),
			account(t, "smtp://user:"+testPass+"@"+good.Addr+"?fingerprint=sha256:"+fingerprintOf(t, good)),
		},
		MaxConns: 1, RootCAs: roots,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, good
}

func TestRelayFailsOverToNextAccount(t *testing.T) {
	r, good := failoverRelay(t)
	for i := range 3 {
		res := r.Deliver(t.Context(), msg(fmt.Sprintf("r%d@example.org", i)))
		if res.Class != outcome.Delivered {
			t.Fatalf("message %d: %+v", i, res)
		}
	}
	if n := len(good.Messages()); n != 3 {
		t.Fatalf("second account got %d messages, want 3", n)
	}
}

// fingerprintOf dials the server's STARTTLS to read its certificate's
// fingerprint: the two test servers have different self-signed certificates.
func fingerprintOf(t *testing.T, s *smtptest.Server) string {
	t.Helper()
	var fp string
	c, err := smtpclient.Dial(t.Context(), smtpclient.Config{Addr: s.Addr, Host: "127.0.0.1", TLS: smtpclient.TLSOpportunistic,
		TLSConfig: insecureCapture(&fp)})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	return fp
}

func TestRelayURLNeverShowsPassword(t *testing.T) {
	for _, raw := range []string{
		"smtp://user:" + testPass + "@host:587",
		"smtp://user:" + testPass + "@host:99999",
		"smtp://user:" + testPass + "@host:587/path",
		"smtpx://user:" + testPass + "@host",
		"smtp://user:" + testPass + "@host:587?bogus=1",
		"smtp://user:" + testPass + "@ho st:587",
	} {
		a, _, err := ParseRelayURL(raw, func(string) string { return "" }, nil)
		if err != nil {
			if strings.Contains(err.Error(), testPass) {
				t.Errorf("error for %q shows the password: %v", raw, err)
			}
			continue
		}
		if strings.Contains(a.String(), testPass) || strings.Contains(a.Redacted("", ""), testPass) {
			t.Errorf("String/Redacted show the password: %s", a)
		}
	}
}

func TestRelayURLPasswordSources(t *testing.T) {
	env := map[string]string{"SMTP_PASS": "from-env"}
	getenv := func(k string) string { return env[k] }
	read := func(p string) ([]byte, error) {
		if p == "/run/pass" {
			return []byte("from-file\n"), nil
		}
		return nil, errors.New("no such file")
	}
	a, src, err := ParseRelayURL("smtp://u@h?password-env=SMTP_PASS", getenv, read)
	if err != nil || a.Password != "from-env" || src.Env != "SMTP_PASS" || a.Port != 587 {
		t.Fatalf("env: %+v %+v %v", a, src, err)
	}
	a, src, err = ParseRelayURL("smtps://u@h?password-file=/run/pass", getenv, read)
	if err != nil || a.Password != "from-file" || src.File != "/run/pass" || a.Port != 465 || a.TLS != smtpclient.TLSImplicit {
		t.Fatalf("file: %+v %+v %v", a, src, err)
	}
	if _, _, err := ParseRelayURL("smtp://u@h?password-env=MISSING", getenv, read); err == nil {
		t.Fatal("missing env var accepted")
	}
	if a, _, _ := ParseRelayURL("smtp://u@h?password-env=SMTP_PASS", getenv, read); strings.Contains(a.Redacted("SMTP_PASS", ""), "from-env") {
		t.Fatal("stored form holds the password")
	}
}

// TestRelayNetworkFaults covers the faults that need a network we do not
// have on loopback: a port that drops SYNs (firewall, antivirus, ISP) and
// no route to the host (gateway problem). The dialer reproduces what the
// kernel returns; the real thing is exercised in network namespaces by the
// doctor's tests.
func TestRelayNetworkFaults(t *testing.T) {
	tests := []struct {
		name  string
		dial  func(ctx context.Context, network, addr string) (net.Conn, error)
		class outcome.Class
	}{
		{"filtered port", func(ctx context.Context, network, addr string) (net.Conn, error) {
			<-ctx.Done() // SYN never answered
			return nil, &net.OpError{Op: "dial", Net: network, Err: ctx.Err()}
		}, outcome.ConnectTimeout},
		{"no route", func(ctx context.Context, network, addr string) (net.Conn, error) {
			return nil, &net.OpError{Op: "dial", Net: network, Err: os.NewSyscallError("connect", syscall.ENETUNREACH)}
		}, outcome.NetworkUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewRelay(RelayConfig{Accounts: []*RelayAccount{account(t, "smtp+insecure://127.0.0.1:2525")}, MaxConns: 1,
				Dial: tt.dial, Timeouts: smtpclient.Timeouts{Connect: 50 * time.Millisecond}})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			res := r.Deliver(t.Context(), msg("x@example.org"))
			if res.Class != tt.class || !res.LocalFault || res.Kind != outcome.KindTemporary {
				t.Fatalf("%+v, want %s (temporary, local)", res, tt.class)
			}
			if outcome.Advice(res.Class, "relay", "en") == "" {
				t.Fatal("no advice")
			}
		})
	}
}

func TestRelayTemporaryReply(t *testing.T) {
	s, pool, _ := submission(t, onRcpt(450, "4.2.0", "Temporary local problem, try later"))
	r := newRelay(t, pool, 1, account(t, okURL(s.Addr)))
	res := r.Deliver(t.Context(), msg("x@example.org"))
	if res.Class != outcome.Temporary || res.Kind != outcome.KindTemporary || res.Code != 450 || res.Enhanced != "4.2.0" {
		t.Fatalf("%+v, want temporary 450 4.2.0", res)
	}
}

// The connection drops after the final "." and before the reply: the server
// may have the message. The result is temporary and flagged ambiguous, so
// the resend is counted as a possible duplicate.
func TestRelayLostReplyAfterDotIsAmbiguous(t *testing.T) {
	s := smtptest.Start(t, smtptest.Options{Faults: func(e smtptest.Event) *smtptest.Fault {
		if e.Step == "body" {
			return &smtptest.Fault{DropAfterBody: true}
		}
		return nil
	}})
	r := newRelay(t, nil, 1, account(t, "smtp+insecure://"+s.Addr))
	res := r.Deliver(t.Context(), msg("x@example.org"))
	if res.Class != outcome.ProtocolError || res.Kind != outcome.KindTemporary || !res.Ambiguous {
		t.Fatalf("%+v; want a temporary protocol error flagged ambiguous", res)
	}
}

func TestRelayURLUserNameThatIsAnAddress(t *testing.T) {
	for _, raw := range []string{"smtp://me@example.com:pw@smtp.example.com:587", "smtp://me%40example.com:pw@smtp.example.com:587"} {
		a, _, err := ParseRelayURL(raw, nil, nil)
		if err != nil || a.Username != "me@example.com" || a.Password != "pw" || a.Host != "smtp.example.com" {
			t.Errorf("%s: %+v %v", raw, a, err)
		}
	}
}

// With MaxIdle < 0 no session outlives its message: the next message is
// sent on a new connection (a fleet counts connections by the slots its
// sessions hold, and an idle one would hold none).
func TestRelayKeepsNoIdleSessionWithNegativeMaxIdle(t *testing.T) {
	s := smtptest.Start(t, smtptest.Options{})
	r, err := NewRelay(RelayConfig{Accounts: []*RelayAccount{account(t, "smtp+insecure://"+s.Addr)},
		LocalName: "sender.example.com", MaxConns: 1, MaxIdle: -1,
		Timeouts: smtpclient.Timeouts{Connect: 2 * time.Second, Greeting: 5 * time.Second, DataTerm: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	for _, to := range []string{"a@example.org", "b@example.org"} {
		if res := r.Deliver(t.Context(), msg(to)); !res.IsDelivered() {
			t.Fatalf("%s: %+v", to, res)
		}
	}
	if n := s.Connections(); n != 2 {
		t.Fatalf("the server accepted %d connections for two messages, want 2 (one each, none kept idle)", n)
	}
}
