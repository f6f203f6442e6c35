package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"

	"mailout/internal/store/migration"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLock is the first key of the session advisory lock held while
// migrating; the second is the hash of the schema migrated, so tests that
// each work in a schema of their own do not wait for one another.
const migrationLock = 0x6d61696c // "mail"

var errTooNew = errors.New("database written by a newer mailout")

// migrate applies, each in its own transaction, the migrations the
// database has not recorded in schema_version. It holds an advisory lock
// meanwhile: a second process starting at the same time waits for the
// first to finish, then finds nothing left to do. Migrations are
// append-only: a released file is never edited, a change is a new file. A
// database whose version is newer than this binary knows is refused.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	migs, err := migration.Load(migrationFiles)
	if err != nil {
		return err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, hashtext(current_schema()))`, migrationLock); err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1, hashtext(current_schema()))`, migrationLock) //nolint:errcheck // the session ends the lock anyway

	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
	version    INTEGER PRIMARY KEY,
	name       TEXT    NOT NULL,
	applied_at BIGINT  NOT NULL
)`); err != nil {
		return fmt.Errorf("schema_version: %w", err)
	}
	var newest int
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_version`).Scan(&newest); err != nil {
		return fmt.Errorf("schema_version: %w", err)
	}
	if newest > len(migs) {
		return fmt.Errorf("schema version %d is newer than this program's %d: %w", newest, len(migs), errTooNew)
	}
	for _, m := range migs[newest:] {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_version (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.Version, m.Name, ms(now()))
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %04d_%s: %w", m.Version, m.Name, err)
		}
	}
	return nil
}
