package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"mailout/internal/store"
)

// accountQueries are the statements of users, sessions, API tokens and
// settings (migration 0006), prepared by Open like the others.
type accountQueries struct {
	// writer
	userEmailTaken, userInsert, sessionInsert, sessionDelete, sessionsDeleteExpired *sql.Stmt
	tokenTaken, tokenInsert, tokenDelete, tokenTouch, settingPut                    *sql.Stmt
	settingAdd, settingGetW                                                         *sql.Stmt
	// readers
	userByEmail, userGet, usersList, sessionGet, tokenByHash, tokensList, settingGet *sql.Stmt

	all []*sql.Stmt
}

func prepareAccounts(ctx context.Context, w, r *sql.DB) (*accountQueries, error) {
	q := &accountQueries{}
	err := prepareSet(ctx, []stmtSpec{
		{w, "user_email_taken", &q.userEmailTaken},
		{w, "user_insert", &q.userInsert},
		{w, "session_insert", &q.sessionInsert},
		{w, "session_delete", &q.sessionDelete},
		{w, "sessions_delete_expired", &q.sessionsDeleteExpired},
		{w, "token_taken", &q.tokenTaken},
		{w, "token_insert", &q.tokenInsert},
		{w, "token_delete", &q.tokenDelete},
		{w, "token_touch", &q.tokenTouch},
		{w, "setting_put", &q.settingPut},
		{w, "setting_add", &q.settingAdd},
		{w, "setting_get_w", &q.settingGetW},
		{r, "user_by_email", &q.userByEmail},
		{r, "user_get", &q.userGet},
		{r, "users_list", &q.usersList},
		{r, "session_get", &q.sessionGet},
		{r, "token_by_hash", &q.tokenByHash},
		{r, "tokens_list", &q.tokensList},
		{r, "setting_get", &q.settingGet},
	}, &q.all)
	if err != nil {
		return nil, err
	}
	return q, nil
}

func (q *accountQueries) close() error { return closeSet(q.all) }

// taken reports whether stmt, a "SELECT 1 … WHERE" query, finds a row.
func taken(ctx context.Context, tx *sql.Tx, stmt *sql.Stmt, args ...any) (bool, error) {
	var one int
	err := tx.StmtContext(ctx, stmt).QueryRowContext(ctx, args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// CreateUser stores a new user; the email is unique whatever its case.
func (db *DB) CreateUser(ctx context.Context, u *store.User) error {
	if u == nil || u.Email == "" || u.PasswordHash == "" {
		return errors.New("sqlite: create user: an email and a password hash are required")
	}
	created := now()
	var id int64
	err := db.write(ctx, func(tx *sql.Tx) error {
		switch t, err := taken(ctx, tx, db.acct.userEmailTaken, sql.Named("email", u.Email)); {
		case err != nil:
			return err
		case t:
			return store.ErrExists
		}
		res, err := tx.StmtContext(ctx, db.acct.userInsert).ExecContext(ctx, sql.Named("email", u.Email),
			sql.Named("password_hash", u.PasswordHash), sql.Named("created_at", ms(created)))
		if err != nil {
			return err
		}
		id, err = res.LastInsertId()
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: create user: %w", err)
	}
	u.ID, u.CreatedAt = id, created
	return nil
}

func scanUser(row interface{ Scan(...any) error }) (*store.User, error) {
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
func one[T any](ctx context.Context, what string, stmt *sql.Stmt, scan func(interface{ Scan(...any) error }) (T, error), args ...any) (T, error) {
	v, err := scan(stmt.QueryRowContext(ctx, args...))
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return v, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return v, nil
}

// UserByEmail finds a user by email, whatever its case.
func (db *DB) UserByEmail(ctx context.Context, email string) (*store.User, error) {
	return one(ctx, "user by email", db.acct.userByEmail, scanUser, sql.Named("email", email))
}

// User finds a user by id.
func (db *DB) User(ctx context.Context, id int64) (*store.User, error) {
	return one(ctx, "user", db.acct.userGet, scanUser, sql.Named("id", id))
}

// Users lists every user, oldest first.
func (db *DB) Users(ctx context.Context) ([]store.User, error) {
	var out []store.User
	err := db.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.StmtContext(ctx, db.acct.usersList).QueryContext(ctx)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			u, err := scanUser(rows)
			if err != nil {
				return err
			}
			out = append(out, *u)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: users: %w", err)
	}
	return out, nil
}

// CreateSession stores a session; s.ID is the hash of the cookie value.
// A zero CreatedAt is set to now.
func (db *DB) CreateSession(ctx context.Context, s *store.Session) error {
	if s == nil || s.ID == "" {
		return errors.New("sqlite: create session: an id is required")
	}
	if s.CreatedAt.IsZero() {
		s.CreatedAt = now()
	}
	err := db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.StmtContext(ctx, db.acct.sessionInsert).ExecContext(ctx, sql.Named("id", s.ID),
			sql.Named("user_id", s.UserID), sql.Named("created_at", ms(s.CreatedAt)), sql.Named("expires_at", ms(s.ExpiresAt)))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: create session: %w", err)
	}
	return nil
}

func scanSession(row interface{ Scan(...any) error }) (*store.Session, error) {
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
	return one(ctx, "session", db.acct.sessionGet, scanSession, sql.Named("id", id))
}

// DeleteSession removes a session; removing one that is not there is no
// error (signing out twice).
func (db *DB) DeleteSession(ctx context.Context, id string) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		_, err := execCount(ctx, tx, db.acct.sessionDelete, sql.Named("id", id))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete session: %w", err)
	}
	return nil
}

// DeleteExpiredSessions removes the sessions that expired at or before now.
func (db *DB) DeleteExpiredSessions(ctx context.Context, at time.Time) (int, error) {
	var n int
	err := db.write(ctx, func(tx *sql.Tx) error {
		var err error
		n, err = execCount(ctx, tx, db.acct.sessionsDeleteExpired, sql.Named("now", ms(at)))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete expired sessions: %w", err)
	}
	return n, nil
}

// CreateToken stores an API token; its name and hash are unique.
func (db *DB) CreateToken(ctx context.Context, t *store.APIToken) error {
	if t == nil || t.Name == "" || t.Hash == "" {
		return errors.New("sqlite: create token: a name and a hash are required")
	}
	created := now()
	var id int64
	err := db.write(ctx, func(tx *sql.Tx) error {
		switch tk, err := taken(ctx, tx, db.acct.tokenTaken, sql.Named("name", t.Name), sql.Named("hash", t.Hash)); {
		case err != nil:
			return err
		case tk:
			return store.ErrExists
		}
		res, err := tx.StmtContext(ctx, db.acct.tokenInsert).ExecContext(ctx, sql.Named("name", t.Name),
			sql.Named("hash", t.Hash), sql.Named("created_at", ms(created)))
		if err != nil {
			return err
		}
		id, err = res.LastInsertId()
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: create token %q: %w", t.Name, err)
	}
	t.ID, t.CreatedAt, t.LastUsed = id, created, time.Time{}
	return nil
}

func scanToken(row interface{ Scan(...any) error }) (*store.APIToken, error) {
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

// TokenByHash finds a token by its SHA-256.
func (db *DB) TokenByHash(ctx context.Context, hash string) (*store.APIToken, error) {
	return one(ctx, "token", db.acct.tokenByHash, scanToken, sql.Named("hash", hash))
}

// Tokens lists every API token by name.
func (db *DB) Tokens(ctx context.Context) ([]store.APIToken, error) {
	var out []store.APIToken
	err := db.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.StmtContext(ctx, db.acct.tokensList).QueryContext(ctx)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			t, err := scanToken(rows)
			if err != nil {
				return err
			}
			out = append(out, *t)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: tokens: %w", err)
	}
	return out, nil
}

// changeOne runs a write that must change exactly one row, else
// store.ErrNotFound.
func (db *DB) changeOne(ctx context.Context, what string, stmt *sql.Stmt, args ...any) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		n, err := execCount(ctx, tx, stmt, args...)
		if err == nil && n == 0 {
			err = store.ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return nil
}

// DeleteToken revokes a token; store.ErrNotFound when there is none.
func (db *DB) DeleteToken(ctx context.Context, id int64) error {
	return db.changeOne(ctx, "delete token", db.acct.tokenDelete, sql.Named("id", id))
}

// TouchToken records the token's last use; store.ErrNotFound when there is
// none.
func (db *DB) TouchToken(ctx context.Context, id int64, at time.Time) error {
	return db.changeOne(ctx, "touch token", db.acct.tokenTouch, sql.Named("id", id), sql.Named("at", ms(at)))
}

// Setting returns the value stored under key; store.ErrNotFound when the
// key was never put.
func (db *DB) Setting(ctx context.Context, key string) ([]byte, error) {
	return one(ctx, "setting "+key, db.acct.settingGet, func(row interface{ Scan(...any) error }) ([]byte, error) {
		var v []byte
		err := row.Scan(&v)
		if v == nil && err == nil {
			v = []byte{}
		}
		return v, err
	}, sql.Named("key", key))
}

// PutSetting stores value under key, replacing what was there.
func (db *DB) PutSetting(ctx context.Context, key string, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	err := db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.StmtContext(ctx, db.acct.settingPut).ExecContext(ctx, sql.Named("key", key), sql.Named("value", value))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: put setting %s: %w", key, err)
	}
	return nil
}

// AddSetting stores value under key unless it has one, and returns the
// value kept.
func (db *DB) AddSetting(ctx context.Context, key string, value []byte) ([]byte, error) {
	if value == nil {
		value = []byte{}
	}
	var kept []byte
	err := db.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.StmtContext(ctx, db.acct.settingAdd).ExecContext(ctx, sql.Named("key", key), sql.Named("value", value)); err != nil {
			return err
		}
		return tx.StmtContext(ctx, db.acct.settingGetW).QueryRowContext(ctx, sql.Named("key", key)).Scan(&kept)
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: add setting %s: %w", key, err)
	}
	return kept, nil
}
