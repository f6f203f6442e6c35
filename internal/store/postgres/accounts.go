package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"mailout/internal/store"
)

// CreateUser stores a new user; the email is unique whatever its case (the
// unique index on lower(email)).
func (db *DB) CreateUser(ctx context.Context, u *store.User) error {
	if u == nil || u.Email == "" || u.PasswordHash == "" {
		return errors.New("postgres: create user: an email and a password hash are required")
	}
	created := now()
	var id int64
	err := db.pool.QueryRow(ctx, `INSERT INTO users (email, password_hash, created_at) VALUES ($1, $2, $3) RETURNING id`,
		u.Email, u.PasswordHash, ms(created)).Scan(&id)
	if err != nil {
		return fmt.Errorf("postgres: create user: %w", exists(err))
	}
	u.ID, u.CreatedAt = id, created
	return nil
}

func scanUser(row pgx.Row) (*store.User, error) {
	var (
		u       store.User
		created int64
	)
	if err := row.Scan(&u.ID, &u.Email, &u.PasswordHash, &created); err != nil {
		return nil, err
	}
	u.CreatedAt = fromMS(created)
	return &u, nil
}

// one runs a single-row read; no row is store.ErrNotFound.
func one[T any](ctx context.Context, db *DB, what string, scan func(pgx.Row) (T, error), sql string, args ...any) (T, error) {
	v, err := scan(db.pool.QueryRow(ctx, sql, args...))
	if err != nil {
		return v, fmt.Errorf("postgres: %s: %w", what, notFound(err))
	}
	return v, nil
}

// all runs a query of many rows.
func all[T any](ctx context.Context, db *DB, what string, scan func(pgx.Row) (*T, error), sql string, args ...any) ([]T, error) {
	rows, err := db.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", what, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (T, error) {
		v, err := scan(row)
		if err != nil {
			var zero T
			return zero, err
		}
		return *v, nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", what, err)
	}
	return out, nil
}

const userColumns = `id, email, password_hash, created_at`

// UserByEmail finds a user by email, whatever its case.
func (db *DB) UserByEmail(ctx context.Context, email string) (*store.User, error) {
	return one(ctx, db, "user by email", scanUser, `SELECT `+userColumns+` FROM users WHERE lower(email) = lower($1)`, email)
}

// User finds a user by id.
func (db *DB) User(ctx context.Context, id int64) (*store.User, error) {
	return one(ctx, db, "user", scanUser, `SELECT `+userColumns+` FROM users WHERE id = $1`, id)
}

// Users lists every user, oldest first.
func (db *DB) Users(ctx context.Context) ([]store.User, error) {
	return all(ctx, db, "users", scanUser, `SELECT `+userColumns+` FROM users ORDER BY id`)
}

// CreateSession stores a session; s.ID is the hash of the cookie value.
// A zero CreatedAt is set to now.
func (db *DB) CreateSession(ctx context.Context, s *store.Session) error {
	if s == nil || s.ID == "" {
		return errors.New("postgres: create session: an id is required")
	}
	if s.CreatedAt.IsZero() {
		s.CreatedAt = now()
	}
	_, err := db.pool.Exec(ctx, `INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)`,
		s.ID, s.UserID, ms(s.CreatedAt), ms(s.ExpiresAt))
	if err != nil {
		return fmt.Errorf("postgres: create session: %w", err)
	}
	return nil
}

func scanSession(row pgx.Row) (*store.Session, error) {
	var (
		s                store.Session
		created, expires int64
	)
	if err := row.Scan(&s.ID, &s.UserID, &created, &expires); err != nil {
		return nil, err
	}
	s.CreatedAt, s.ExpiresAt = fromMS(created), fromMS(expires)
	return &s, nil
}

// Session finds a session by the hash of its cookie value, expired or not.
func (db *DB) Session(ctx context.Context, id string) (*store.Session, error) {
	return one(ctx, db, "session", scanSession, `SELECT id, user_id, created_at, expires_at FROM sessions WHERE id = $1`, id)
}

// DeleteSession removes a session; removing one that is not there is no
// error (signing out twice).
func (db *DB) DeleteSession(ctx context.Context, id string) error {
	if _, err := db.pool.Exec(ctx, `DELETE FROM sessions WHERE id = $1`, id); err != nil {
		return fmt.Errorf("postgres: delete session: %w", err)
	}
	return nil
}

// DeleteExpiredSessions removes the sessions that expired at or before now.
func (db *DB) DeleteExpiredSessions(ctx context.Context, at time.Time) (int, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM sessions WHERE expires_at <= $1`, ms(at))
	if err != nil {
		return 0, fmt.Errorf("postgres: delete expired sessions: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// CreateToken stores an API token; its name and hash are unique.
func (db *DB) CreateToken(ctx context.Context, t *store.APIToken) error {
	if t == nil || t.Name == "" || t.Hash == "" {
		return errors.New("postgres: create token: a name and a hash are required")
	}
	created := now()
	var id int64
	err := db.pool.QueryRow(ctx, `INSERT INTO api_tokens (name, hash, created_at, last_used) VALUES ($1, $2, $3, 0) RETURNING id`,
		t.Name, t.Hash, ms(created)).Scan(&id)
	if err != nil {
		return fmt.Errorf("postgres: create token %q: %w", t.Name, exists(err))
	}
	t.ID, t.CreatedAt, t.LastUsed = id, created, time.Time{}
	return nil
}

func scanToken(row pgx.Row) (*store.APIToken, error) {
	var (
		t              store.APIToken
		created, lastU int64
	)
	if err := row.Scan(&t.ID, &t.Name, &t.Hash, &created, &lastU); err != nil {
		return nil, err
	}
	t.CreatedAt, t.LastUsed = fromMS(created), fromMS(lastU)
	return &t, nil
}

const tokenColumns = `id, name, hash, created_at, last_used`

// TokenByHash finds a token by its SHA-256.
func (db *DB) TokenByHash(ctx context.Context, hash string) (*store.APIToken, error) {
	return one(ctx, db, "token", scanToken, `SELECT `+tokenColumns+` FROM api_tokens WHERE hash = $1`, hash)
}

// Tokens lists every API token by name.
func (db *DB) Tokens(ctx context.Context) ([]store.APIToken, error) {
	return all(ctx, db, "tokens", scanToken, `SELECT `+tokenColumns+` FROM api_tokens ORDER BY name`)
}

// DeleteToken revokes a token; store.ErrNotFound when there is none.
func (db *DB) DeleteToken(ctx context.Context, id int64) error {
	if err := db.changeOne(ctx, `DELETE FROM api_tokens WHERE id = $1`, id); err != nil {
		return fmt.Errorf("postgres: delete token: %w", err)
	}
	return nil
}

// TouchToken records the token's last use; store.ErrNotFound when there is
// none.
func (db *DB) TouchToken(ctx context.Context, id int64, at time.Time) error {
	if err := db.changeOne(ctx, `UPDATE api_tokens SET last_used = $2 WHERE id = $1`, id, ms(at)); err != nil {
		return fmt.Errorf("postgres: touch token: %w", err)
	}
	return nil
}

// Setting returns the value stored under key; store.ErrNotFound when the
// key was never put.
func (db *DB) Setting(ctx context.Context, key string) ([]byte, error) {
	return one(ctx, db, "setting "+key, func(row pgx.Row) ([]byte, error) {
		var v []byte
		err := row.Scan(&v)
		if v == nil && err == nil {
			v = []byte{}
		}
		return v, err
	}, `SELECT value FROM settings WHERE "key" = $1`, key)
}

// PutSetting stores value under key, replacing what was there.
func (db *DB) PutSetting(ctx context.Context, key string, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	_, err := db.pool.Exec(ctx, `INSERT INTO settings ("key", value) VALUES ($1, $2)
ON CONFLICT ("key") DO UPDATE SET value = excluded.value`, key, value)
	if err != nil {
		return fmt.Errorf("postgres: put setting %s: %w", key, err)
	}
	return nil
}

// AddSetting stores value under key unless it has one, and returns the
// value kept. ON CONFLICT DO NOTHING returns no row when the key was
// there: the value found is then read in the same transaction (the
// conflicting row is committed, or the insert would have waited for it).
func (db *DB) AddSetting(ctx context.Context, key string, value []byte) ([]byte, error) {
	if value == nil {
		value = []byte{}
	}
	var kept []byte
	err := db.write(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO settings ("key", value) VALUES ($1, $2)
ON CONFLICT ("key") DO NOTHING RETURNING value`, key, value).Scan(&kept)
		if errors.Is(err, pgx.ErrNoRows) {
			err = tx.QueryRow(ctx, `SELECT value FROM settings WHERE "key" = $1`, key).Scan(&kept)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: add setting %s: %w", key, err)
	}
	return kept, nil
}
