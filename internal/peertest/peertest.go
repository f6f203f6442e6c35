// Package peertest finds the real mail servers ("peers") that
// scripts/test-setup.sh installs and starts on loopback, for interop tests.
//
// Place in the data flow: none — it is test support. Tests of the route end
// (smtpclient, transport, scheduler) hand mailout's output to a real Postfix
// through it and read back what Postfix stored, byte for byte:
//
//	mailout ──SMTP (STARTTLS/implicit TLS, AUTH)──> Postfix 127.0.0.1:2587/2465
//	                                                   │ virtual(8)
//	                              test <── Delivered ── Maildir (one file per recipient)
//
// For the direct route, a real DNS server (dnsmasq, DNS) gives MX records
// that point at the same Postfix, which accepts the test domains without
// AUTH on its plain port:
//
//	mailout ──MX?──> dnsmasq 127.0.0.1:5354 ──> mx1.mailout.test = 127.0.0.1
//	mailout ──SMTP──> Postfix 127.0.0.1:2525 ──> the same Maildir
//
// The peers' endpoints and credentials come from the env file the set-up
// script writes (/var/lib/mailout-peers/env, or the path in
// MAILOUT_PEERS_ENV); variables of the same name in the process environment
// take precedence. When a peer is missing the test is skipped, unless
// MAILOUT_REQUIRE_PEERS=1 (CI), where a missing peer is a failure.
package peertest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// DefaultEnvFile is where scripts/test-setup.sh writes the peers' settings.
const DefaultEnvFile = "/var/lib/mailout-peers/env"

// setupHint tells a person what to run when a peer is missing.
const setupHint = "run scripts/test-setup.sh (as root, or it re-runs itself with sudo) to install and start the peers"

// Environment variable names, shared with scripts/test-setup.sh.
const (
	envFileVar      = "MAILOUT_PEERS_ENV"
	requireVar      = "MAILOUT_REQUIRE_PEERS"
	keySubmission   = "MAILOUT_PEER_POSTFIX_SUBMISSION"
	keySMTPS        = "MAILOUT_PEER_POSTFIX_SMTPS"
	keyPlain        = "MAILOUT_PEER_POSTFIX_PLAIN"
	keyUser         = "MAILOUT_PEER_POSTFIX_USER"
	keyPass         = "MAILOUT_PEER_POSTFIX_PASS"
	keyCA           = "MAILOUT_PEER_POSTFIX_CA"
	keyMailDir      = "MAILOUT_PEER_POSTFIX_MAILDIR"
	keyLocalDomain  = "MAILOUT_PEER_POSTFIX_LOCAL_DOMAIN"
	keyLock         = "MAILOUT_PEER_LOCK"
	probeTimeout    = 3 * time.Second
	lockTimeout     = 5 * time.Minute
	pollInterval    = 20 * time.Millisecond
	defaultWaitTime = time.Minute
)

// RequirePeers reports whether a missing peer must fail the test instead of
// skipping it (MAILOUT_REQUIRE_PEERS=1, set by .ci/run).
func RequirePeers() bool {
	v := os.Getenv(requireVar)
	return v == "1" || strings.EqualFold(v, "true")
}

// PostfixPeer is a running Postfix relay on loopback.
//
//   - Submission: STARTTLS required (530 5.7.0 before it), AUTH only after
//     STARTTLS, relaying only when authenticated (RFC 6409, RFC 4954).
//   - SMTPS: implicit TLS (RFC 8314 §3.3), AUTH required for relaying.
//   - Plain: no TLS, no AUTH; any recipient outside LocalDomain gets
//     "554 5.7.1 <rcpt>: Relay access denied".
//
// AUTH mechanisms PLAIN, LOGIN and CRAM-MD5 accept User and Pass. The server
// certificate is self-signed for 127.0.0.1 and localhost; CAFile is its PEM.
// Every accepted message, whatever the recipient's domain, is stored in the
// Maildir MailDir, one file per recipient.
type PostfixPeer struct {
	Submission, SMTPS, Plain string // host:port
	User, Pass               string
	CAFile                   string
	MailDir                  string
	LocalDomain              string // domain Postfix accepts without AUTH on every port

	mu     sync.Mutex
	rcptOf map[string]string // Maildir file name -> its Delivered-To address
}

// Postfix returns the real Postfix relay peer. When it is not running the test
// is skipped, or fails when RequirePeers is true.
//
// The peer is shared by every test package (go test runs packages in
// parallel), so Postfix holds a cross-process lock on it until the test ends:
// call it once per test and pass the peer to subtests. Call Clean before
// sending so that counts start from zero.
func Postfix(t testing.TB) *PostfixPeer {
	t.Helper()
	p, err := loadPostfix()
	if err == nil {
		err = p.probe(t.Context())
	}
	if err != nil {
		if RequirePeers() {
			t.Fatalf("Postfix peer required (%s=1) but unavailable: %v; %s", requireVar, err, setupHint)
		}
		t.Skipf("Postfix peer unavailable: %v; %s", err, setupHint)
	}
	lockPath := lookupEnv(mustEnvFile(), keyLock)
	if lockPath != "" {
		unlock, err := lockFile(t.Context(), lockPath, lockTimeout)
		if err != nil {
			t.Fatalf("locking the Postfix peer: %v (a test that calls peertest.Postfix twice deadlocks itself)", err)
		}
		t.Cleanup(unlock)
	}
	return p
}

// CertPool returns a pool holding the peer's certificate, for tls.Config.RootCAs.
func (p *PostfixPeer) CertPool(t testing.TB) *x509.CertPool {
	t.Helper()
	pool, err := certPool(p.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

// TLSConfig returns a client TLS configuration that trusts only the peer's
// certificate and verifies it for host (the host part of an endpoint).
func (p *PostfixPeer) TLSConfig(t testing.TB, host string) *tls.Config {
	t.Helper()
	return &tls.Config{RootCAs: p.CertPool(t), ServerName: host, MinVersion: tls.VersionTLS12}
}

// Delivered returns the messages Postfix stored for the envelope recipient
// rcpt, as stored: Postfix's own trace headers (Return-Path, X-Original-To,
// Delivered-To, Received) come first, then the message as received, with
// lines ending in LF, not CRLF (Maildir convention), and dot-stuffing
// removed. The local part is compared exactly, the domain without regard to
// case. Order is delivery order.
func (p *PostfixPeer) Delivered(t testing.TB, rcpt string) [][]byte {
	t.Helper()
	files, err := p.files()
	if err != nil {
		t.Fatalf("reading the Postfix peer's Maildir: %v", err)
	}
	var out [][]byte
	for _, f := range files {
		to, err := p.recipientOf(f)
		if errors.Is(err, os.ErrNotExist) {
			continue // removed by Clean in the meantime
		}
		if err != nil {
			t.Fatalf("reading %s: %v", f, err)
		}
		if !sameAddress(to, rcpt) {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("reading %s: %v", f, err)
		}
		out = append(out, b)
	}
	return out
}

// WaitDelivered waits until at least want messages in total are in the
// Maildir. Postfix delivers asynchronously after its 250 reply to the final
// ".", so this polls the Maildir with a short tick until the count is
// reached or ctx ends (a minute when ctx has no deadline). The error says
// how many arrived.
func (p *PostfixPeer) WaitDelivered(ctx context.Context, t testing.TB, want int) error {
	t.Helper()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultWaitTime)
		defer cancel()
	}
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		files, err := p.files()
		if err != nil {
			return fmt.Errorf("postfix peer: reading the Maildir: %w", err)
		}
		if len(files) >= want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("postfix peer: %d of %d messages delivered to %s: %w", len(files), want, p.MailDir, ctx.Err())
		case <-tick.C:
		}
	}
}

// Clean removes every delivered message from the Maildir. Messages still in
// Postfix's queue (accepted but not yet delivered) are not affected.
func (p *PostfixPeer) Clean(t testing.TB) {
	t.Helper()
	files, err := p.files()
	if err != nil {
		t.Fatalf("cleaning the Postfix peer's Maildir: %v", err)
	}
	for _, f := range files {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("cleaning the Postfix peer's Maildir: %v", err)
		}
	}
	p.mu.Lock()
	clear(p.rcptOf)
	p.mu.Unlock()
}

// files lists the delivered messages (Maildir new/ and cur/; tmp/ holds
// deliveries in progress) in delivery order.
func (p *PostfixPeer) files() ([]string, error) {
	type entry struct {
		path string
		mod  time.Time
	}
	var entries []entry
	for _, sub := range []string{"new", "cur"} {
		dir := filepath.Join(p.MailDir, sub)
		des, err := os.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		for _, de := range des {
			if !de.Type().IsRegular() || strings.HasPrefix(de.Name(), ".") {
				continue
			}
			info, err := de.Info()
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, err
			}
			entries = append(entries, entry{filepath.Join(dir, de.Name()), info.ModTime()})
		}
	}
	slices.SortFunc(entries, func(a, b entry) int {
		if c := a.mod.Compare(b.mod); c != 0 {
			return c
		}
		return strings.Compare(a.path, b.path)
	})
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.path
	}
	return out, nil
}

// recipientOf returns the address in the first Delivered-To: header of the
// message file, which virtual(8) prepends with the envelope recipient.
// Results are cached by file name (Maildir names are unique).
func (p *PostfixPeer) recipientOf(path string) (string, error) {
	name := filepath.Base(path)
	p.mu.Lock()
	to, ok := p.rcptOf[name]
	p.mu.Unlock()
	if ok {
		return to, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	to, err = firstDeliveredTo(f)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	p.mu.Lock()
	if p.rcptOf == nil {
		p.rcptOf = make(map[string]string)
	}
	p.rcptOf[name] = to
	p.mu.Unlock()
	return to, nil
}

// firstDeliveredTo reads the header section (RFC 5322 §2.1: up to the first
// empty line) and returns the value of the first Delivered-To field.
func firstDeliveredTo(r io.Reader) (string, error) {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if err != nil && err != io.EOF {
			return "", err
		}
		trimmed := strings.TrimRight(line, "\r\n")
		if trimmed == "" {
			break // the empty line that ends the header section, or EOF
		}
		if name, value, ok := strings.Cut(trimmed, ":"); ok && strings.EqualFold(name, "Delivered-To") {
			return strings.TrimSpace(value), nil
		}
		if err == io.EOF {
			break
		}
	}
	return "", errors.New("no Delivered-To header")
}

// sameAddress compares two addresses: the local part exactly (RFC 5321
// §2.4: it may be case-sensitive), the domain case-insensitively.
func sameAddress(a, b string) bool {
	al, ad, aok := cutAt(a)
	bl, bd, bok := cutAt(b)
	if !aok || !bok {
		return a == b
	}
	return al == bl && strings.EqualFold(ad, bd)
}

func cutAt(addr string) (local, domain string, ok bool) {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return "", "", false
	}
	return addr[:i], addr[i+1:], true
}

// probe checks that each endpoint answers with an SMTP greeting (RFC 5321
// §4.2: "220 "), through TLS verified against CAFile for the SMTPS port,
// and that the Maildir exists.
func (p *PostfixPeer) probe(ctx context.Context) error {
	pool, err := certPool(p.CAFile)
	if err != nil {
		return err
	}
	for _, ep := range []struct {
		addr string
		tls  bool
	}{{p.Submission, false}, {p.Plain, false}, {p.SMTPS, true}} {
		if err := probeGreeting(ctx, ep.addr, ep.tls, pool); err != nil {
			return err
		}
	}
	for _, sub := range []string{"new", "cur"} {
		if _, err := os.ReadDir(filepath.Join(p.MailDir, sub)); err != nil {
			return fmt.Errorf("maildir: %w", err)
		}
	}
	return nil
}

func probeGreeting(ctx context.Context, addr string, implicitTLS bool, pool *x509.CertPool) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", addr, err)
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(deadline); err != nil {
			return err
		}
	}
	if implicitTLS {
		host, _, _ := net.SplitHostPort(addr)
		tc := tls.Client(conn, &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12})
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("TLS with %s: %w", addr, err)
		}
		conn = tc
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("reading the greeting of %s: %w", addr, err)
	}
	if !strings.HasPrefix(line, "220") {
		return fmt.Errorf("%s greets %q, want 220", addr, strings.TrimSpace(line))
	}
	return nil
}

func certPool(caFile string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("peer CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("peer CA %s: no PEM certificate", caFile)
	}
	return pool, nil
}

// loadPostfix reads the peer's settings from the env file and the process
// environment.
func loadPostfix() (*PostfixPeer, error) {
	file := mustEnvFile()
	p := &PostfixPeer{
		Submission:  lookupEnv(file, keySubmission),
		SMTPS:       lookupEnv(file, keySMTPS),
		Plain:       lookupEnv(file, keyPlain),
		User:        lookupEnv(file, keyUser),
		Pass:        lookupEnv(file, keyPass),
		CAFile:      lookupEnv(file, keyCA),
		MailDir:     lookupEnv(file, keyMailDir),
		LocalDomain: lookupEnv(file, keyLocalDomain),
	}
	for key, v := range map[string]string{
		keySubmission: p.Submission, keySMTPS: p.SMTPS, keyPlain: p.Plain,
		keyUser: p.User, keyPass: p.Pass, keyCA: p.CAFile, keyMailDir: p.MailDir,
	} {
		if v == "" {
			return nil, fmt.Errorf("%s is not set (env file %s)", key, envFilePath())
		}
	}
	return p, nil
}

func envFilePath() string {
	if path := os.Getenv(envFileVar); path != "" {
		return path
	}
	return DefaultEnvFile
}

// mustEnvFile returns the parsed env file, or an empty map when it is
// missing or unreadable (the process environment may still have the keys).
func mustEnvFile() map[string]string {
	b, err := os.ReadFile(envFilePath())
	if err != nil {
		return map[string]string{}
	}
	m, err := parseEnv(bytes.NewReader(b))
	if err != nil {
		return map[string]string{}
	}
	return m
}

// Setting returns the value of key from the process environment or, when it
// is not set there, from the peers' env file (the variables of the browser
// tests, MAILOUT_CHROMIUM and MAILOUT_AXE, are there too). It is "" when
// neither has it.
func Setting(key string) string {
	return lookupEnv(mustEnvFile(), key)
}

func lookupEnv(file map[string]string, key string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return file[key]
}

// parseEnv parses the env file written by scripts/test-setup.sh: KEY=value
// lines, '#' comments and blank lines. Values are taken literally (no quotes,
// no expansion); the script writes only values without blanks, quotes or '$',
// which the shell's "." in scripts/test.sh reads the same way.
func parseEnv(r io.Reader) (map[string]string, error) {
	m := make(map[string]string)
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok || !validKey(key) {
			return nil, fmt.Errorf("line %d: want KEY=value", n)
		}
		m[key] = value
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return m, nil
}

// validKey reports whether s is a shell variable name: [A-Za-z_][A-Za-z0-9_]*.
func validKey(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case i > 0 && '0' <= c && c <= '9':
		default:
			return false
		}
	}
	return true
}
