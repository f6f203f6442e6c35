package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one file migrations/NNNN_name.sql.
type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads the embedded migrations in version order and checks
// they are numbered 1, 2, 3… without gaps or repeats.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, n := range names {
		base := strings.TrimSuffix(path.Base(n), ".sql")
		num, label, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || len(num) != 4 {
			return nil, fmt.Errorf("migration %s: name must be NNNN_name.sql", n)
		}
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: label, sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %04d_%s: expected version %d", m.version, m.name, i+1)
		}
	}
	return out, nil
}

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
	migs, err := loadMigrations(migrationFiles)
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
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_version (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.version, m.name, ms(now()))
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %04d_%s: %w", m.version, m.name, err)
		}
	}
	return nil
}
