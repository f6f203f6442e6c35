package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
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

// migrate applies, each in its own transaction, the migrations the database
// has not recorded in schema_version. Migrations are append-only: a file
// once released is never edited, a change is a new file. A database whose
// version is newer than this binary knows is refused rather than used.
func migrate(ctx context.Context, w *sql.DB) error {
	migs, err := loadMigrations(migrationFiles)
	if err != nil {
		return err
	}
	if _, err := w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
	version    INTEGER PRIMARY KEY,
	name       TEXT    NOT NULL,
	applied_at INTEGER NOT NULL
) STRICT`); err != nil {
		return fmt.Errorf("schema_version: %w", err)
	}
	for _, m := range migs {
		err := func() error {
			tx, err := w.BeginTx(ctx, nil) // BEGIN IMMEDIATE: another Open waits here
			if err != nil {
				return err
			}
			defer tx.Rollback() //nolint:errcheck // after Commit a no-op
			var applied int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_version WHERE version = ?`, m.version).Scan(&applied); err != nil {
				return err
			}
			if applied > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)`,
				m.version, m.name, ms(now())); err != nil {
				return err
			}
			return tx.Commit()
		}()
		if err != nil {
			return fmt.Errorf("migration %04d_%s: %w", m.version, m.name, err)
		}
	}
	var newest sql.NullInt64
	if err := w.QueryRowContext(ctx, `SELECT max(version) FROM schema_version`).Scan(&newest); err != nil {
		return fmt.Errorf("schema_version: %w", err)
	}
	if int(newest.Int64) > len(migs) {
		return fmt.Errorf("schema version %d is newer than this program's %d: %w", newest.Int64, len(migs), errTooNew)
	}
	return nil
}

var errTooNew = errors.New("database written by a newer mailout")
