package fleet_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"mailout/internal/fleet"
	"mailout/internal/peertest"
	"mailout/internal/store/postgres"
	"mailout/internal/throttle"
)

// database returns a fresh schema with the store's migrations and a
// campaign in it.
func database(t *testing.T) (dsn string, campaign int64) {
	t.Helper()
	pg := peertest.Postgres(t)
	dsn = pg.Schema(t)
	db := open(t, dsn)
	err := db.Pool().QueryRow(t.Context(), `INSERT INTO campaigns (name, created_at, status)
VALUES ('fleet', 0, 'running') RETURNING id`).Scan(&campaign)
	if err != nil {
		t.Fatal(err)
	}
	return dsn, campaign
}

func open(t *testing.T, dsn string) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// worker is one worker process's Gate, on a pool of its own.
func worker(t *testing.T, dsn string, campaign int64, p throttle.Profile, owner string, mod func(*fleet.Config)) (*fleet.Gate, *postgres.DB) {
	t.Helper()
	db := open(t, dsn)
	cfg := fleet.Config{Pool: db.Pool(), Campaign: campaign, Profile: p, Owner: owner}
	if mod != nil {
		mod(&cfg)
	}
	g := fleet.New(cfg)
	t.Cleanup(func() { g.Close() })
	return g, db
}

// The connection slots are exact across workers: however many sessions of
// however many workers race for them, no more than Connections hold a
// total slot and no more than DomainConnections a slot of one domain.
func TestConnectionSlotsHoldForTheFleet(t *testing.T) {
	dsn, c := database(t)
	p := throttle.Profile{Name: "t", Connections: 3, DomainConnections: 2}
	var total, domain, maxTotal, maxDomain atomic.Int64
	raise := func(m *atomic.Int64, v int64) {
		for {
			old := m.Load()
			if v <= old || m.CompareAndSwap(old, v) {
				return
			}
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 3 {
		g, _ := worker(t, dsn, c, p, fmt.Sprintf("w%d", w), nil)
		for range 5 {
			wg.Go(func() {
				for range 8 {
					relT, err := g.Acquire(t.Context(), "")
					if err != nil {
						errs <- err
						return
					}
					raise(&maxTotal, total.Add(1))
					relD, err := g.Acquire(t.Context(), "a.example")
					if err != nil {
						errs <- err
						return
					}
					raise(&maxDomain, domain.Add(1))
					domain.Add(-1)
					relD()
					total.Add(-1)
					relT()
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if maxTotal.Load() > 3 || maxDomain.Load() > 2 {
		t.Fatalf("at most %d sessions held a connection slot and %d one of a.example at once; the profile allows 3 and 2",
			maxTotal.Load(), maxDomain.Load())
	}
}

// A slot is held as long as its worker renews it, and a dead worker's slot
// is taken over once its lease has passed.
func TestDeadWorkersSlotIsTakenOverAfterItsLease(t *testing.T) {
	dsn, c := database(t)
	p := throttle.Profile{Name: "t", Connections: 1}
	lease := time.Second
	a, adb := worker(t, dsn, c, p, "a", func(cfg *fleet.Config) { cfg.Lease = lease })
	b, _ := worker(t, dsn, c, p, "b", func(cfg *fleet.Config) { cfg.Lease = lease })
	if _, err := a.Acquire(t.Context(), ""); err != nil {
		t.Fatal(err)
	}
	// Past the lease, a's renewals keep the slot a's.
	ctx, cancel := context.WithTimeout(t.Context(), 2*lease)
	_, err := b.Acquire(ctx, "")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("b took the only slot while a held and renewed it (err %v)", err)
	}
	// a dies: no renewal, no release.
	adb.Close()
	ctx, cancel = context.WithTimeout(t.Context(), 10*lease)
	defer cancel()
	rel, err := b.Acquire(ctx, "")
	if err != nil {
		t.Fatalf("b could not take over the dead worker's slot: %v", err)
	}
	rel()
}

// arrivals collects the times messages start.
type arrivals struct {
	mu sync.Mutex
	at []time.Time
}

func (a *arrivals) add(t time.Time) {
	a.mu.Lock()
	a.at = append(a.at, t)
	a.mu.Unlock()
}

// most returns the most arrivals within any window of length w.
func (a *arrivals) most(w time.Duration) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	ts := append([]time.Time(nil), a.at...)
	sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	best, j := 0, 0
	for i := range ts {
		for ts[i].Sub(ts[j]) >= w {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

// runWaits has each of the workers' sessions take starts of domain for d
// and records when each start was allowed.
func runWaits(t *testing.T, gates []*fleet.Gate, sessions int, domain string, d time.Duration) *arrivals {
	t.Helper()
	var got arrivals
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	var wg sync.WaitGroup
	for _, g := range gates {
		for range sessions {
			wg.Go(func() {
				for g.Wait(ctx, domain) == nil {
					got.add(time.Now())
				}
			})
		}
	}
	wg.Wait()
	return &got
}

// The global rate holds for the fleet: three workers of 50 messages a
// second start no more than 50 a second together (and a start may bunch
// up by at most one chunk, 5 starts, per worker).
func TestGlobalRateHoldsForTheFleet(t *testing.T) {
	dsn, c := database(t)
	p := throttle.Profile{Name: "t", Connections: 10, Rate: 50}
	var gates []*fleet.Gate
	for w := range 3 {
		g, _ := worker(t, dsn, c, p, fmt.Sprintf("w%d", w), nil)
		gates = append(gates, g)
	}
	got := runWaits(t, gates, 3, "a.example", 2*time.Second)
	const limit = 50 + 3*5 // one second's rate, one chunk per worker
	if n := got.most(time.Second); n > limit {
		t.Fatalf("%d starts within one second; the profile allows 50 (tolerance %d)", n, limit)
	}
	if len(got.at) == 0 {
		t.Fatal("nothing started")
	}
}

// A domain's rate holds for the fleet as well.
func TestDomainRateHoldsForTheFleet(t *testing.T) {
	dsn, c := database(t)
	p := throttle.Profile{Name: "t", Connections: 10, DomainRate: 600} // 10 a second
	var gates []*fleet.Gate
	for w := range 3 {
		g, _ := worker(t, dsn, c, p, fmt.Sprintf("w%d", w), nil)
		gates = append(gates, g)
	}
	got := runWaits(t, gates, 2, "a.example", 2*time.Second)
	const limit = 10 + 3*1
	if n := got.most(time.Second); n > limit {
		t.Fatalf("%d starts to a.example within one second; the profile allows 10 (tolerance %d)", n, limit)
	}
}

// A slow-down by one worker holds for every worker: the other one reads the
// halved rate and paces its own starts by it.
func TestSlowDownIsSeenByEveryWorker(t *testing.T) {
	dsn, c := database(t)
	p := throttle.Profile{Name: "t", Connections: 2, DomainRate: 600}
	a, _ := worker(t, dsn, c, p, "a", nil)
	b, _ := worker(t, dsn, c, p, "b", nil)
	if err := b.Wait(t.Context(), "a.example"); err != nil { // b has the domain's rate already
		t.Fatal(err)
	}
	for range 2 { // 600 → 300 → 150 a minute
		a.SlowDown("a.example")
	}
	r, err := b.DomainRate(t.Context(), "a.example")
	if err != nil {
		t.Fatal(err)
	}
	if r != 150 {
		t.Fatalf("b sees a.example at %v a minute after a's slow-downs, want 150", r)
	}
	if o, _ := b.DomainRate(t.Context(), "b.example"); o != 600 {
		t.Fatalf("b.example is at %v a minute, want the profile's 600: a slow-down is for its domain only", o)
	}
	// At 150 a minute, b's starts are 0.4 s apart, not the profile's 0.1 s.
	var starts []time.Time
	for range 3 {
		if err := b.Wait(t.Context(), "a.example"); err != nil {
			t.Fatal(err)
		}
		starts = append(starts, time.Now())
	}
	if gap := starts[2].Sub(starts[1]); gap < 350*time.Millisecond {
		t.Fatalf("b started two messages to a.example %v apart after the slow-down; at 150 a minute they are 0.4 s apart", gap)
	}
}

// A worker that stops cleanly gives its slots back at once, without
// waiting for their lease.
func TestClosedWorkersSlotsAreFreeAtOnce(t *testing.T) {
	dsn, c := database(t)
	p := throttle.Profile{Name: "t", Connections: 1}
	a, _ := worker(t, dsn, c, p, "a", func(cfg *fleet.Config) { cfg.Lease = time.Hour })
	b, _ := worker(t, dsn, c, p, "b", nil)
	if _, err := a.Acquire(t.Context(), ""); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	rel, err := b.Acquire(ctx, "")
	if err != nil {
		t.Fatalf("b could not take the slot a gave back: %v", err)
	}
	rel()
}

// statements counts the statements a pool sends (pgx's tracer).
type statements struct{ n atomic.Int64 }

func (s *statements) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	s.n.Add(1)
	return ctx
}
func (s *statements) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// A slot a session gives back goes to a session of the same worker that
// waits for one, without a round trip: no DELETE of the slot, no INSERT
// of the waiter's next poll.
func TestSlotGoesToAWaitingSessionOfTheSameWorker(t *testing.T) {
	dsn, c := database(t)
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	var count statements
	cfg.ConnConfig.Tracer = &count
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	g := fleet.New(fleet.Config{Pool: pool, Campaign: c, Owner: "a", Lease: time.Hour,
		Profile: throttle.Profile{Name: "t", Connections: 1}})
	t.Cleanup(func() { g.Close() })
	rel, err := g.Acquire(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	// A second session waits until its first poll found nothing free:
	// the statements counted then are the first try's.
	got := make(chan func(), 1)
	go func() {
		r, err := g.Acquire(t.Context(), "")
		if err != nil {
			t.Error(err)
		}
		got <- r
	}()
	for count.n.Load() < 2 { // the holder's INSERT, the waiter's first try
		runtime.Gosched()
	}
	rel()
	r := <-got
	before := count.n.Load()
	r()
	if after := count.n.Load(); before != 2 || after != before+1 {
		t.Fatalf("%d statements until the waiter had the slot (want 2: the two first tries), %d to give it back (want 1)", before, after-before)
	}
}

// A chunk is a tenth of a second of the bucket's current rate, not of the
// profile's: a worker taking a slowed-down domain's rate does not reserve
// seconds of it ahead of the others.
func TestChunkOfASlowedDomainIsNoLonger(t *testing.T) {
	dsn, c := database(t)
	p := throttle.Profile{Name: "t", Connections: 2, DomainRate: 6000} // 100 a second: chunks of 10
	a, db := worker(t, dsn, c, p, "a", nil)
	for range 6 { // 100 → 1.5625 a second: 0.64 s apart
		a.SlowDown("a.example")
	}
	if err := a.Wait(t.Context(), "a.example"); err != nil {
		t.Fatal(err)
	}
	var ahead float64
	if err := db.Pool().QueryRow(t.Context(), `SELECT extract(epoch FROM tat - clock_timestamp())
FROM fleet_rates WHERE campaign_id = $1 AND domain = 'a.example'`, c).Scan(&ahead); err != nil {
		t.Fatal(err)
	}
	if ahead > 1.5 {
		t.Fatalf("a reserved a.example's starts %.1f s ahead; one start is 0.64 s at the slowed rate", ahead)
	}
}
