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

func (db *DB) ImportCampaign(ctx context.Context, c *store.Campaign, next func() (*store.NewRecipient, error)) error {
	return errNotYet
}

func (db *DB) Campaign(ctx context.Context, id int64) (*store.Campaign, error) { return nil, errNotYet }

func (db *DB) CampaignByName(ctx context.Context, name string) (*store.Campaign, error) {
	return nil, errNotYet
}

func (db *DB) Campaigns(ctx context.Context) ([]store.Campaign, error) { return nil, errNotYet }

func (db *DB) SetCampaignStatus(ctx context.Context, id int64, status store.CampaignStatus, reason string) error {
	return errNotYet
}

func (db *DB) SetDiagnosis(ctx context.Context, id int64, diagnosis []byte) error { return errNotYet }

func (db *DB) SetRouteConfig(ctx context.Context, id int64, routeConfig []byte) error {
	return errNotYet
}

func (db *DB) Claim(ctx context.Context, campaignID int64, owner string, now time.Time, lease time.Duration, limit int) ([]store.Delivery, error) {
	return nil, errNotYet
}

func (db *DB) Record(ctx context.Context, results []store.AttemptResult) (int, error) {
	return 0, errNotYet
}

func (db *DB) ReleaseLeases(ctx context.Context, campaignID int64, now time.Time) (int, error) {
	return 0, errNotYet
}

func (db *DB) Requeue(ctx context.Context, campaignID int64, classes []outcome.Class, now time.Time) (int, error) {
	return 0, errNotYet
}

func (db *DB) DueNow(ctx context.Context, campaignID int64, classes []outcome.Class, now time.Time) (int, error) {
	return 0, errNotYet
}

func (db *DB) Counts(ctx context.Context, campaignID int64) (*store.Counts, error) {
	return nil, errNotYet
}

func (db *DB) Deliveries(ctx context.Context, campaignID int64, f store.DeliveryFilter, fn func(*store.Delivery) error) error {
	return errNotYet
}

func (db *DB) Domains(ctx context.Context, campaignID int64) ([]string, error) { return nil, errNotYet }

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
