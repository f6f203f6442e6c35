package peertest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BouncePeer is the bounce mailbox of the peers: a Maildir that the
// Postfix peer fills with the mail of Domain, served by Dovecot over IMAP
// (STARTTLS, and implicit TLS) and POP3 (STLS, and implicit TLS) on
// loopback for the account User / Pass. The certificate is the Postfix
// peer's (CAFile).
//
// Postfix sends real DSNs there when it cannot deliver to Unknown (the
// next hop answers 550 5.1.1), to NullMXDomain (5.1.10) or to NXDomain
// (5.4.4), for a message whose envelope sender is in Domain.
type BouncePeer struct {
	IMAP, IMAPS, POP3, POP3S string // host:port
	User, Pass               string
	CAFile                   string
	MailDir                  string
	Domain                   string
	Unknown                  string // an address whose server refuses it at RCPT
	NullMXDomain, NXDomain   string
}

// Bounce returns the bounce mailbox peer; the test is skipped when it is
// not running, or fails when RequirePeers is true. It shares the Postfix
// peer's lock: call Postfix first, in the same test.
func Bounce(t testing.TB) *BouncePeer {
	t.Helper()
	f := mustEnvFile()
	b := &BouncePeer{
		IMAP: lookupEnv(f, "MAILOUT_PEER_BOUNCE_IMAP"), IMAPS: lookupEnv(f, "MAILOUT_PEER_BOUNCE_IMAPS"),
		POP3: lookupEnv(f, "MAILOUT_PEER_BOUNCE_POP3"), POP3S: lookupEnv(f, "MAILOUT_PEER_BOUNCE_POP3S"),
		User: lookupEnv(f, "MAILOUT_PEER_BOUNCE_USER"), Pass: lookupEnv(f, "MAILOUT_PEER_BOUNCE_PASS"),
		CAFile: lookupEnv(f, keyCA), MailDir: lookupEnv(f, "MAILOUT_PEER_BOUNCE_MAILDIR"),
		Domain: lookupEnv(f, "MAILOUT_PEER_BOUNCE_DOMAIN"), Unknown: lookupEnv(f, "MAILOUT_PEER_BOUNCE_UNKNOWN"),
		NullMXDomain: lookupEnv(f, "MAILOUT_PEER_BOUNCE_NULLMX_DOMAIN"), NXDomain: lookupEnv(f, "MAILOUT_PEER_BOUNCE_NXDOMAIN"),
	}
	err := b.probe(t.Context())
	if err != nil {
		if RequirePeers() {
			t.Fatalf("bounce mailbox peer required (%s=1) but unavailable: %v; %s", requireVar, err, setupHint)
		}
		t.Skipf("bounce mailbox peer unavailable: %v; %s", err, setupHint)
	}
	return b
}

func (b *BouncePeer) probe(ctx context.Context) error {
	for name, v := range map[string]string{"IMAP": b.IMAP, "IMAPS": b.IMAPS, "POP3": b.POP3, "POP3S": b.POP3S,
		"USER": b.User, "PASS": b.Pass, "MAILDIR": b.MailDir, "DOMAIN": b.Domain, "UNKNOWN": b.Unknown,
		"NULLMX_DOMAIN": b.NullMXDomain, "NXDOMAIN": b.NXDomain} {
		if v == "" {
			return fmt.Errorf("MAILOUT_PEER_BOUNCE_%s is not set (env file %s)", name, envFilePath())
		}
	}
	d := net.Dialer{Timeout: probeTimeout}
	for _, addr := range []string{b.IMAP, b.IMAPS, b.POP3, b.POP3S} {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		c.Close()
	}
	return nil
}

// Clean empties the mailbox, so that counts start from zero.
func (b *BouncePeer) Clean(t testing.TB) {
	t.Helper()
	for _, sub := range []string{"new", "cur"} {
		files, err := os.ReadDir(filepath.Join(b.MailDir, sub))
		if err != nil {
			t.Fatalf("bounce mailbox: %v", err)
		}
		for _, f := range files {
			if err := os.Remove(filepath.Join(b.MailDir, sub, f.Name())); err != nil {
				t.Fatalf("bounce mailbox: %v", err)
			}
		}
	}
}

// Count is how many messages the mailbox holds.
func (b *BouncePeer) Count() (int, error) {
	n := 0
	for _, sub := range []string{"new", "cur"} {
		files, err := os.ReadDir(filepath.Join(b.MailDir, sub))
		if err != nil {
			return 0, err
		}
		n += len(files)
	}
	return n, nil
}

// WaitMessages waits until the mailbox holds want messages (Postfix
// sends its DSNs asynchronously) or ctx ends.
func (b *BouncePeer) WaitMessages(ctx context.Context, want int) error {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		n, err := b.Count()
		if err != nil {
			return err
		}
		if n >= want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("bounce mailbox holds %d messages, want %d: %w", n, want, ctx.Err())
		case <-tick.C:
		}
	}
}
