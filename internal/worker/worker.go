// Package worker is one sending process of a fleet: `mailout worker`, and
// `mailout serve` with its local worker, on a PostgreSQL database that
// every process of the fleet shares.
//
// Place in the flow: the worker registers and heartbeats (the workers
// table: what `mailout workers` and /metrics show), looks every Poll for
// campaigns stored as running and due, and runs each in the campaign
// service's shared mode (campaign.RunOptions.Shared): many workers send
// one campaign at once, each claiming its own rows under a short lease it
// renews. A worker that dies loses its leases when they end and the others
// take its rows; one that is stopped (SIGINT, SIGTERM) finishes and
// records its messages in flight and gives its rows back at once.
//
// When the database is lost the runs stop (the scheduler starts no
// message whose result cannot be recorded), the worker says so, tries the
// database again with a growing pause (1 s, doubling, at most 30 s), and
// carries on when it is back.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"mailout/internal/campaign"
	"mailout/internal/store"
	"mailout/internal/store/postgres"
	"mailout/internal/throttle"
)

// Store is what a worker needs of the fleet's database besides the
// campaign service's store: *postgres.DB.
type Store interface {
	Heartbeat(ctx context.Context, w *postgres.Worker) error
	StopWorker(ctx context.Context, id string, at time.Time) error
	RunningCampaigns(ctx context.Context, at time.Time) ([]int64, error)
	Ping(ctx context.Context) error
}

// Config is one worker.
type Config struct {
	// Service is the campaign service over the fleet's database (its
	// store is a Store: the PostgreSQL store).
	Service *campaign.Service
	// ID is the lease owner name the service was given (host:pid:random);
	// Host and PID are shown beside it.
	ID   string
	Host string
	PID  int
	// HELO and SourceIP: the worker's own identity on the direct route.
	HELO     string
	SourceIP net.IP
	// Profile is the speed of a campaign's run.
	Profile func(*store.Campaign) throttle.Profile
	// MaxCampaigns caps the campaigns run at once (0: no cap).
	MaxCampaigns int
	// Lease of the claimed rows (default campaign.SharedLease), Heartbeat
	// interval (default 5 s), Poll for running campaigns (default 2 s).
	Lease, Heartbeat, Poll time.Duration
	// Backoff is the first pause before the database is tried again
	// after it was lost (default 1 s); it doubles up to MaxBackoff
	// (default 30 s).
	Backoff, MaxBackoff time.Duration
	Logger              *slog.Logger
}

func (c *Config) defaults() {
	if c.Lease <= 0 {
		c.Lease = campaign.SharedLease
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = 5 * time.Second
	}
	if c.Poll <= 0 {
		c.Poll = 2 * time.Second
	}
	if c.Backoff <= 0 {
		c.Backoff = time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// worker is the state of a Run.
type worker struct {
	cfg  Config
	st   Store
	sent atomic.Int64

	mu      sync.Mutex
	running map[int64]context.CancelFunc
	// after: a campaign whose run failed (not for the database) is not
	// run again before this time.
	after map[int64]time.Time
	// storeDown is set by a run that stopped because the database failed.
	storeDown bool
	runs      sync.WaitGroup
}

// Run carries out the fleet's running campaigns until ctx ends, then
// waits for its runs to finish their messages in flight, and marks the
// worker stopped.
func Run(ctx context.Context, cfg Config) error {
	cfg.defaults()
	st, ok := cfg.Service.Store().(Store)
	if !ok {
		return ErrNotFleet
	}
	w := &worker{cfg: cfg, st: st, running: map[int64]context.CancelFunc{}, after: map[int64]time.Time{}}
	stopObserving := cfg.Service.Observe(func(e campaign.Event) {
		if e.Attempt != nil {
			w.sent.Add(1)
		}
	})
	defer stopObserving()
	log := cfg.Logger
	beat := &postgres.Worker{ID: cfg.ID, Host: cfg.Host, PID: cfg.PID, HELO: cfg.HELO, Interval: cfg.Heartbeat}
	if cfg.SourceIP != nil {
		beat.SourceIP = cfg.SourceIP.String()
	}
	runCtx, stopRuns := context.WithCancel(ctx)
	defer stopRuns()

	poll := time.NewTicker(cfg.Poll)
	defer poll.Stop()
	heart := time.NewTicker(cfg.Heartbeat)
	defer heart.Stop()
	lastBeat, lastSent := time.Time{}, int64(0)
	heartbeat := func() error {
		now := time.Now()
		sent := w.sent.Load()
		beat.HeartbeatAt, beat.Sent, beat.Campaigns = time.Time{}, sent, w.campaigns()
		if !lastBeat.IsZero() {
			beat.Rate = float64(sent-lastSent) / now.Sub(lastBeat).Seconds()
		}
		lastBeat, lastSent = now, sent
		return w.st.Heartbeat(ctx, beat)
	}
	for {
		var err error
		if lastBeat.IsZero() || time.Since(lastBeat) >= cfg.Heartbeat*9/10 {
			err = heartbeat()
		}
		if err == nil {
			err = w.startDue(runCtx)
		}
		if err == nil && w.takeStoreDown() {
			err = errStoreLost
		}
		if err != nil && ctx.Err() == nil {
			// The database is gone: the runs stop by themselves (nothing is
			// sent whose result cannot be recorded); wait for them, then
			// for the database.
			log.Error("worker: the database failed; no message is sent until it is back", "worker", cfg.ID, "err", err)
			w.runs.Wait()
			w.takeStoreDown()
			if err := w.waitForStore(ctx); err != nil {
				break
			}
			log.Warn("worker: the database is back; carrying on", "worker", cfg.ID)
			continue
		}
		select {
		case <-ctx.Done():
		case <-poll.C:
			continue
		case <-heart.C:
			continue
		}
		break
	}
	stopRuns()
	w.runs.Wait()
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := w.st.StopWorker(bg, cfg.ID, time.Now()); err != nil {
		log.Warn("worker: could not mark this worker stopped; it shows as gone after its heartbeats stop", "worker", cfg.ID, "err", err)
	}
	return nil
}

var errStoreLost = errors.New("a run stopped on a database failure")

// waitForStore tries the database with a growing pause until it answers
// or ctx ends.
func (w *worker) waitForStore(ctx context.Context) error {
	pause := w.cfg.Backoff
	for {
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := w.st.Ping(pctx)
		cancel()
		if err == nil {
			return nil
		}
		w.cfg.Logger.Warn("worker: the database is still unreachable", "worker", w.cfg.ID, "retry_in", min(2*pause, w.cfg.MaxBackoff).String())
		pause = min(2*pause, w.cfg.MaxBackoff)
	}
}

func (w *worker) takeStoreDown() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	down := w.storeDown
	w.storeDown = false
	return down
}

func (w *worker) campaigns() []int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]int64, 0, len(w.running))
	for id := range w.running {
		out = append(out, id)
	}
	return out
}

// startDue starts a run of every running, due campaign not run here yet,
// within MaxCampaigns.
func (w *worker) startDue(ctx context.Context) error {
	ids, err := w.st.RunningCampaigns(ctx, time.Now())
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	for _, id := range ids {
		if w.running[id] != nil || now.Before(w.after[id]) {
			continue
		}
		if w.cfg.MaxCampaigns > 0 && len(w.running) >= w.cfg.MaxCampaigns {
			break
		}
		rctx, cancel := context.WithCancel(ctx)
		w.running[id] = cancel
		w.runs.Go(func() {
			defer cancel()
			err := w.run(rctx, id)
			w.mu.Lock()
			defer w.mu.Unlock()
			delete(w.running, id)
			switch {
			case err == nil:
			case errors.Is(err, campaign.ErrStoreFailed):
				w.storeDown = true
			case errors.Is(err, campaign.ErrLocked):
				// mailout send or resume sends it alone: look again later.
				w.after[id] = time.Now().Add(5 * w.cfg.Poll)
			default:
				// A campaign that cannot run (a relay password missing,
				// a DKIM key unreadable) is tried again later, not at
				// every poll.
				w.after[id] = time.Now().Add(time.Minute)
			}
		})
	}
	return nil
}

// run runs campaign id in shared mode until it ends or ctx does.
func (w *worker) run(ctx context.Context, id int64) error {
	log := w.cfg.Logger
	c, err := w.cfg.Service.Store().Campaign(ctx, id)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("%w: %w", campaign.ErrStoreFailed, err)
	}
	res, err := w.cfg.Service.Run(ctx, c, campaign.RunOptions{
		Shared: true, Lease: w.cfg.Lease, Profile: w.cfg.Profile(c),
		HELO: w.cfg.HELO, SourceIP: w.cfg.SourceIP,
	})
	if err != nil {
		switch {
		case errors.Is(err, campaign.ErrLocked):
			log.Info("worker: the campaign is sent by a process of its own (mailout send or resume); the workers wait", "campaign", c.Name)
		case !errors.Is(err, campaign.ErrStoreFailed):
			log.Error("worker: cannot send the campaign", "campaign", c.Name, "err", err)
		}
		return err
	}
	log.Info("worker: run ended", "campaign", c.Name, "stop", res.Stop, "reason", res.Reason, "attempts", res.Attempts)
	return nil
}

// Info is one worker as `mailout workers` shows it.
type Info = postgres.Worker

// ErrNotFleet: the campaign service's store is not a fleet's database.
var ErrNotFleet = errors.New("not the database of a fleet (a PostgreSQL database)")

// IsFleet reports whether svc's store is a fleet's database.
func IsFleet(svc *campaign.Service) bool {
	_, ok := svc.Store().(Store)
	return ok
}

// List lists the fleet's workers at now, live and gone.
func List(ctx context.Context, svc *campaign.Service, now time.Time) ([]Info, error) {
	l, ok := svc.Store().(interface {
		Workers(ctx context.Context, at time.Time) ([]postgres.Worker, error)
	})
	if !ok {
		return nil, ErrNotFleet
	}
	return l.Workers(ctx, now)
}
