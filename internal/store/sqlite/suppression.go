package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"mailout/internal/store"
)

// Suppress puts an entry on the suppression list. An entry already there
// for the key is kept as it was.
func (db *DB) Suppress(ctx context.Context, s store.Suppression) error {
	if s.Key == "" {
		return errors.New("sqlite: suppress: empty key")
	}
	at := s.At
	if at.IsZero() {
		at = now()
	}
	err := db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.StmtContext(ctx, db.q.suppressionInsert).ExecContext(ctx,
			sql.Named("key", s.Key), sql.Named("reason", s.Reason), sql.Named("source", s.Source),
			sql.Named("campaign", s.Campaign), sql.Named("code", s.Code), sql.Named("enhanced", s.Enhanced),
			sql.Named("text", s.Text), sql.Named("at", ms(at)))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: suppress: %w", err)
	}
	return nil
}

// Unsuppress takes key off the suppression list.
func (db *DB) Unsuppress(ctx context.Context, key string) (bool, error) {
	var n int
	err := db.write(ctx, func(tx *sql.Tx) error {
		var err error
		n, err = execCount(ctx, tx, db.q.suppressionDelete, sql.Named("key", key))
		return err
	})
	if err != nil {
		return false, fmt.Errorf("sqlite: unsuppress: %w", err)
	}
	return n > 0, nil
}

// Suppressions streams the suppression list in key order.
func (db *DB) Suppressions(ctx context.Context, fn func(*store.Suppression) error) error {
	var fnErr error
	err := db.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.StmtContext(ctx, db.q.suppressionsList).QueryContext(ctx)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				s  store.Suppression
				at int64
			)
			if err := rows.Scan(&s.Key, &s.Reason, &s.Source, &s.Campaign, &s.Code, &s.Enhanced, &s.Text, &at); err != nil {
				return err
			}
			s.At = fromMS(at)
			if fnErr = fn(&s); fnErr != nil {
				return fnErr
			}
		}
		return rows.Err()
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("sqlite: suppressions: %w", err)
	}
	return nil
}

// IsSuppressed reports whether key, or its domain, is on the suppression
// list.
func (db *DB) IsSuppressed(ctx context.Context, key string) (bool, error) {
	_, ok, err := suppressedBy(ctx, db.q.suppressionGet, key)
	if err != nil {
		return false, fmt.Errorf("sqlite: is suppressed: %w", err)
	}
	return ok, nil
}

// suppressedBy looks key up with queries/suppression_get.sql (prepared on
// the handle of the caller's transaction) and returns the reason of the
// entry that suppresses it.
func suppressedBy(ctx context.Context, stmt *sql.Stmt, key string) (string, bool, error) {
	var reason string
	err := stmt.QueryRowContext(ctx, sql.Named("key", key), sql.Named("domain_key", domainKey(key))).Scan(&reason)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", false, nil
	case err != nil:
		return "", false, err
	}
	return reason, true, nil
}

// domainKey is the suppression key of key's domain: "@" and the domain.
func domainKey(key string) string {
	i := strings.LastIndexByte(key, '@')
	if i < 0 {
		return "@"
	}
	return key[i:]
}

// dropSuppressed turns the claimed rows whose address or domain is on the
// suppression list into suppressed rows, in the claim's transaction, and
// returns the others.
func (db *DB) dropSuppressed(ctx context.Context, tx *sql.Tx, claimed []store.Delivery, now time.Time) ([]store.Delivery, error) {
	if len(claimed) == 0 {
		return claimed, nil
	}
	var nonEmpty bool
	if err := tx.StmtContext(ctx, db.q.suppressionsAny).QueryRowContext(ctx).Scan(&nonEmpty); err != nil || !nonEmpty {
		return claimed, err
	}
	get, set := tx.StmtContext(ctx, db.q.suppressionGetW), tx.StmtContext(ctx, db.q.claimSuppressed)
	kept := claimed[:0]
	for _, d := range claimed {
		reason, ok, err := suppressedBy(ctx, get, d.Key)
		if err != nil {
			return nil, err
		}
		if !ok {
			kept = append(kept, d)
			continue
		}
		if _, err := set.ExecContext(ctx, sql.Named("id", d.ID), sql.Named("reason", reason), sql.Named("now", ms(now))); err != nil {
			return nil, fmt.Errorf("delivery %d: %w", d.ID, err)
		}
	}
	return kept, nil
}
