package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrCampaignLocked is returned by LockCampaign when another session holds
// the campaign's lock: some other process is running it.
var ErrCampaignLocked = errors.New("postgres: the campaign is locked by another session")

// Unreachable reports whether err is a failure to connect to the server
// (nothing listening, wrong host or port, authentication refused, no such
// database) rather than an error of a query.
func Unreachable(err error) bool {
	var ce *pgconn.ConnectError
	return errors.As(err, &ce)
}

// campaignLockKey is the first key of a campaign's session advisory lock
// (pg_try_advisory_lock(key1, key2)), the second being the campaign id:
// the hash of a fixed name and the schema, so that stores in different
// schemas of one database (as the tests use) lock their campaigns apart.
// Ids are 64 bits, the key 32: ids above 2^31 share keys, which can only
// make one campaign wait for another, never run one twice.
const campaignLockKey = `hashtext('mailout campaign ' || current_schema())`

// lockTimeout bounds the connection and the query that take or test a
// campaign lock.
const lockTimeout = 30 * time.Second

// LockCampaign takes the campaign's exclusive session advisory lock on a
// connection of its own, taken out of the pool and held until unlock
// closes it; ErrCampaignLocked when another session holds the lock
// (exclusive or shared). The server drops the lock when the session ends,
// so a process that dies, however it dies, leaves the campaign free. If
// the connection itself is lost (the server restarts) the lock goes with
// it.
func (db *DB) LockCampaign(ctx context.Context, id int64) (unlock func(), err error) {
	ctx, cancel := context.WithTimeout(ctx, lockTimeout)
	defer cancel()
	pc, err := db.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: campaign %d lock: %w", db.where, id, err)
	}
	// Out of the pool: the pool never hands this session to anyone else,
	// and closing the pool does not wait for it.
	conn := pc.Hijack()
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(`+campaignLockKey+`, $1)`, int32(id)).Scan(&got); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("postgres: %s: campaign %d lock: %w", db.where, id, err)
	}
	if !got {
		conn.Close(context.WithoutCancel(ctx))
		return nil, ErrCampaignLocked
	}
	return func() { releaseLocks(conn) }, nil
}

// releaseLocks gives back the advisory locks of a lock's own connection
// and closes it. The server drops a closed session's locks only once its
// backend has exited, after Close returns: without the explicit unlock a
// lock taken right after this one is given back could still find it held.
func releaseLocks(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), lockTimeout)
	defer cancel()
	_, _ = conn.Exec(ctx, `SELECT pg_advisory_unlock_all()`)
	conn.Close(ctx)
}

// CampaignRunning reports whether some session holds the campaign's lock,
// exclusive (LockCampaign) or shared, as pg_locks shows it; the lock is
// only looked at, never taken.
func (db *DB) CampaignRunning(ctx context.Context, id int64) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, lockTimeout)
	defer cancel()
	// pg_locks shows the two int4 keys of an advisory lock as the oids
	// classid and objid, objsubid 2.
	var held bool
	err := db.pool.QueryRow(ctx, `SELECT EXISTS (
	SELECT 1 FROM pg_locks
	WHERE locktype = 'advisory' AND granted AND objsubid = 2
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND classid = (`+campaignLockKey+`)::oid AND objid = ($1::int4)::oid
)`, int32(id)).Scan(&held)
	if err != nil {
		return false, fmt.Errorf("postgres: %s: is campaign %d running: %w", db.where, id, err)
	}
	return held, nil
}
