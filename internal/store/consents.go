package store

import (
	"context"
	"time"
)

// Consent actions.
const (
	ConsentSubscribe   = "subscribe"
	ConsentUnsubscribe = "unsubscribe"
)

// Consent sources: how a subscription or unsubscription came in. A form
// or JSON source is followed by a space and the URL it was posted to, an
// import by ":" and the file name (as Subscriber.Source).
const (
	ConsentForm     = "form"      // the public subscription form, double opt-in
	ConsentJSON     = "json"      // the form's JSON endpoint, double opt-in
	ConsentImport   = "import"    // a CSV import
	ConsentManual   = "manual"    // added or removed by a user of the web app
	ConsentOneClick = "one-click" // the unsubscribe link of a campaign
)

// Consent is one entry of the consent log: evidence of when, how and from
// where an address subscribed to or unsubscribed from a list. The log is
// append-only.
type Consent struct {
	ID int64
	// ListID is the list; 0 for an unsubscribe that applies to every list
	// (the one-click link of a campaign, which names no list).
	ListID int64
	Email  string
	Key    string
	Action string // ConsentSubscribe or ConsentUnsubscribe
	Source string
	// IP is the client address the request came from ("" when none).
	IP string
	// RequestedAt is when a double opt-in subscription was asked for;
	// ConfirmedAt when its link was confirmed. Zero for other entries.
	RequestedAt, ConfirmedAt time.Time
	// At is when the entry was recorded; zero means now.
	At time.Time
}

// PendingSubscription is a subscription asked for through the public form
// and not yet confirmed: the address is added to the list only when the
// confirmation link is followed.
type PendingSubscription struct {
	ID                 int64
	ListID             int64
	Email, Domain, Key string
	Fields             map[string]string
	// Source is as Consent.Source.
	Source string
	IP     string
	// CreatedAt is when it was asked for (zero means now); ConfirmedAt
	// when it was confirmed (zero: not yet).
	CreatedAt, ConfirmedAt time.Time
	// Message is the confirmation message as sent, kept only when the
	// list's route is the sandbox (nothing left the machine).
	Message []byte
}

// Consents keeps pending double opt-in subscriptions and the consent log.
type Consents interface {
	// CreatePending stores p and sets its ID (and CreatedAt when zero).
	CreatePending(ctx context.Context, p *PendingSubscription) error
	// PendingSubscription returns ErrNotFound when there is no such row.
	PendingSubscription(ctx context.Context, id int64) (*PendingSubscription, error)
	// SetPendingMessage keeps the confirmation message of a pending row.
	SetPendingMessage(ctx context.Context, id int64, message []byte) error
	// PendingCount counts the subscriptions asked for the address key, in
	// any list, since the given time.
	PendingCount(ctx context.Context, key string, since time.Time) (int, error)
	// PendingSubscriptions streams the list's pending rows, newest first,
	// at most limit (0: all).
	PendingSubscriptions(ctx context.Context, listID int64, limit int, fn func(*PendingSubscription) error) error
	// ConfirmPending marks the row confirmed at at and appends its
	// ConsentSubscribe entry to the log, in one transaction. It reports
	// false, changing nothing, when the row was confirmed already;
	// ErrNotFound when there is no such row.
	ConfirmPending(ctx context.Context, id int64, at time.Time) (bool, error)
	// AddConsent appends c to the log and sets its ID.
	AddConsent(ctx context.Context, c *Consent) error
	// Consents streams, in the order they were recorded, the log entries
	// of the list and those of every list (ListID 0), only those of the
	// address key when key is not "".
	Consents(ctx context.Context, listID int64, key string, fn func(*Consent) error) error
}
