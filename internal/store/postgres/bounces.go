package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"mailout/internal/store"
)

// DeliveryByMessageID finds the delivery whose message had messageID,
// the newest when several did.
func (db *DB) DeliveryByMessageID(ctx context.Context, messageID string) (*store.Delivery, error) {
	d, err := scanDelivery(db.pool.QueryRow(ctx, `SELECT `+deliveryColumns+` FROM deliveries
WHERE message_id = $1 AND message_id <> ''
ORDER BY id DESC
LIMIT 1`, messageID))
	if err != nil {
		return nil, fmt.Errorf("postgres: delivery by message-id: %w", notFound(err))
	}
	return d, nil
}

// ApplyBounce applies a bounce or a complaint to its delivery, once.
func (db *DB) ApplyBounce(ctx context.Context, b store.Bounce) (bool, error) {
	at := b.At
	if at.IsZero() {
		at = now()
	}
	var changed bool
	err := db.write(ctx, func(tx pgx.Tx) error {
		changed = false
		reason, source := store.ReasonHardBounce, store.SourceBounce
		var err error
		var n int64
		if b.Complaint {
			reason, source = store.ReasonComplaint, store.SourceFeedbackLoop
			var tag pgconn.CommandTag
			tag, err = tx.Exec(ctx, `UPDATE deliveries SET complained_at = $3, updated_at = $3
WHERE id = $1 AND campaign_id = $2 AND complained_at = 0`, b.DeliveryID, b.CampaignID, ms(at))
			n = tag.RowsAffected()
		} else {
			// A delivered (or failed) row becomes failed with the bounce's
			// class and reply; a row still queued keeps its state (its next
			// attempt decides) but records the bounce.
			var tag pgconn.CommandTag
			tag, err = tx.Exec(ctx, `UPDATE deliveries SET
	state = CASE WHEN state IN ('delivered', 'failed') THEN 'failed' ELSE state END,
	class = $4, step = 'body', code = $5, enhanced = $6, text = $7,
	bounced_at = $3, updated_at = $3
WHERE id = $1 AND campaign_id = $2 AND bounced_at = 0`,
				b.DeliveryID, b.CampaignID, ms(at), string(b.Class), b.Code, b.Enhanced, b.Text)
			n = tag.RowsAffected()
		}
		if err != nil || n == 0 {
			return err
		}
		changed = true
		if !b.Suppress {
			return nil
		}
		_, err = tx.Exec(ctx, `INSERT INTO suppressions ("key", reason, source, campaign, code, enhanced, text, created_at)
SELECT d."key", $3, $4, c.name, $5, $6, $7, $8
FROM deliveries AS d
JOIN campaigns AS c ON c.id = d.campaign_id
WHERE d.id = $1 AND d.campaign_id = $2
ON CONFLICT ("key") DO NOTHING`, b.DeliveryID, b.CampaignID, reason, source, b.Code, b.Enhanced, b.Text, ms(at))
		return err
	})
	if err != nil {
		return false, fmt.Errorf("postgres: apply bounce to delivery %d: %w", b.DeliveryID, err)
	}
	return changed, nil
}

// KeepForReview keeps a message of the bounce mailbox for review, once
// per mailbox and UID.
func (db *DB) KeepForReview(ctx context.Context, r store.Review) (bool, error) {
	at := r.At
	if at.IsZero() {
		at = now()
	}
	data := r.Data
	if data == nil {
		data = []byte{}
	}
	tag, err := db.pool.Exec(ctx, `INSERT INTO bounce_reviews (mailbox, uid, reason, subject, sender, data, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (mailbox, uid) DO NOTHING`, r.Mailbox, r.UID, r.Reason, r.Subject, r.Sender, data, ms(at))
	if err != nil {
		return false, fmt.Errorf("postgres: keep for review: %w", err)
	}
	return tag.RowsAffected() > 0, nil
}

// reviewPage is how many kept messages one query of Reviews reads.
const reviewPage = 100

// Reviews streams the messages kept for review, oldest first, a page at
// a time (keyset paging by id).
func (db *DB) Reviews(ctx context.Context, fn func(*store.Review) error) error {
	var after int64
	for {
		rows, err := db.pool.Query(ctx, `SELECT id, mailbox, uid, reason, subject, sender, data, created_at
FROM bounce_reviews WHERE id > $1 ORDER BY id LIMIT $2`, after, reviewPage)
		if err != nil {
			return fmt.Errorf("postgres: reviews: %w", err)
		}
		page, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Review, error) {
			var (
				r  store.Review
				at int64
			)
			err := row.Scan(&r.ID, &r.Mailbox, &r.UID, &r.Reason, &r.Subject, &r.Sender, &r.Data, &at)
			r.At = fromMS(at)
			return r, err
		})
		if err != nil {
			return fmt.Errorf("postgres: reviews: %w", err)
		}
		for i := range page {
			if err := fn(&page[i]); err != nil {
				return err
			}
		}
		if len(page) < reviewPage {
			return nil
		}
		after = page[len(page)-1].ID
	}
}

// MailboxSeen reports whether the mailbox's message uid was processed.
func (db *DB) MailboxSeen(ctx context.Context, mailbox, uid string) (bool, error) {
	var ok bool
	err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM mailbox_seen WHERE mailbox = $1 AND uid = $2)`, mailbox, uid).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("postgres: mailbox seen: %w", err)
	}
	return ok, nil
}

// MarkMailboxSeen remembers that the mailbox's message uid was processed.
func (db *DB) MarkMailboxSeen(ctx context.Context, mailbox, uid string, at time.Time) error {
	if at.IsZero() {
		at = now()
	}
	_, err := db.pool.Exec(ctx, `INSERT INTO mailbox_seen (mailbox, uid, created_at) VALUES ($1, $2, $3)
ON CONFLICT (mailbox, uid) DO NOTHING`, mailbox, uid, ms(at))
	if err != nil {
		return fmt.Errorf("postgres: mark mailbox seen: %w", err)
	}
	return nil
}
