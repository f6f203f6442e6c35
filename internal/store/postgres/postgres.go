// Package postgres is mailout's store for a fleet: every campaign's state
// in one PostgreSQL database that any number of `mailout worker`
// processes, `mailout serve` and the CLI share. It implements store.Store
// with github.com/jackc/pgx/v5 and a connection pool, and passes the same
// conformance suite (store/storetest) as the embedded SQLite store.
//
// Place in the flow: as with SQLite, a campaign is imported in one
// transaction (its recipients streamed with COPY); workers claim due
// deliveries with SELECT … FOR UPDATE SKIP LOCKED (no two workers ever get
// the same row, and none waits for another's) under a lease, one
// statement per batch, and record outcomes in batches fenced by the
// attempt number, one round trip per batch, so a worker whose lease
// expired cannot overwrite the result of the worker that took the row
// over. Listings (deliveries, messages, the suppression list) read keyset
// pages, so a slow caller holds no transaction open.
//
// The schema lives in embedded, append-only migrations (migrations/),
// applied on Open under an advisory lock, so processes starting at once
// never race. Times are stored as Unix milliseconds; 0 means unset.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"mailout/internal/store"
)

// DB is a mailout store in a PostgreSQL database. It is safe for
// concurrent use.
type DB struct {
	pool *pgxpool.Pool
	// where names the database for messages, without the password.
	where string
}

var _ store.Store = (*DB)(nil)

// IsURL reports whether s names a PostgreSQL database (postgres:// or
// postgresql://) rather than a SQLite file.
func IsURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// Redact returns the URL with its password replaced, for messages and
// logs: a database password never appears in either.
func Redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "postgres://…"
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// Open connects to the database at dsn (a postgres:// URL; see pgx for its
// parameters), applies the migrations it lacks and returns the store.
func Open(ctx context.Context, dsn string) (*DB, error) {
	where := Redact(dsn)
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's parse errors may quote the URL, password included.
		return nil, fmt.Errorf("postgres: %s: invalid connection URL", where)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open %s: %w", where, err)
	}
	db := &DB{pool: pool, where: where}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open %s: %w", where, err)
	}
	return db, nil
}

// Pool is the connection pool, for the fleet's coordination queries.
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// Close closes every connection of the pool.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// write runs fn in a read-write transaction and commits it.
func (db *DB) write(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{}, fn)
}

// deadlockTries is how many times writeRetry runs a transaction that
// PostgreSQL aborted as a deadlock or a serialization failure.
const deadlockTries = 3

// writeRetry is write for a transaction that may run again from the
// start (fn reads nothing it cannot read again): when PostgreSQL aborts it
// to break a deadlock (40P01) or a serialization failure (40001), the
// whole of it was rolled back, and it runs again, up to deadlockTries
// times. A worker then does not take a lock-order clash with another
// worker for a lost database.
func (db *DB) writeRetry(ctx context.Context, fn func(tx pgx.Tx) error) error {
	var err error
	for range deadlockTries {
		err = db.write(ctx, fn)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || (pe.Code != "40P01" && pe.Code != "40001") {
			return err
		}
	}
	return err
}

// read runs fn in a read-only transaction (one snapshot for every query
// of fn).
func (db *DB) read(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly, IsoLevel: pgx.RepeatableRead}, fn)
}

// ms is t as Unix milliseconds; the zero time is 0.
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// fromMS is the inverse of ms: 0 is the zero time.
func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v)
}

// now is the current time at the store's precision.
func now() time.Time { return time.UnixMilli(time.Now().UnixMilli()) }

// notFound maps pgx.ErrNoRows to store.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}
