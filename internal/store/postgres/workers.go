package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"mailout/internal/store"
)

// Worker is one process of the fleet that sends campaigns (mailout worker,
// or serve with its local worker), as its last heartbeat left it.
type Worker struct {
	// ID is the owner name of its leases: host:pid:random.
	ID   string
	Host string
	PID  int
	// HELO and SourceIP are its own sending identity on the direct
	// route, when it was given one.
	HELO, SourceIP string
	StartedAt      time.Time
	HeartbeatAt    time.Time
	// Interval is how often it promised to beat.
	Interval time.Duration
	// StoppedAt is when it stopped cleanly (zero: it did not).
	StoppedAt time.Time
	// Campaigns it was running at the heartbeat.
	Campaigns []int64
	// Claimed is how many rows it held (state sending) at the heartbeat.
	Claimed int
	// Sent is how many attempts it finished since it started; Rate is
	// attempts per second over its last interval.
	Sent int64
	Rate float64
	// Gone: it stopped, or missed GoneAfter heartbeats (it died or lost
	// the database). Set by Workers.
	Gone bool
}

// GoneAfter is how many heartbeat intervals a worker may miss before it
// is shown as gone.
const GoneAfter = 3

// Heartbeat stores the worker's state at w.HeartbeatAt (now when zero):
// the first beat registers it (StartedAt), each later one updates it. The
// rows it holds are counted here (w.Claimed is set from the store).
func (db *DB) Heartbeat(ctx context.Context, w *Worker) error {
	at := w.HeartbeatAt
	if at.IsZero() {
		at = now()
	}
	started := w.StartedAt
	if started.IsZero() {
		started = at
	}
	campaigns := w.Campaigns
	if campaigns == nil {
		campaigns = []int64{}
	}
	var startedMS int64
	err := db.pool.QueryRow(ctx, `
INSERT INTO workers (id, host, pid, helo, source_ip, started_at, heartbeat_at, interval_ms, campaigns, claimed, sent, rate)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,
	(SELECT count(*) FROM deliveries WHERE state = 'sending' AND lease_owner = $1), $10, $11)
ON CONFLICT (id) DO UPDATE SET
	heartbeat_at = excluded.heartbeat_at, interval_ms = excluded.interval_ms, stopped_at = 0,
	campaigns = excluded.campaigns, claimed = excluded.claimed, sent = excluded.sent, rate = excluded.rate,
	helo = excluded.helo, source_ip = excluded.source_ip
RETURNING claimed, started_at`,
		w.ID, w.Host, w.PID, w.HELO, w.SourceIP, ms(started), ms(at), w.Interval.Milliseconds(),
		campaigns, w.Sent, w.Rate).Scan(&w.Claimed, &startedMS)
	if err != nil {
		return fmt.Errorf("postgres: heartbeat of worker %s: %w", w.ID, err)
	}
	w.StartedAt, w.HeartbeatAt = fromMS(startedMS), at
	return nil
}

// StopWorker marks the worker as stopped at at: it is gone at once, not
// after missing its heartbeats.
func (db *DB) StopWorker(ctx context.Context, id string, at time.Time) error {
	_, err := db.pool.Exec(ctx, `UPDATE workers SET stopped_at = $2, campaigns = '{}', claimed = 0, rate = 0 WHERE id = $1`, id, ms(at))
	if err != nil {
		return fmt.Errorf("postgres: stop worker %s: %w", id, err)
	}
	return nil
}

// Workers lists every worker that registered, the oldest first, live and
// gone: gone when it stopped or its last heartbeat is older than
// GoneAfter of its intervals at now.
func (db *DB) Workers(ctx context.Context, at time.Time) ([]Worker, error) {
	rows, err := db.pool.Query(ctx, `
SELECT id, host, pid, helo, source_ip, started_at, heartbeat_at, interval_ms, stopped_at, campaigns, claimed, sent, rate
FROM workers ORDER BY started_at, id`)
	if err != nil {
		return nil, fmt.Errorf("postgres: workers: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Worker, error) {
		var (
			w                                  Worker
			started, beat, interval, stoppedAt int64
		)
		err := r.Scan(&w.ID, &w.Host, &w.PID, &w.HELO, &w.SourceIP, &started, &beat, &interval, &stoppedAt,
			&w.Campaigns, &w.Claimed, &w.Sent, &w.Rate)
		w.StartedAt, w.HeartbeatAt, w.StoppedAt = fromMS(started), fromMS(beat), fromMS(stoppedAt)
		w.Interval = time.Duration(interval) * time.Millisecond
		w.Gone = stoppedAt != 0 || at.Sub(w.HeartbeatAt) > GoneAfter*w.Interval
		return w, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: workers: %w", err)
	}
	return out, nil
}

// RunningCampaigns lists the campaigns a worker carries out at now: status
// running and due (no start time, or one that has come), oldest first,
// without their message (Campaign reads it).
func (db *DB) RunningCampaigns(ctx context.Context, at time.Time) ([]int64, error) {
	rows, err := db.pool.Query(ctx, `SELECT id FROM campaigns WHERE status = 'running' AND start_at <= $1 ORDER BY id`, ms(at))
	if err != nil {
		return nil, fmt.Errorf("postgres: running campaigns: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("postgres: running campaigns: %w", err)
	}
	return ids, nil
}

var _ store.Fleet = (*DB)(nil)

// RenewLeases extends to until the lease of every row of the campaign
// that owner holds (state sending): a run renews its leases while it
// holds rows, so that only a worker that stopped renewing (it died, or
// lost the database) loses them. Returns how many were renewed.
func (db *DB) RenewLeases(ctx context.Context, campaignID int64, owner string, until time.Time) (int, error) {
	tag, err := db.pool.Exec(ctx, `
UPDATE deliveries SET lease_until = $3
WHERE id IN (
	-- Locked in id order, as Record and ReleaseLeases lock them: the
	-- same rows taken in two orders deadlock.
	SELECT id FROM deliveries
	WHERE campaign_id = $1 AND state = 'sending' AND lease_owner = $2 AND lease_until < $3
	ORDER BY id FOR UPDATE)`,
		campaignID, owner, ms(until))
	if err != nil {
		return 0, fmt.Errorf("postgres: renew leases of campaign %d: %w", campaignID, err)
	}
	return int(tag.RowsAffected()), nil
}

// ReleaseOwned returns the campaign's rows that owner still holds (state
// sending) as ReleaseLeases does a crashed run's: to pending, due at at,
// flagged PossibleDuplicate (they may have been sent: their result was not
// recorded), Crashes incremented, crash-loop at store.CrashLimit. A worker
// calls it when its run of the campaign ended, so the rows it could not
// record go to the others at once rather than when their lease expires.
func (db *DB) ReleaseOwned(ctx context.Context, campaignID int64, owner string, at time.Time) (int, error) {
	tag, err := db.pool.Exec(ctx, `
UPDATE deliveries SET
	state = CASE WHEN crashes + 1 >= $4 THEN 'failed' ELSE 'pending' END,
	class = CASE WHEN crashes + 1 >= $4 THEN 'crash-loop' ELSE class END,
	text  = CASE WHEN crashes + 1 >= $4 THEN $5 ELSE text END,
	code  = CASE WHEN crashes + 1 >= $4 THEN 0 ELSE code END,
	enhanced = CASE WHEN crashes + 1 >= $4 THEN '' ELSE enhanced END,
	next_at = $3, lease_owner = '', lease_until = 0,
	possible_duplicate = true, crashes = crashes + 1, updated_at = $3
WHERE id IN (
	-- In id order, as Record and ReleaseLeases lock rows.
	SELECT id FROM deliveries
	WHERE campaign_id = $1 AND state = 'sending' AND lease_owner = $2
	ORDER BY id FOR UPDATE)`,
		campaignID, owner, ms(at), store.CrashLimit, crashReason)
	if err != nil {
		return 0, fmt.Errorf("postgres: release the rows of %s in campaign %d: %w", owner, campaignID, err)
	}
	return int(tag.RowsAffected()), nil
}

// PauseRunning pauses the campaign with reason only if it is running, and
// reports whether it did: of several workers whose circuit breakers trip
// at once, one pauses the campaign (and stores the diagnosis), the others
// find it paused.
func (db *DB) PauseRunning(ctx context.Context, id int64, reason string) (bool, error) {
	tag, err := db.pool.Exec(ctx, `UPDATE campaigns SET status = 'paused', status_reason = $2 WHERE id = $1 AND status = 'running'`, id, reason)
	if err != nil {
		return false, fmt.Errorf("postgres: pause campaign %d: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Ping reports whether the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: %s: %w", db.where, err)
	}
	return nil
}

// LockCampaignShared takes the campaign's session advisory lock in shared
// mode, as every worker sending it does: any number of workers hold it at
// once, while LockCampaign (a process that sends the campaign alone, and
// takes back every lease as its own) fails with ErrCampaignLocked; and
// this fails while such a process holds the lock. CampaignRunning sees it.
func (db *DB) LockCampaignShared(ctx context.Context, id int64) (unlock func(), err error) {
	ctx, cancel := context.WithTimeout(ctx, lockTimeout)
	defer cancel()
	pc, err := db.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: campaign %d shared lock: %w", db.where, id, err)
	}
	conn := pc.Hijack()
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock_shared(`+campaignLockKey+`, $1)`, int32(id)).Scan(&got); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("postgres: %s: campaign %d shared lock: %w", db.where, id, err)
	}
	if !got {
		conn.Close(context.WithoutCancel(ctx))
		return nil, ErrCampaignLocked
	}
	return func() { releaseLocks(conn) }, nil
}
