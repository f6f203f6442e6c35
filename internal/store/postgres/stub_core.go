package postgres

// Placeholders until this part of the store is written: each returns
// errNotYet. The file goes when the last of them is implemented.

import (
	"context"
	"time"

	"mailout/internal/outcome"
	"mailout/internal/store"
)

var (
	_ = time.Time{}
	_ outcome.Class
)

func (db *DB) SaveMessage(ctx context.Context, campaignID, deliveryID int64, messageID string, data []byte) error {
	return errNotYet
}

func (db *DB) Messages(ctx context.Context, campaignID int64, fn func(deliveryID int64, email, messageID string, data []byte) error) error {
	return errNotYet
}

func (db *DB) Suppress(ctx context.Context, s store.Suppression) error { return errNotYet }

func (db *DB) Unsuppress(ctx context.Context, key string) (bool, error) { return false, errNotYet }

func (db *DB) Suppressions(ctx context.Context, fn func(*store.Suppression) error) error {
	return errNotYet
}

func (db *DB) IsSuppressed(ctx context.Context, key string) (bool, error) { return false, errNotYet }

func (db *DB) DeliveryByMessageID(ctx context.Context, messageID string) (*store.Delivery, error) {
	return nil, errNotYet
}

func (db *DB) ApplyBounce(ctx context.Context, b store.Bounce) (bool, error) { return false, errNotYet }

func (db *DB) KeepForReview(ctx context.Context, r store.Review) (bool, error) {
	return false, errNotYet
}

func (db *DB) Reviews(ctx context.Context, fn func(*store.Review) error) error { return errNotYet }

func (db *DB) MailboxSeen(ctx context.Context, mailbox, uid string) (bool, error) {
	return false, errNotYet
}

func (db *DB) MarkMailboxSeen(ctx context.Context, mailbox, uid string, at time.Time) error {
	return errNotYet
}
