package setting

import (
	"context"
	"errors"
	"fmt"
	"time"

	"mailout/internal/mailbox"
)

// DefaultBounceInterval is how often serve reads the bounce mailbox when
// its settings give no interval.
const DefaultBounceInterval = 5 * time.Minute

// MaxBounceIntervalMinutes caps the interval at a day.
const MaxBounceIntervalMinutes = 24 * 60

// BounceMailbox is the mailbox serve reads bounces and complaints from on
// a timer, as `mailout bounces fetch` does once. Password is write-only,
// as a relay account's: empty in what Load returns, and an empty Password
// given to Save keeps the stored one.
type BounceMailbox struct {
	// URL is imap://, imaps://, pop3:// or pop3s://USER@HOST[:PORT][/FOLDER]
	// (mailbox.Parse), without a password.
	URL string `json:"url"`
	// CAFile, when set, is a PEM file of the CA that signed the server's
	// certificate.
	CAFile string `json:"ca_file,omitempty"`
	// IntervalMinutes between two reads; 0 = DefaultBounceInterval.
	IntervalMinutes int    `json:"interval_minutes,omitempty"`
	Password        string `json:"-"`
	// HasPassword reports (on Load) that a password is stored.
	HasPassword bool `json:"-"`
}

// Interval is the time between two reads.
func (b *BounceMailbox) Interval() time.Duration {
	if b.IntervalMinutes <= 0 {
		return DefaultBounceInterval
	}
	return time.Duration(b.IntervalMinutes) * time.Minute
}

// validate checks the mailbox's settings.
func (b *BounceMailbox) validate() error {
	if _, err := mailbox.Parse(b.URL); err != nil {
		return &FieldError{Field: "bounce_mailbox.url", Err: err}
	}
	if b.IntervalMinutes < 0 || b.IntervalMinutes > MaxBounceIntervalMinutes {
		return &FieldError{Field: "bounce_mailbox.interval_minutes",
			Err: fmt.Errorf("must be from 1 to %d minutes (0 or empty: %d)", MaxBounceIntervalMinutes, int(DefaultBounceInterval.Minutes()))}
	}
	return nil
}

// ErrNoMailboxPassword is a bounce mailbox stored without a password.
var ErrNoMailboxPassword = errors.New("settings: the bounce mailbox has no password")

// MailboxConfig is the bounce mailbox to read, its password opened from
// the store now (so a password changed since Load is the one used): for
// the mailbox reader only, never for a page or an API answer. nil when no
// mailbox is set.
func (s *Settings) MailboxConfig(ctx context.Context) (*mailbox.Config, error) {
	if s.Bounces == nil {
		return nil, nil
	}
	if s.st == nil {
		return nil, errors.New("settings: not loaded from a store")
	}
	c, err := mailbox.Parse(s.Bounces.URL)
	if err != nil {
		return nil, err
	}
	old, err := read(ctx, s.st)
	if err != nil {
		return nil, err
	}
	if old.SealedMailbox == nil {
		return nil, ErrNoMailboxPassword
	}
	p, err := s.box.Open(old.SealedMailbox)
	if err != nil {
		return nil, fmt.Errorf("settings: password of the bounce mailbox: %w", err)
	}
	c.Password, c.CAFile = string(p), s.Bounces.CAFile
	return c, nil
}
