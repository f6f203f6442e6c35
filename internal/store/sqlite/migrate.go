package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"

	"mailout/internal/store/migration"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrate applies, each in its own transaction, the migrations the database
// has not recorded in schema_version. Migrations are append-only: a file
// once released is never edited, a change is a new file. A database whose
// version is newer than this binary knows is refused rather than used.
func migrate(ctx context.Context, w *sql.DB) error {
	migs, err := migration.Load(migrationFiles)
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
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_version WHERE version = ?`, m.Version).Scan(&applied); err != nil {
				return err
			}
			if applied > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)`,
				m.Version, m.Name, ms(now())); err != nil {
				return err
			}
			return tx.Commit()
		}()
		if err != nil {
			return fmt.Errorf("migration %04d_%s: %w", m.Version, m.Name, err)
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
