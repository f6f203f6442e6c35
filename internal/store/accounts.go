package store

import (
	"context"
	"time"
)

// User is a person who may sign in to the web app.
type User struct {
	ID           int64
	Email        string
	PasswordHash string // a password hash in PHC form, never the password
	CreatedAt    time.Time
}

// Session is a signed-in browser. ID is the SHA-256 (hex) of the cookie
// value, never the value itself.
type Session struct {
	ID                   string
	UserID               int64
	CreatedAt, ExpiresAt time.Time
}

// APIToken authorises API requests. Hash is the SHA-256 (hex) of the
// token; the token itself is shown once and never stored.
type APIToken struct {
	ID                  int64
	Name                string
	Hash                string
	CreatedAt, LastUsed time.Time
}

// Accounts persists users, sessions, API tokens and the app's settings.
type Accounts interface {
	// CreateUser sets u.ID and u.CreatedAt; ErrExists when the email is taken.
	CreateUser(ctx context.Context, u *User) error
	UserByEmail(ctx context.Context, email string) (*User, error)
	User(ctx context.Context, id int64) (*User, error)
	Users(ctx context.Context) ([]User, error)

	CreateSession(ctx context.Context, s *Session) error
	Session(ctx context.Context, id string) (*Session, error)
	DeleteSession(ctx context.Context, id string) error
	DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error)

	// CreateToken sets t.ID and t.CreatedAt; ErrExists when the name is taken.
	CreateToken(ctx context.Context, t *APIToken) error
	TokenByHash(ctx context.Context, hash string) (*APIToken, error)
	Tokens(ctx context.Context) ([]APIToken, error)
	DeleteToken(ctx context.Context, id int64) error
	TouchToken(ctx context.Context, id int64, at time.Time) error

	// Setting returns ErrNotFound when the key was never put.
	Setting(ctx context.Context, key string) ([]byte, error)
	PutSetting(ctx context.Context, key string, value []byte) error
	// AddSetting stores value unless the key has a value already, in one
	// transaction, and returns the value kept: the one given, or the one
	// another process stored first. For values made once per database
	// (signing keys), so that processes starting at once agree on one.
	AddSetting(ctx context.Context, key string, value []byte) ([]byte, error)
}
