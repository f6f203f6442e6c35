package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"mailout/internal/campaign"
	"mailout/internal/queue"
	"mailout/internal/route"
	"mailout/internal/store"
	"mailout/internal/throttle"
)

// ErrRunningElsewhere: the campaign is being sent by another process on
// the same database (mailout send, another server); pause or cancel it
// from here, but it cannot be started twice.
var ErrRunningElsewhere = errors.New("the campaign is being sent by another process")

// ErrNotStartable: the campaign is done or cancelled.
var ErrNotStartable = errors.New("the campaign is done or cancelled")

// Runner runs campaigns in this process, each in its own goroutine, and
// stops them cleanly on Shutdown.
type Runner struct {
	ctx     context.Context
	cancel  context.CancelFunc
	svc     *campaign.Service
	log     *slog.Logger
	mu      sync.Mutex
	running map[int64]bool
	last    map[int64]campaign.Progress
	wg      sync.WaitGroup
	// Clock tells when a scheduled campaign is due and is the runs'
	// clock; nil is the wall clock. Set it before the runner is used.
	Clock throttle.Clock
	// Fleet: the campaigns are sent by the workers of a fleet (mailout
	// worker, serve's own worker), never by the runner: Start stores the
	// campaign as running for them (campaign.Service.Release), and
	// ResumeInterrupted and StartDue leave the interrupted and scheduled
	// campaigns to them. Set it before the runner is used.
	Fleet bool
}

// ScheduleCheck is how often serve looks for scheduled campaigns whose
// start time has come (WatchScheduled).
const ScheduleCheck = 5 * time.Second

func (r *Runner) clock() throttle.Clock {
	if r.Clock == nil {
		return throttle.RealClock()
	}
	return r.Clock
}

// NewRunner returns a runner of svc's campaigns; ctx bounds every run.
func NewRunner(ctx context.Context, svc *campaign.Service, log *slog.Logger) *Runner {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(ctx)
	return &Runner{ctx: ctx, cancel: cancel, svc: svc, log: log, running: map[int64]bool{}, last: map[int64]campaign.Progress{}}
}

// Running reports whether the campaign is being sent by this process.
func (r *Runner) Running(id int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.running[id]
}

// Progress is the last progress of the campaign's run in this process.
func (r *Runner) Progress(id int64) (campaign.Progress, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.last[id]
	return p, ok
}

// Start sends the campaign in the background: a new campaign, one paused
// (by the user, a fault of its route or a shutdown) or one whose run was
// interrupted. It returns at once.
func (r *Runner) Start(ctx context.Context, id int64) error {
	c, err := r.svc.Store().Campaign(ctx, id)
	if err != nil {
		return err
	}
	if c.Status == store.CampaignDone {
		// Done, unless failed recipients were requeued since.
		n, err := r.svc.Store().Counts(ctx, id)
		if err != nil {
			return err
		}
		if n.ByState[queue.Pending]+n.ByState[queue.Deferred] == 0 {
			return fmt.Errorf("%w: %q is %s", ErrNotStartable, c.Name, c.Status)
		}
	}
	switch {
	case c.Status == store.CampaignCancelled:
		return fmt.Errorf("%w: %q is %s", ErrNotStartable, c.Name, c.Status)
	case r.Fleet:
		return r.svc.Release(ctx, c)
	case r.Running(id):
		return nil
	case c.Status == store.CampaignRunning && !r.svc.Interrupted(c):
		return fmt.Errorf("%w: %q", ErrRunningElsewhere, c.Name)
	}
	r.mu.Lock()
	if r.running[id] || r.ctx.Err() != nil {
		r.mu.Unlock()
		return nil
	}
	r.running[id] = true
	r.wg.Add(1)
	r.mu.Unlock()
	go r.run(id, profileOf(c))
	return nil
}

// run sends campaign id until it is done, paused, cancelled or the runner
// stops; while only deferred recipients remain it waits for the first to
// be due.
func (r *Runner) run(id int64, p throttle.Profile) {
	defer func() {
		r.mu.Lock()
		delete(r.running, id)
		delete(r.last, id)
		r.mu.Unlock()
		r.wg.Done()
	}()
	for {
		res, err := r.svc.Resume(r.ctx, id, campaign.RunOptions{Profile: p, Clock: r.Clock, Progress: func(p campaign.Progress) {
			r.mu.Lock()
			r.last[id] = p
			r.mu.Unlock()
		}})
		if err != nil {
			r.log.Error("campaign run failed", "campaign", id, "err", err)
			return
		}
		if !res.ScheduledFor.IsZero() {
			// Not yet: WatchScheduled starts it when its time comes.
			r.log.Info("campaign waits for its start time", "campaign", id, "start_at", res.ScheduledFor)
			return
		}
		if res.Stop != campaign.StopDeferred {
			r.log.Info("campaign run ended", "campaign", id, "stop", res.Stop, "reason", res.Reason)
			return
		}
		wait := time.Minute
		if res.Counts != nil && !res.Counts.NextDue.IsZero() {
			wait = max(time.Until(res.Counts.NextDue), time.Second)
		}
		t := time.NewTimer(wait)
		select {
		case <-r.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// Wait waits until no campaign is being sent by this runner.
func (r *Runner) Wait() { r.wg.Wait() }

// ResumeInterrupted starts the campaigns stored as running whose run is
// gone (the process was killed or the machine stopped).
func (r *Runner) ResumeInterrupted(ctx context.Context) (int, error) {
	if r.Fleet {
		return 0, nil
	}
	cs, err := r.svc.Store().Campaigns(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for i := range cs {
		if cs[i].Status == store.CampaignRunning && !campaign.Scheduled(&cs[i], r.clock().Now()) && r.svc.Interrupted(&cs[i]) {
			if err := r.Start(ctx, cs[i].ID); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// WatchScheduled starts, at every tick until the runner stops, the
// scheduled campaigns whose start time has come and that no process sends
// (StartDue). serve ticks it every ScheduleCheck.
func (r *Runner) WatchScheduled(tick <-chan time.Time) {
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-tick:
			if _, err := r.StartDue(r.ctx); err != nil && r.ctx.Err() == nil {
				r.log.Warn("starting scheduled campaigns", "err", err)
			}
		}
	}
}

// StartDue starts the scheduled campaigns (status running, with a start
// time) whose start time has come on the runner's clock and that no
// process, this one or another on the same database, is sending. It
// returns how many it started.
func (r *Runner) StartDue(ctx context.Context) (int, error) {
	if r.Fleet {
		return 0, nil
	}
	cs, err := r.svc.Store().Campaigns(ctx)
	if err != nil {
		return 0, err
	}
	now, n := r.clock().Now(), 0
	for i := range cs {
		c := &cs[i]
		if c.Status != store.CampaignRunning || c.StartAt.IsZero() || campaign.Scheduled(c, now) ||
			r.Running(c.ID) || !r.svc.Interrupted(c) {
			continue
		}
		if err := r.Start(ctx, c.ID); err != nil {
			if errors.Is(err, ErrRunningElsewhere) {
				continue // another process took it meanwhile
			}
			return n, err
		}
		r.log.Info("scheduled campaign started", "campaign", c.Name, "start_at", c.StartAt)
		n++
	}
	return n, nil
}

// PauseAll pauses every campaign this process is sending: each run stops
// starting messages at once and ends after the ones in flight are
// recorded. It does not wait for that (Shutdown does).
func (r *Runner) PauseAll(ctx context.Context) {
	r.mu.Lock()
	ids := make([]int64, 0, len(r.running))
	for id := range r.running {
		ids = append(ids, id)
	}
	r.mu.Unlock()
	for _, id := range ids {
		if err := r.svc.Pause(ctx, id); err != nil && !errors.Is(err, campaign.ErrFinal) {
			r.log.Warn("pause at shutdown", "campaign", id, "err", err)
		}
	}
}

// Shutdown pauses every campaign this process is sending (Pause: the
// messages in flight are finished and recorded, nothing is lost; resume
// continues) and waits for the runs to end, or for ctx; then the runs
// still going are interrupted, which also records what was in flight.
func (r *Runner) Shutdown(ctx context.Context) error {
	r.PauseAll(ctx)
	done := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		r.cancel()
		return nil
	case <-ctx.Done():
		r.cancel()
		<-done
		return ctx.Err()
	}
}

// sandboxProfile is how fast the sandbox route keeps messages: nothing
// leaves the machine, so no rate; the connections only bound how many are
// rendered at once. The command line's send uses the same.
var sandboxProfile = throttle.Profile{Name: "sandbox", Connections: 4}

// profileOf is the campaign's stored speed profile (the sandbox runs
// unthrottled).
func profileOf(c *store.Campaign) throttle.Profile {
	if campaign.RouteOf(c) == route.Sandbox {
		return sandboxProfile
	}
	var p throttle.Profile
	if len(c.Profile) == 0 || json.Unmarshal(c.Profile, &p) != nil || p.Validate() != nil {
		p, _ = throttle.Lookup("normal")
	}
	return p
}
