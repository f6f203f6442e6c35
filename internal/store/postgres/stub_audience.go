package postgres

// Placeholders until this part of the store is written: each returns
// errNotYet. The file goes when the last of them is implemented.

import (
	"context"
	"time"

	"mailout/internal/store"
)

var _ = time.Time{}

func (db *DB) CreateList(ctx context.Context, l *store.List) error { return errNotYet }

func (db *DB) List(ctx context.Context, id int64) (*store.List, error) { return nil, errNotYet }

func (db *DB) Lists(ctx context.Context) ([]store.List, error) { return nil, errNotYet }

func (db *DB) RenameList(ctx context.Context, id int64, name string) error { return errNotYet }

func (db *DB) DeleteList(ctx context.Context, id int64) error { return errNotYet }

func (db *DB) ImportSubscribers(ctx context.Context, listID int64, source string, next func() (*store.NewRecipient, error)) (added, updated int, err error) {
	return 0, 0, errNotYet
}

func (db *DB) Subscribers(ctx context.Context, listID int64, f store.SubscriberFilter, fn func(*store.Subscriber) error) error {
	return errNotYet
}

func (db *DB) Subscriber(ctx context.Context, listID, id int64) (*store.Subscriber, error) {
	return nil, errNotYet
}

func (db *DB) UpdateSubscriber(ctx context.Context, s *store.Subscriber) error { return errNotYet }

func (db *DB) DeleteSubscriber(ctx context.Context, listID, id int64) error { return errNotYet }

func (db *DB) CreateUser(ctx context.Context, u *store.User) error { return errNotYet }

func (db *DB) UserByEmail(ctx context.Context, email string) (*store.User, error) {
	return nil, errNotYet
}

func (db *DB) User(ctx context.Context, id int64) (*store.User, error) { return nil, errNotYet }

func (db *DB) Users(ctx context.Context) ([]store.User, error) { return nil, errNotYet }

func (db *DB) CreateSession(ctx context.Context, s *store.Session) error { return errNotYet }

func (db *DB) Session(ctx context.Context, id string) (*store.Session, error) { return nil, errNotYet }

func (db *DB) DeleteSession(ctx context.Context, id string) error { return errNotYet }

func (db *DB) DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	return 0, errNotYet
}

func (db *DB) CreateToken(ctx context.Context, t *store.APIToken) error { return errNotYet }

func (db *DB) TokenByHash(ctx context.Context, hash string) (*store.APIToken, error) {
	return nil, errNotYet
}

func (db *DB) Tokens(ctx context.Context) ([]store.APIToken, error) { return nil, errNotYet }

func (db *DB) DeleteToken(ctx context.Context, id int64) error { return errNotYet }

func (db *DB) TouchToken(ctx context.Context, id int64, at time.Time) error { return errNotYet }

func (db *DB) Setting(ctx context.Context, key string) ([]byte, error) { return nil, errNotYet }

func (db *DB) PutSetting(ctx context.Context, key string, value []byte) error { return errNotYet }
