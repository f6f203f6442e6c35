package setting

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"mailout/internal/mailbox"
)

const mailboxPassword = "B0unce-Box-Pa55"

// The bounce mailbox's password is sealed like a relay's: not in the
// database file, never handed back by Load, kept when saved empty, and
// given to the mailbox reader by MailboxConfig.
func TestBounceMailboxPasswordSealed(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "mailout.db")
	db, key := openDB(t, path), newKey(t)
	s := sample()
	s.Bounces = &BounceMailbox{URL: "imaps://bounces@mail.example.com", CAFile: "/etc/ca.pem", IntervalMinutes: 10, Password: mailboxPassword}
	if err := Save(ctx, db, key, s); err != nil {
		t.Fatal(err)
	}
	got, err := Load(ctx, db, key)
	if err != nil {
		t.Fatal(err)
	}
	if got.Bounces == nil || got.Bounces.Password != "" || !got.Bounces.HasPassword || got.Bounces.Interval() != 10*time.Minute {
		t.Fatalf("Load gave %+v", got.Bounces)
	}
	got.HELO = "other.example.com"
	if err := Save(ctx, db, key, got); err != nil {
		t.Fatal(err)
	}
	c, err := got.MailboxConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c.Password != mailboxPassword || c.Protocol != mailbox.IMAP || c.Security != mailbox.ImplicitTLS || c.User != "bounces" || c.CAFile != "/etc/ca.pem" {
		t.Fatalf("MailboxConfig = %+v", c)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(path + "*")
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, []byte(mailboxPassword)) {
			t.Fatalf("%s holds the mailbox password in clear", filepath.Base(f))
		}
	}
}

func TestBounceMailboxValidated(t *testing.T) {
	for _, tc := range []struct {
		m     BounceMailbox
		field string
	}{
		{BounceMailbox{URL: "http://mail.example.com"}, "bounce_mailbox.url"},
		{BounceMailbox{URL: "imaps://u:secret@mail.example.com"}, "bounce_mailbox.url"},
		{BounceMailbox{URL: "imaps://u@mail.example.com", IntervalMinutes: -1}, "bounce_mailbox.interval_minutes"},
		{BounceMailbox{URL: "imaps://u@mail.example.com", IntervalMinutes: 24*60 + 1}, "bounce_mailbox.interval_minutes"},
	} {
		s := &Settings{Bounces: &tc.m}
		var fe *FieldError
		if err := s.Validate(); !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%+v: %v, want a FieldError on %s", tc.m, err, tc.field)
		}
	}
	if err := (&Settings{Bounces: &BounceMailbox{URL: "pop3://u@mail.example.com"}}).Validate(); err != nil {
		t.Errorf("a good mailbox: %v", err)
	}
	if d := (&BounceMailbox{}).Interval(); d != DefaultBounceInterval {
		t.Errorf("default interval %v", d)
	}
}
