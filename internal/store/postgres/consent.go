package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"mailout/internal/store"
)

const pendingColumns = `id, list_id, email, domain, "key", fields, source, ip, created_at, confirmed_at, message`

// CreatePending stores a pending subscription.
func (db *DB) CreatePending(ctx context.Context, p *store.PendingSubscription) error {
	if p.CreatedAt.IsZero() {
		p.CreatedAt = now()
	}
	fields := p.Fields
	if fields == nil {
		fields = map[string]string{}
	}
	err := db.write(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `INSERT INTO pending_subscriptions (list_id, email, domain, "key", fields, source, ip, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
			p.ListID, p.Email, p.Domain, p.Key, fields, p.Source, p.IP, ms(p.CreatedAt)).Scan(&p.ID)
	})
	if err != nil {
		return fmt.Errorf("postgres: create pending subscription: %w", err)
	}
	return nil
}

func scanPending(row pgx.Row) (*store.PendingSubscription, error) {
	var (
		p                  store.PendingSubscription
		created, confirmed int64
	)
	if err := row.Scan(&p.ID, &p.ListID, &p.Email, &p.Domain, &p.Key, &p.Fields, &p.Source, &p.IP, &created, &confirmed, &p.Message); err != nil {
		return nil, err
	}
	p.CreatedAt, p.ConfirmedAt = fromMS(created), fromMS(confirmed)
	return &p, nil
}

// PendingSubscription returns one pending subscription.
func (db *DB) PendingSubscription(ctx context.Context, id int64) (*store.PendingSubscription, error) {
	p, err := scanPending(db.pool.QueryRow(ctx, `SELECT `+pendingColumns+` FROM pending_subscriptions WHERE id = $1`, id))
	if err != nil {
		return nil, fmt.Errorf("postgres: pending subscription %d: %w", id, notFound(err))
	}
	return p, nil
}

// SetPendingMessage keeps the confirmation message of a pending row.
func (db *DB) SetPendingMessage(ctx context.Context, id int64, message []byte) error {
	tag, err := db.pool.Exec(ctx, `UPDATE pending_subscriptions SET message = $2 WHERE id = $1`, id, message)
	if err == nil && tag.RowsAffected() == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("postgres: set pending message %d: %w", id, err)
	}
	return nil
}

// PendingCount counts the subscriptions asked for key since since.
func (db *DB) PendingCount(ctx context.Context, key string, since time.Time) (int, error) {
	var n int
	err := db.pool.QueryRow(ctx, `SELECT count(*) FROM pending_subscriptions WHERE "key" = $1 AND created_at >= $2`, key, ms(since)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("postgres: pending count: %w", err)
	}
	return n, nil
}

// PendingSubscriptions streams the list's pending rows, newest first.
func (db *DB) PendingSubscriptions(ctx context.Context, listID int64, limit int, fn func(*store.PendingSubscription) error) error {
	var lim any // NULL: no limit
	if limit > 0 {
		lim = limit
	}
	var fnErr error
	err := db.read(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+pendingColumns+` FROM pending_subscriptions WHERE list_id = $1 ORDER BY id DESC LIMIT $2`, listID, lim)
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
		return fmt.Errorf("postgres: pending subscriptions: %w", err)
	}
	return nil
}

// ConfirmPending confirms a pending subscription once and logs it.
func (db *DB) ConfirmPending(ctx context.Context, id int64, at time.Time) (bool, error) {
	if at.IsZero() {
		at = now()
	}
	var changed bool
	err := db.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE pending_subscriptions SET confirmed_at = $2 WHERE id = $1 AND confirmed_at = 0`, id, ms(at))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			// Confirmed already, or no such row.
			var one int
			return notFound(tx.QueryRow(ctx, `SELECT 1 FROM pending_subscriptions WHERE id = $1`, id).Scan(&one))
		}
		changed = true
		_, err = tx.Exec(ctx, `INSERT INTO consents (list_id, email, "key", action, source, ip, requested_at, confirmed_at, created_at)
			SELECT list_id, email, "key", $3, source, ip, created_at, confirmed_at, $2
			FROM pending_subscriptions WHERE id = $1`, id, ms(at), store.ConsentSubscribe)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("postgres: confirm pending subscription %d: %w", id, err)
	}
	return changed, nil
}

// AddConsent appends an entry to the consent log.
func (db *DB) AddConsent(ctx context.Context, c *store.Consent) error {
	if c.At.IsZero() {
		c.At = now()
	}
	err := db.pool.QueryRow(ctx, `INSERT INTO consents (list_id, email, "key", action, source, ip, requested_at, confirmed_at, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
		c.ListID, c.Email, c.Key, c.Action, c.Source, c.IP, ms(c.RequestedAt), ms(c.ConfirmedAt), ms(c.At)).Scan(&c.ID)
	if err != nil {
		return fmt.Errorf("postgres: add consent: %w", err)
	}
	return nil
}

// Consents streams the consent log of a list (and of every list).
func (db *DB) Consents(ctx context.Context, listID int64, key string, fn func(*store.Consent) error) error {
	var fnErr error
	err := db.read(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, list_id, email, "key", action, source, ip, requested_at, confirmed_at, created_at
			FROM consents WHERE list_id IN ($1, 0) AND ($2 = '' OR "key" = $2) ORDER BY id`, listID, key)
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
		return fmt.Errorf("postgres: consents: %w", err)
	}
	return nil
}
