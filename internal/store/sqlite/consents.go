package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"mailout/internal/store"
)

// consentQueries are the statements of double opt-in and the consent log
// (migration 0009), prepared by Open like the others.
type consentQueries struct {
	// writer
	pendingInsert, pendingSetMessage, pendingConfirm, consentFromPending, consentInsert, pendingGetW *sql.Stmt
	subscribersMaxID, consentFromImport                                                              *sql.Stmt
	// readers
	pendingGet, pendingCount, pendingList, consentsList *sql.Stmt
	// campaignFeedback is Feedback's (feedback.go).
	campaignFeedback *sql.Stmt

	all []*sql.Stmt
}

func prepareConsents(ctx context.Context, w, r *sql.DB) (*consentQueries, error) {
	q := &consentQueries{}
	err := prepareSet(ctx, []stmtSpec{
		{w, "pending_insert", &q.pendingInsert},
		{w, "pending_set_message", &q.pendingSetMessage},
		{w, "pending_confirm", &q.pendingConfirm},
		{w, "consent_from_pending", &q.consentFromPending},
		{w, "consent_insert", &q.consentInsert},
		{w, "subscribers_max_id", &q.subscribersMaxID},
		{w, "consent_from_import", &q.consentFromImport},
		{w, "pending_get", &q.pendingGetW},
		{r, "pending_get", &q.pendingGet},
		{r, "pending_count", &q.pendingCount},
		{r, "pending_list", &q.pendingList},
		{r, "consents_list", &q.consentsList},
		{r, "campaign_feedback", &q.campaignFeedback},
	}, &q.all)
	if err != nil {
		return nil, err
	}
	return q, nil
}

func (q *consentQueries) close() error { return closeSet(q.all) }

// CreatePending stores a pending subscription.
func (db *DB) CreatePending(ctx context.Context, p *store.PendingSubscription) error {
	if p.CreatedAt.IsZero() {
		p.CreatedAt = now()
	}
	fields, err := encodeFields(p.Fields)
	if err != nil {
		return fmt.Errorf("sqlite: create pending subscription: %w", err)
	}
	err = db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.StmtContext(ctx, db.cq.pendingInsert).ExecContext(ctx, sql.Named("list", p.ListID),
			sql.Named("email", p.Email), sql.Named("domain", p.Domain), sql.Named("key", p.Key),
			sql.Named("fields", fields), sql.Named("source", p.Source), sql.Named("ip", p.IP), sql.Named("at", ms(p.CreatedAt)))
		if err != nil {
			return err
		}
		p.ID, err = res.LastInsertId()
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: create pending subscription: %w", err)
	}
	return nil
}

func scanPending(row interface{ Scan(...any) error }) (*store.PendingSubscription, error) {
	var (
		p                  store.PendingSubscription
		fields             string
		created, confirmed int64
	)
	if err := row.Scan(&p.ID, &p.ListID, &p.Email, &p.Domain, &p.Key, &fields, &p.Source, &p.IP, &created, &confirmed, &p.Message); err != nil {
		return nil, err
	}
	f, err := decodeFields(fields)
	if err != nil {
		return nil, err
	}
	p.Fields, p.CreatedAt, p.ConfirmedAt = f, fromMS(created), fromMS(confirmed)
	return &p, nil
}

// PendingSubscription returns one pending subscription.
func (db *DB) PendingSubscription(ctx context.Context, id int64) (*store.PendingSubscription, error) {
	return one(ctx, "pending subscription", db.cq.pendingGet, scanPending, sql.Named("id", id))
}

// SetPendingMessage keeps the confirmation message of a pending row.
func (db *DB) SetPendingMessage(ctx context.Context, id int64, message []byte) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		n, err := execCount(ctx, tx, db.cq.pendingSetMessage, sql.Named("id", id), sql.Named("message", message))
		if err == nil && n == 0 {
			err = store.ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: set pending message %d: %w", id, err)
	}
	return nil
}

// PendingCount counts the subscriptions asked for key since since.
func (db *DB) PendingCount(ctx context.Context, key string, since time.Time) (int, error) {
	var n int
	if err := db.cq.pendingCount.QueryRowContext(ctx, sql.Named("key", key), sql.Named("since", ms(since))).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: pending count: %w", err)
	}
	return n, nil
}

// PendingSubscriptions streams the list's pending rows, newest first.
func (db *DB) PendingSubscriptions(ctx context.Context, listID int64, limit int, fn func(*store.PendingSubscription) error) error {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	var fnErr error
	err := db.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.StmtContext(ctx, db.cq.pendingList).QueryContext(ctx, sql.Named("list", listID), sql.Named("limit", limit))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			p, err := scanPending(rows)
			if err != nil {
				return err
			}
			if fnErr = fn(p); fnErr != nil {
				return fnErr
			}
		}
		return rows.Err()
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("sqlite: pending subscriptions: %w", err)
	}
	return nil
}

// ConfirmPending confirms a pending subscription once and logs it.
func (db *DB) ConfirmPending(ctx context.Context, id int64, at time.Time) (bool, error) {
	if at.IsZero() {
		at = now()
	}
	var changed bool
	err := db.write(ctx, func(tx *sql.Tx) error {
		n, err := execCount(ctx, tx, db.cq.pendingConfirm, sql.Named("id", id), sql.Named("at", ms(at)))
		if err != nil {
			return err
		}
		if n == 0 {
			// Confirmed already, or no such row.
			_, err := scanPending(tx.StmtContext(ctx, db.cq.pendingGetW).QueryRowContext(ctx, sql.Named("id", id)))
			if errors.Is(err, sql.ErrNoRows) {
				return store.ErrNotFound
			}
			return err
		}
		changed = true
		_, err = tx.StmtContext(ctx, db.cq.consentFromPending).ExecContext(ctx, sql.Named("id", id), sql.Named("at", ms(at)))
		return err
	})
	if err != nil {
		return false, fmt.Errorf("sqlite: confirm pending subscription %d: %w", id, err)
	}
	return changed, nil
}

// AddConsent appends an entry to the consent log.
func (db *DB) AddConsent(ctx context.Context, c *store.Consent) error {
	if c.At.IsZero() {
		c.At = now()
	}
	err := db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.StmtContext(ctx, db.cq.consentInsert).ExecContext(ctx, sql.Named("list", c.ListID),
			sql.Named("email", c.Email), sql.Named("key", c.Key), sql.Named("action", c.Action),
			sql.Named("source", c.Source), sql.Named("ip", c.IP), sql.Named("requested", ms(c.RequestedAt)),
			sql.Named("confirmed", ms(c.ConfirmedAt)), sql.Named("at", ms(c.At)))
		if err != nil {
			return err
		}
		c.ID, err = res.LastInsertId()
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: add consent: %w", err)
	}
	return nil
}

// Consents streams the consent log of a list (and of every list).
func (db *DB) Consents(ctx context.Context, listID int64, key string, fn func(*store.Consent) error) error {
	var fnErr error
	err := db.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.StmtContext(ctx, db.cq.consentsList).QueryContext(ctx, sql.Named("list", listID), sql.Named("key", key))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				c                  store.Consent
				req, confirmed, at int64
			)
			if err := rows.Scan(&c.ID, &c.ListID, &c.Email, &c.Key, &c.Action, &c.Source, &c.IP, &req, &confirmed, &at); err != nil {
				return err
			}
			c.RequestedAt, c.ConfirmedAt, c.At = fromMS(req), fromMS(confirmed), fromMS(at)
			if fnErr = fn(&c); fnErr != nil {
				return fnErr
			}
		}
		return rows.Err()
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("sqlite: consents: %w", err)
	}
	return nil
}
