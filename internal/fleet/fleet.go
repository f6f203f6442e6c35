// Package fleet makes a speed profile's limits hold for a whole fleet of
// workers that send one campaign from one PostgreSQL database: the global
// rate, the total connections, and the per-domain connections and rate,
// including a slow-down after a rate-limited answer, are counted for all
// workers together instead of for each of them.
//
// Place in the flow: the scheduler asks its Config.Gate (a *Gate from this
// package) before a session sends a group (Acquire: a connection slot for
// the total and one for the group's domain) and before each message
// starts (Wait, Allow); a 421 ends up in SlowDown. Without a Gate the
// scheduler keeps its limits in the process, as it does with SQLite.
//
// # Use
//
// One Gate per campaign run per worker process, on the store's pool:
//
//	g := fleet.New(fleet.Config{Pool: db.Pool(), Campaign: c.ID, Profile: p, Owner: owner})
//	defer g.Close()
//	res, err := scheduler.Run(ctx, scheduler.Config{…, Profile: p, Owner: owner, Gate: g})
//
// p must be the same profile the scheduler runs with (after the route's
// adjustments: a relay has no per-domain limits). Close gives back the
// slots still held; a worker that dies without it loses them when their
// lease (Config.Lease) has passed. For the connection counts to hold at
// the receivers, build the run's transport with transport.DirectConfig
// MaxIdle: -1 and transport.RelayConfig MaxIdle: -1 (see below).
//
// # Mechanism, and why
//
// Connections are slot leases, because a connection limit must be exact:
// a row (campaign, domain, slot number) in fleet_slots per held slot, ""
// being the total. Taking a slot is one INSERT … ON CONFLICT that takes a
// free or expired slot number below the limit; the primary key makes two
// workers holding one slot impossible, so the sessions in use across the
// fleet never exceed Connections, nor DomainConnections for one domain.
// A worker renews its leases every Lease/3 in one UPDATE; a worker that
// stops (crash, lost network) stops renewing, and its slots are taken over
// once the lease has passed. A slot a session gives back goes straight to
// a session of the same worker waiting for one, without a round trip;
// otherwise its row is deleted and the waiting workers, which poll with a
// growing pause of up to a quarter of a second, find it free. A session
// holds its slots while it sends a group (take … done in the scheduler),
// which is what the profile counts in one process too. Counted at the receivers the limit is exact only
// when the transport keeps no connection open between groups (the direct
// and relay routes' MaxIdle < 0): a connection kept idle in one worker's
// pool is not a session in use, and another worker may meanwhile open one.
//
// Rates are shared token buckets, one row per bucket in fleet_rates kept
// as a "theoretical arrival time" (virtual scheduling): fleet_take reserves
// a chunk of n starts in one round trip and moves the bucket's time on by
// n / rate, so the starts handed to all workers together are spaced at
// 1 / rate whatever the number of workers, with nothing to recompute when
// workers join or leave (no membership table is needed, and an idle worker
// holds no share of the rate). A chunk is Chunk's worth of the rate (a
// tenth of a second by default, at least one start), so the round trips
// for a bucket are about ten a second for the whole fleet, not per
// message; a start not used within Chunk of its time is dropped rather
// than used late, so the fleet never runs ahead of the rate by more than
// one chunk per worker. A worker that dies with a chunk wastes at most that
// chunk.
//
// A slow-down is part of the domain's bucket row (slow_per_sec and
// cool_until): fleet_slow_down halves the domain's current rate for every
// worker, and fleet_take reads it, with the same gradual recovery as
// throttle.Limiter (doubling once per throttle.CoolDown), each time a
// worker takes the domain's rate. A domain without a rate of its own is
// looked at in the database at most once a second per worker (unlimitedTTL),
// so a slow-down of it is seen within a second.
//
// Pause-every (Profile.PauseEvery) stays per worker: it is a pause of the
// sender, not a limit of a receiver.
//
// The database being unreachable makes Acquire and Wait retry with a
// growing pause (up to a quarter of a second) until it is back or their context ends;
// nothing starts meanwhile.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"mailout/internal/throttle"
)

// Config configures a Gate.
type Config struct {
	// Pool is the PostgreSQL store's pool (postgres.DB.Pool); its schema
	// has the fleet's tables (migration 0003).
	Pool *pgxpool.Pool
	// Campaign is the id of the campaign whose limits are shared.
	Campaign int64
	// Profile is the profile the scheduler runs the campaign with.
	Profile throttle.Profile
	// Owner names this worker in slot leases: unique per process
	// (host:pid:random, the scheduler's Owner).
	Owner string
	// Lease is how long a slot stays held without renewal; default 30 s.
	// It is how long a dead worker's connections stay counted.
	Lease time.Duration
	// Chunk is how much of a rate one round trip takes; default 100 ms.
	Chunk time.Duration
	// CoolDown is how long a slow-down holds; default throttle.CoolDown.
	CoolDown time.Duration
	Logger   *slog.Logger
}

const (
	defaultLease = 30 * time.Second
	defaultChunk = 100 * time.Millisecond
	// unlimitedTTL: how long a domain found without a rate (and not slowed
	// down) is taken as unlimited before the database is asked again.
	unlimitedTTL = time.Second
	// minPoll and maxPoll bound the pause between two tries for a slot
	// while every slot is taken (a slot given back by a session of the
	// same worker is handed over at once), and between retries after a
	// database error.
	minPoll = 10 * time.Millisecond
	maxPoll = 250 * time.Millisecond
	// releaseTimeout bounds the giving back of one slot; after it the
	// lease expires on its own.
	releaseTimeout = 5 * time.Second
	// slowDownFloor is throttle's floor for a slow-down: one message a
	// minute, in messages per second.
	slowDownFloor = 1.0 / 60
	// unlimitedDomainRate is the per-second rate a slow-down halves when
	// neither the profile's domain rate nor its global rate is set (as
	// throttle.Limiter: 120 a minute).
	unlimitedDomainRate = 2.0
)

// ErrClosed is returned by Acquire and Wait after Close.
var ErrClosed = errors.New("fleet: gate closed")

// Gate coordinates one campaign's limits with the other workers through
// PostgreSQL. It implements scheduler.Gate and is safe for concurrent use.
type Gate struct {
	cfg  Config
	stop context.CancelFunc
	ctx  context.Context // ends at Close
	done chan struct{}   // renewal loop ended

	mu      sync.Mutex
	held    map[slotKey]bool
	waiters map[string][]chan int // by domain: sessions waiting for a slot, first first
	buckets map[string]*bucket
}

type slotKey struct {
	domain string
	slot   int
}

// bucket is this worker's part of one fleet bucket: the starts of the last
// chunk it reserved.
type bucket struct {
	fetch sync.Mutex // one reservation at a time; waiters share its chunk

	// Guarded by Gate.mu:
	next      time.Time     // time of the next reserved start
	interval  time.Duration // between two reserved starts
	left      int           // reserved starts not used
	unlimited time.Time     // the bucket is unlimited until then
}

// New returns a Gate and starts renewing its slot leases.
func New(cfg Config) *Gate {
	if cfg.Lease <= 0 {
		cfg.Lease = defaultLease
	}
	if cfg.Chunk <= 0 {
		cfg.Chunk = defaultChunk
	}
	if cfg.CoolDown <= 0 {
		cfg.CoolDown = throttle.CoolDown
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, stop := context.WithCancel(context.Background())
	g := &Gate{cfg: cfg, ctx: ctx, stop: stop, done: make(chan struct{}),
		held: map[slotKey]bool{}, waiters: map[string][]chan int{}, buckets: map[string]*bucket{}}
	go g.renewLoop()
	return g
}

// Close stops renewing and gives back every slot still held. The Gate
// must not be used afterwards.
func (g *Gate) Close() error {
	g.stop()
	<-g.done
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	_, err := g.cfg.Pool.Exec(ctx, `DELETE FROM fleet_slots WHERE owner = $1 AND campaign_id = $2`,
		g.cfg.Owner, g.cfg.Campaign)
	g.mu.Lock()
	clear(g.held)
	g.mu.Unlock()
	if err != nil {
		return fmt.Errorf("fleet: give back the connection slots: %w", err)
	}
	return nil
}

// limitOf is the number of slots of domain ("" = the total); 0 = none
// needed.
func (g *Gate) limitOf(domain string) int {
	if domain == "" {
		return g.cfg.Profile.Connections
	}
	return g.cfg.Profile.DomainConnections
}

// Acquire takes one connection slot of domain ("" for the profile's
// total), waiting while the fleet holds every one of them, and returns the
// function that gives it back. A domain without a per-domain limit needs
// no slot. It fails only when ctx ends or the Gate is closed.
func (g *Gate) Acquire(ctx context.Context, domain string) (release func(), err error) {
	limit := g.limitOf(domain)
	if limit <= 0 {
		return func() {}, nil
	}
	// Wait in line here as well: a slot this worker gives back goes to
	// its first waiter directly, without a round trip and without the
	// delay of the next poll.
	ch := make(chan int, 1)
	g.mu.Lock()
	g.waiters[domain] = append(g.waiters[domain], ch)
	g.mu.Unlock()
	// leave takes ch out of the line; a slot handed to it meanwhile is
	// given back.
	leave := func() {
		g.mu.Lock()
		ws := g.waiters[domain]
		for i, w := range ws {
			if w == ch {
				g.waiters[domain] = append(ws[:i:i], ws[i+1:]...)
				g.mu.Unlock()
				return
			}
		}
		g.mu.Unlock()
		g.release(slotKey{domain, <-ch})
	}
	wait := minPoll
	for {
		slot, ok, err := g.tryAcquire(ctx, domain, limit)
		switch {
		case err == nil && ok:
			leave()
			return g.holding(slotKey{domain, slot}), nil
		case err == nil:
			// Every slot is taken: poll, with a little jitter so waiting
			// workers do not ask in step.
		case ctx.Err() != nil:
		default:
			g.cfg.Logger.Warn("fleet: could not take a connection slot; retrying", "domain", domain, "err", err)
		}
		t := time.NewTimer(wait + rand.N(wait/2+1))
		select {
		case slot := <-ch:
			t.Stop()
			return g.holding(slotKey{domain, slot}), nil
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			leave()
			return nil, ctx.Err()
		case <-g.ctx.Done():
			t.Stop()
			leave()
			return nil, ErrClosed
		}
		wait = min(wait*2, maxPoll)
	}
}

// holding records k as held and returns the function that gives it back.
func (g *Gate) holding(k slotKey) func() {
	g.mu.Lock()
	g.held[k] = true
	g.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { g.release(k) }) }
}

// pause waits about d, or until ctx ends or the Gate closes.
func (g *Gate) pause(ctx context.Context, d time.Duration) error {
	d += rand.N(d/2 + 1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-g.ctx.Done():
		return ErrClosed
	}
}

// tryAcquire takes a free slot number below limit, or one whose lease has
// passed, in one statement. Two workers choosing the same number meet at
// the primary key: the second one's insert turns into an update whose
// condition fails on the row the first one wrote, and it takes nothing.
func (g *Gate) tryAcquire(ctx context.Context, domain string, limit int) (slot int, ok bool, err error) {
	rows, err := g.cfg.Pool.Query(ctx, `
INSERT INTO fleet_slots (campaign_id, domain, slot, owner, lease_until)
SELECT $1, $2, s, $3, now() + make_interval(secs => $5)
FROM generate_series(0, $4 - 1) AS s
WHERE NOT EXISTS (SELECT 1 FROM fleet_slots f
	WHERE f.campaign_id = $1 AND f.domain = $2 AND f.slot = s AND f.lease_until > now())
ORDER BY random()
LIMIT 1
ON CONFLICT (campaign_id, domain, slot) DO UPDATE
	SET owner = EXCLUDED.owner, lease_until = EXCLUDED.lease_until
	WHERE fleet_slots.lease_until <= now()
RETURNING slot`, g.cfg.Campaign, domain, g.cfg.Owner, limit, g.cfg.Lease.Seconds())
	if err != nil {
		return 0, false, err
	}
	defer rows.Close()
	for rows.Next() {
		if err := rows.Scan(&slot); err != nil {
			return 0, false, err
		}
		ok = true
	}
	return slot, ok, rows.Err()
}

// release gives slot k back. When that fails the lease runs out on its
// own; the slot is no longer renewed.
func (g *Gate) release(k slotKey) {
	g.mu.Lock()
	if ws := g.waiters[k.domain]; len(ws) > 0 && g.ctx.Err() == nil {
		// A session of this worker waits for a slot of the domain: it
		// gets this one, whose lease goes on being renewed.
		g.waiters[k.domain] = ws[1:]
		g.mu.Unlock()
		ws[0] <- k.slot
		return
	}
	delete(g.held, k)
	g.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	_, err := g.cfg.Pool.Exec(ctx, `DELETE FROM fleet_slots
WHERE campaign_id = $1 AND domain = $2 AND slot = $3 AND owner = $4`,
		g.cfg.Campaign, k.domain, k.slot, g.cfg.Owner)
	if err != nil {
		g.cfg.Logger.Warn("fleet: could not give back a connection slot; its lease will expire",
			"domain", k.domain, "err", err)
	}
}

// renewLoop renews this worker's slot leases every Lease/3 until Close.
func (g *Gate) renewLoop() {
	defer close(g.done)
	t := time.NewTicker(g.cfg.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-g.ctx.Done():
			return
		case <-t.C:
		}
		g.mu.Lock()
		n := len(g.held)
		g.mu.Unlock()
		if n == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(g.ctx, g.cfg.Lease/3)
		tag, err := g.cfg.Pool.Exec(ctx, `UPDATE fleet_slots SET lease_until = now() + make_interval(secs => $3)
WHERE owner = $1 AND campaign_id = $2 AND lease_until > now()`, g.cfg.Owner, g.cfg.Campaign, g.cfg.Lease.Seconds())
		cancel()
		switch {
		case err != nil && g.ctx.Err() == nil:
			g.cfg.Logger.Warn("fleet: could not renew the connection slots' leases", "err", err)
		case err == nil && int(tag.RowsAffected()) < n:
			// A lease ran out before it was renewed (the database was
			// away longer than Lease): another worker may hold the slot
			// now, and the connection limit may be passed until this
			// worker's sessions end their groups.
			g.cfg.Logger.Warn("fleet: connection slots lost to an expired lease",
				"held", n, "renewed", tag.RowsAffected())
		}
	}
}

// ratePerSec is domain's profile rate in messages per second ("" = the
// global rate); 0 = unlimited.
func (g *Gate) ratePerSec(domain string) float64 {
	if domain == "" {
		return g.cfg.Profile.Rate
	}
	return g.cfg.Profile.DomainRate / 60
}

// ceiling is the per-second rate a slowed domain without a rate of its own
// recovers to (throttle.Limiter's rule).
func (g *Gate) ceiling() float64 {
	if g.cfg.Profile.Rate > 0 {
		return g.cfg.Profile.Rate
	}
	return unlimitedDomainRate
}

// Wait blocks until one more message to domain may start for the fleet:
// a start of the domain's bucket first (so a slow domain holds no global
// capacity while it waits), then one of the global bucket.
func (g *Gate) Wait(ctx context.Context, domain string) error {
	if domain != "" {
		if err := g.waitBucket(ctx, domain); err != nil {
			return err
		}
	}
	return g.waitBucket(ctx, "")
}

// Allow takes a start of domain and of the global rate when both are
// reserved for now already, without a round trip, and reports whether it
// did: the scheduler adds messages to a group only while the fleet's rate
// would not make them wait.
func (g *Gate) Allow(domain string) bool {
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	var d, gl *bucket
	if domain != "" {
		// A domain without a rate of its own is unlimited only while the
		// database said so lately: another worker may have slowed it down.
		d = g.bucketLocked(domain)
		if ok, _ := d.dueLocked(now, g.cfg.Chunk); !ok {
			return false
		}
	}
	if g.cfg.Profile.Rate > 0 {
		gl = g.bucketLocked("")
		if ok, _ := gl.dueLocked(now, g.cfg.Chunk); !ok {
			return false
		}
	}
	if d != nil && !now.Before(d.unlimited) {
		d.takeLocked()
	}
	if gl != nil {
		gl.takeLocked()
	}
	return true
}

func (g *Gate) bucketLocked(domain string) *bucket {
	b := g.buckets[domain]
	if b == nil {
		b = &bucket{}
		g.buckets[domain] = b
	}
	return b
}

// dueLocked reports whether b has a start for now (dropping reserved
// starts older than maxLate), and whether b is unlimited.
func (b *bucket) dueLocked(now time.Time, maxLate time.Duration) (ok, unlimited bool) {
	if now.Before(b.unlimited) {
		return true, true
	}
	b.dropStaleLocked(now, maxLate)
	return b.left > 0 && !b.next.After(now), false
}

// dropStaleLocked forgets reserved starts more than maxLate in the past:
// used that late they would bunch up above the rate.
func (b *bucket) dropStaleLocked(now time.Time, maxLate time.Duration) {
	for b.left > 0 && now.Sub(b.next) > maxLate {
		b.takeLocked()
	}
}

// takeLocked uses the next reserved start.
func (b *bucket) takeLocked() {
	b.left--
	b.next = b.next.Add(b.interval)
}

// waitBucket takes one start of the bucket (reserving a chunk when this
// worker has none left) and sleeps until its time.
func (g *Gate) waitBucket(ctx context.Context, domain string) error {
	base := g.ratePerSec(domain)
	if domain == "" && base <= 0 {
		return ctx.Err() // nothing slows the global rate down
	}
	for {
		now := time.Now()
		g.mu.Lock()
		b := g.bucketLocked(domain)
		if now.Before(b.unlimited) {
			g.mu.Unlock()
			return ctx.Err()
		}
		b.dropStaleLocked(now, g.cfg.Chunk)
		if b.left > 0 {
			at := b.next
			b.takeLocked()
			g.mu.Unlock()
			return g.sleepUntil(ctx, at)
		}
		g.mu.Unlock()
		if err := g.reserve(ctx, b, domain, base); err != nil {
			return err
		}
	}
}

// reserve fetches the next chunk of b from the database, unless another
// waiter of this worker did meanwhile. Database errors are retried.
func (g *Gate) reserve(ctx context.Context, b *bucket, domain string, base float64) error {
	b.fetch.Lock()
	defer b.fetch.Unlock()
	g.mu.Lock()
	have := b.left > 0 || time.Now().Before(b.unlimited)
	g.mu.Unlock()
	if have {
		return nil
	}
	// A chunk is Chunk's worth of the bucket's current rate: a slowed-down
	// domain's chunk is no longer in time than any other.
	wait := minPoll
	for {
		var delay, perSec float64
		var n int
		err := g.cfg.Pool.QueryRow(ctx, `SELECT delay, per_sec, n FROM fleet_take($1, $2, $3, $4, $5, $6)`,
			g.cfg.Campaign, domain, g.cfg.Chunk.Seconds(), base, g.ceiling(), g.cfg.CoolDown.Seconds()).Scan(&delay, &perSec, &n)
		if err == nil {
			now := time.Now()
			g.mu.Lock()
			if perSec <= 0 {
				b.unlimited = now.Add(unlimitedTTL)
			} else {
				b.next = now.Add(time.Duration(delay * float64(time.Second)))
				b.interval = time.Duration(float64(time.Second) / perSec)
				b.left = n
			}
			g.mu.Unlock()
			return nil
		}
		if ctx.Err() == nil {
			g.cfg.Logger.Warn("fleet: could not take the rate; retrying", "domain", domain, "err", err)
		}
		if err := g.pause(ctx, wait); err != nil {
			return err
		}
		wait = min(wait*2, maxPoll)
	}
}

// sleepUntil waits until at, or until ctx ends.
func (g *Gate) sleepUntil(ctx context.Context, at time.Time) error {
	d := time.Until(at)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SlowDown halves domain's rate for the whole fleet after a rate-limited
// answer from it (see throttle.Limiter.SlowDown for the rule). This
// worker's reserved starts of the domain are dropped, so it too goes on at
// the new rate. A database error is logged: the slow-down is then this
// worker's alone (it re-reserves at the rate the database has).
func (g *Gate) SlowDown(domain string) {
	g.mu.Lock()
	b := g.bucketLocked(domain)
	b.left, b.unlimited = 0, time.Time{}
	g.mu.Unlock()
	ctx, cancel := context.WithTimeout(g.ctx, releaseTimeout)
	defer cancel()
	var perSec float64
	err := g.cfg.Pool.QueryRow(ctx, `SELECT fleet_slow_down($1, $2, $3, $4, $5, $6)`,
		g.cfg.Campaign, domain, g.ratePerSec(domain), g.ceiling(), g.cfg.CoolDown.Seconds(), slowDownFloor).Scan(&perSec)
	if err != nil {
		g.cfg.Logger.Warn("fleet: could not slow the domain down for the fleet", "domain", domain, "err", err)
		return
	}
	g.cfg.Logger.Info("fleet: domain slowed down for every worker", "domain", domain, "per_minute", perSec*60)
}

// DomainRate returns domain's current rate for the fleet in messages per
// minute (0 = unlimited), after any recovery due now. For reports and
// tests.
func (g *Gate) DomainRate(ctx context.Context, domain string) (float64, error) {
	var perSec *float64
	err := g.cfg.Pool.QueryRow(ctx, `SELECT fleet_rate_now(r, clock_timestamp(), $3, $4, $5)
FROM fleet_rates r WHERE campaign_id = $1 AND domain = $2`,
		g.cfg.Campaign, domain, g.ratePerSec(domain), g.ceiling(), g.cfg.CoolDown.Seconds()).Scan(&perSec)
	if errors.Is(err, pgx.ErrNoRows) {
		return g.cfg.Profile.DomainRate, nil
	}
	if err != nil {
		return 0, fmt.Errorf("fleet: read the rate of %s: %w", domain, err)
	}
	return *perSec * 60, nil
}
