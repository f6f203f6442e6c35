package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"mailout/internal/store"
)

// bounceQueries are the statements of the bounce mailbox (migration
// 0007), prepared by Open like the others.
type bounceQueries struct {
	// writer
	bounceApply, complaintApply, suppressionFromDelivery, reviewInsert, mailboxSeenPut *sql.Stmt
	// readers
	deliveryByMessageID, reviewsList, mailboxSeenGet *sql.Stmt

	all []*sql.Stmt
}

func prepareBounces(ctx context.Context, w, r *sql.DB) (*bounceQueries, error) {
	q := &bounceQueries{}
	err := prepareSet(ctx, []stmtSpec{
		{w, "bounce_apply", &q.bounceApply},
		{w, "complaint_apply", &q.complaintApply},
		{w, "suppression_from_delivery", &q.suppressionFromDelivery},
		{w, "review_insert", &q.reviewInsert},
		{w, "mailbox_seen_put", &q.mailboxSeenPut},
		{r, "delivery_by_message_id", &q.deliveryByMessageID},
		{r, "reviews_list", &q.reviewsList},
		{r, "mailbox_seen_get", &q.mailboxSeenGet},
	}, &q.all)
	if err != nil {
		return nil, err
	}
	return q, nil
}

func (q *bounceQueries) close() error { return closeSet(q.all) }

// DeliveryByMessageID finds the delivery whose message had messageID.
func (db *DB) DeliveryByMessageID(ctx context.Context, messageID string) (*store.Delivery, error) {
	return one(ctx, "delivery by message-id", db.bq.deliveryByMessageID, func(row interface{ Scan(...any) error }) (*store.Delivery, error) {
		return scanDelivery(row)
	}, sql.Named("message_id", messageID))
}

// ApplyBounce applies a bounce or a complaint to its delivery.
func (db *DB) ApplyBounce(ctx context.Context, b store.Bounce) (bool, error) {
	at := b.At
	if at.IsZero() {
		at = now()
	}
	var changed bool
	err := db.write(ctx, func(tx *sql.Tx) error {
		id, campaign := sql.Named("id", b.DeliveryID), sql.Named("campaign", b.CampaignID)
		var n int
		var err error
		reason, source := store.ReasonHardBounce, store.SourceBounce
		if b.Complaint {
			reason, source = store.ReasonComplaint, store.SourceFeedbackLoop
			n, err = execCount(ctx, tx, db.bq.complaintApply, id, campaign, sql.Named("at", ms(at)))
		} else {
			n, err = execCount(ctx, tx, db.bq.bounceApply, id, campaign, sql.Named("at", ms(at)),
				sql.Named("class", string(b.Class)), sql.Named("code", b.Code),
				sql.Named("enhanced", b.Enhanced), sql.Named("text", b.Text))
		}
		if err != nil || n == 0 {
			return err
		}
		changed = true
		if !b.Suppress {
			return nil
		}
		_, err = tx.StmtContext(ctx, db.bq.suppressionFromDelivery).ExecContext(ctx, id, campaign,
			sql.Named("reason", reason), sql.Named("source", source), sql.Named("code", b.Code),
			sql.Named("enhanced", b.Enhanced), sql.Named("text", b.Text), sql.Named("at", ms(at)))
		return err
	})
	if err != nil {
		return false, fmt.Errorf("sqlite: apply bounce to delivery %d: %w", b.DeliveryID, err)
	}
	return changed, nil
}

// KeepForReview keeps a message of the bounce mailbox for review.
func (db *DB) KeepForReview(ctx context.Context, r store.Review) (bool, error) {
	at := r.At
	if at.IsZero() {
		at = now()
	}
	var n int
	err := db.write(ctx, func(tx *sql.Tx) error {
		var err error
		n, err = execCount(ctx, tx, db.bq.reviewInsert, sql.Named("mailbox", r.Mailbox), sql.Named("uid", r.UID),
			sql.Named("reason", r.Reason), sql.Named("subject", r.Subject), sql.Named("sender", r.Sender),
			sql.Named("data", r.Data), sql.Named("at", ms(at)))
		return err
	})
	if err != nil {
		return false, fmt.Errorf("sqlite: keep for review: %w", err)
	}
	return n > 0, nil
}

// Reviews streams the messages kept for review.
func (db *DB) Reviews(ctx context.Context, fn func(*store.Review) error) error {
	var fnErr error
	err := db.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.StmtContext(ctx, db.bq.reviewsList).QueryContext(ctx)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				r  store.Review
				at int64
			)
			if err := rows.Scan(&r.ID, &r.Mailbox, &r.UID, &r.Reason, &r.Subject, &r.Sender, &r.Data, &at); err != nil {
				return err
			}
			r.At = fromMS(at)
			if fnErr = fn(&r); fnErr != nil {
				return fnErr
			}
		}
		return rows.Err()
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("sqlite: reviews: %w", err)
	}
	return nil
}

// MailboxSeen reports whether the mailbox's message uid was processed.
func (db *DB) MailboxSeen(ctx context.Context, mailbox, uid string) (bool, error) {
	var n int
	err := db.bq.mailboxSeenGet.QueryRowContext(ctx, sql.Named("mailbox", mailbox), sql.Named("uid", uid)).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("sqlite: mailbox seen: %w", err)
	}
	return n > 0, nil
}

// MarkMailboxSeen remembers that the mailbox's message uid was processed.
func (db *DB) MarkMailboxSeen(ctx context.Context, mailbox, uid string, at time.Time) error {
	if at.IsZero() {
		at = now()
	}
	err := db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.StmtContext(ctx, db.bq.mailboxSeenPut).ExecContext(ctx, sql.Named("mailbox", mailbox), sql.Named("uid", uid), sql.Named("at", ms(at)))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: mark mailbox seen: %w", err)
	}
	return nil
}
