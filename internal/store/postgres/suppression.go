package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"mailout/internal/store"
)

// Suppress puts an entry on the suppression list. An entry already there
// for the key is kept as it was.
func (db *DB) Suppress(ctx context.Context, s store.Suppression) error {
	if s.Key == "" {
		return errors.New("postgres: suppress: empty key")
	}
	at := s.At
	if at.IsZero() {
		at = now()
	}
	_, err := db.pool.Exec(ctx, `INSERT INTO suppressions ("key", reason, source, campaign, code, enhanced, text, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT ("key") DO NOTHING`, s.Key, s.Reason, s.Source, s.Campaign, s.Code, s.Enhanced, s.Text, ms(at))
	if err != nil {
		return fmt.Errorf("postgres: suppress: %w", err)
	}
	return nil
}

// Unsuppress takes key off the suppression list.
func (db *DB) Unsuppress(ctx context.Context, key string) (bool, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM suppressions WHERE "key" = $1`, key)
	if err != nil {
		return false, fmt.Errorf("postgres: unsuppress: %w", err)
	}
	return tag.RowsAffected() > 0, nil
}

// Suppressions streams the suppression list in key order (byte order, as
// in the SQLite store, whatever the database's collation), a page at a
// time (keyset paging by key), so a slow fn holds no transaction open.
func (db *DB) Suppressions(ctx context.Context, fn func(*store.Suppression) error) error {
	after := "" // sorts before every key
	for {
		rows, err := db.pool.Query(ctx, `SELECT "key", reason, source, campaign, code, enhanced, text, created_at
FROM suppressions
WHERE "key" COLLATE "C" > $1
ORDER BY "key" COLLATE "C"
LIMIT $2`, after, pageSize)
		if err != nil {
			return fmt.Errorf("postgres: suppressions: %w", err)
		}
		page, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Suppression, error) {
			var (
				s    store.Suppression
				code int32
				at   int64
			)
			err := row.Scan(&s.Key, &s.Reason, &s.Source, &s.Campaign, &code, &s.Enhanced, &s.Text, &at)
			s.Code, s.At = int(code), fromMS(at)
			return s, err
		})
		if err != nil {
			return fmt.Errorf("postgres: suppressions: %w", err)
		}
		for i := range page {
			if err := fn(&page[i]); err != nil {
				return err
			}
		}
		if len(page) < pageSize {
			return nil
		}
		after = page[len(page)-1].Key
	}
}

// IsSuppressed reports whether key, or its domain, is on the suppression
// list.
func (db *DB) IsSuppressed(ctx context.Context, key string) (bool, error) {
	var ok bool
	err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM suppressions WHERE "key" IN ($1, $2))`,
		key, domainKey(key)).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("postgres: is suppressed: %w", err)
	}
	return ok, nil
}

// domainKey is the suppression key of key's domain: "@" and the domain.
func domainKey(key string) string {
	i := strings.LastIndexByte(key, '@')
	if i < 0 {
		return "@"
	}
	return key[i:]
}
