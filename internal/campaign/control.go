package campaign

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"mailout/internal/outcome"
	"mailout/internal/queue"
	"mailout/internal/route"
	"mailout/internal/scheduler"
	"mailout/internal/store"
)

// Status reasons stored by Pause and Cancel.
const (
	ReasonPaused    = "paused by the user"
	ReasonCancelled = "cancelled by the user"
)

// ErrFinal is returned by Pause and Cancel for a campaign that is done or
// cancelled already.
var ErrFinal = errors.New("the campaign is final")

var (
	errPauseRequested  = errors.New(ReasonPaused)
	errCancelRequested = errors.New(ReasonCancelled)
	// errFleetStatus: another worker of the fleet paused the campaign
	// (its breaker) or found it done.
	errFleetStatus = errors.New("the campaign's stored status changed")
	// errLeaseLost: a shared run could not renew its leases for two
	// thirds of a lease; before they end (and another worker may take
	// and send its recipients) it starts no new message.
	errLeaseLost = errors.New("the leases could not be renewed: the database is unreachable")
)

// keepLeases renews, every third of the lease until ctx ends, the leases
// of the rows this run holds, and takes back the rows of workers whose
// lease ended (they died or lost the database). A failure is logged and
// tried again at the next tick. When the leases could not be renewed for
// two thirds of a lease, stop is called with errLeaseLost: the run must
// start no new message before its leases end, or a worker that takes its
// recipients over would send them too (the scheduler stops the run by
// itself only when it fails to record, which a run that is between two
// writes does not notice).
func (s *Service) keepLeases(ctx context.Context, fleet store.Fleet, c *store.Campaign, o RunOptions, stop func(error)) {
	t := time.NewTicker(max(o.Lease/3, 10*time.Millisecond))
	defer t.Stop()
	renewed := time.Now() // the claims of the run's start are as fresh
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := o.Clock.Now()
		if _, err := fleet.RenewLeases(ctx, c.ID, s.opt.Owner, now.Add(o.Lease)); err == nil {
			renewed = time.Now()
		} else if ctx.Err() == nil {
			s.opt.Logger.Warn("could not renew the leases", "campaign", c.Name, "err", err)
			if time.Since(renewed) >= o.Lease*2/3 {
				s.opt.Logger.Error("the leases end soon and cannot be renewed: no new message is sent", "campaign", c.Name)
				stop(errLeaseLost)
				return
			}
		}
		n, err := s.st.ReleaseLeases(ctx, c.ID, now)
		if err != nil && ctx.Err() == nil {
			s.opt.Logger.Warn("could not take back expired leases", "campaign", c.Name, "err", err)
		}
		if n > 0 {
			s.opt.Logger.Warn("recipients of a worker that stopped are sent again; they may receive the message twice",
				"campaign", c.Name, "possible_duplicates", n)
		}
	}
}

// Pause pauses the campaign: its status becomes paused, and a run going on
// in this process ends as paused (StopPaused) once the messages in flight
// are finished and recorded. Resume it with Run. Safe to call from any
// goroutine while Run goes on.
func (s *Service) Pause(ctx context.Context, id int64) error {
	return s.stop(ctx, id, store.CampaignPaused, ReasonPaused, errPauseRequested)
}

// Cancel cancels the campaign: nothing more is sent to it, and a run going
// on in this process ends as cancelled (StopCancelled) once the messages
// in flight are finished and recorded. Safe to call from any goroutine
// while Run goes on.
func (s *Service) Cancel(ctx context.Context, id int64) error {
	return s.stop(ctx, id, store.CampaignCancelled, ReasonCancelled, errCancelRequested)
}

func (s *Service) stop(ctx context.Context, id int64, status store.CampaignStatus, reason string, cause error) error {
	c, err := s.st.Campaign(ctx, id)
	if err != nil {
		return err
	}
	if c.Status == store.CampaignDone || c.Status == store.CampaignCancelled {
		return fmt.Errorf("%w: %q is %s", ErrFinal, c.Name, c.Status)
	}
	if err := s.st.SetCampaignStatus(ctx, id, status, reason); err != nil {
		return err
	}
	s.mu.Lock()
	r := s.runs[id]
	s.mu.Unlock()
	if r != nil {
		r.cancel(cause)
	}
	return nil
}

// Release stores a campaign as running for the workers of a fleet to
// send, without running it here: a paused campaign's recipients deferred
// for a fault on our side become due now, as a resume makes them; a new
// or running one is left as it is. A scheduled campaign waits for its
// start time with the workers.
func (s *Service) Release(ctx context.Context, c *store.Campaign) error {
	if c.Status == store.CampaignCancelled {
		return fmt.Errorf("%w: %q is %s", ErrFinal, c.Name, c.Status)
	}
	if c.Status == store.CampaignPaused {
		settings, err := SettingsOf(c)
		if err != nil {
			return err
		}
		if _, err := s.st.DueNow(ctx, c.ID, outcome.LocalTemporary(settings.Route), time.Now()); err != nil {
			return fmt.Errorf("%w: %w", ErrStoreFailed, err)
		}
	}
	if c.Status == store.CampaignRunning {
		return nil
	}
	_, reason := toldBy(c)
	if err := s.st.SetCampaignStatus(ctx, c.ID, store.CampaignRunning, reason); err != nil {
		return fmt.Errorf("%w: %w", ErrStoreFailed, err)
	}
	return nil
}

// Owner is the name of this service's runs in leases.
func (s *Service) Owner() string { return s.opt.Owner }

// Resume runs a paused, interrupted or deferred campaign again where its
// recipients' states say: Run on the stored campaign.
func (s *Service) Resume(ctx context.Context, id int64, o RunOptions) (*Result, error) {
	c, err := s.st.Campaign(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.Run(ctx, c, o)
}

// start registers a run of campaign id in this process; Pause and Cancel
// end it through the returned context. done unregisters it.
func (s *Service) start(ctx context.Context, id int64) (context.Context, func(), error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.runs[id] != nil {
		return nil, nil, ErrLocked
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	s.runs[id] = &activeRun{cancel: cancel}
	return runCtx, func() {
		s.mu.Lock()
		delete(s.runs, id)
		s.mu.Unlock()
		cancel(nil)
	}, nil
}

// followStatus reads the stored status of campaign id, running here,
// every Poll until ctx ends: when another process sharing the database
// paused or cancelled it (Pause and Cancel store the status), the run
// here ends as if Pause or Cancel had been called in this process.
//
// In a shared run (the workers of a fleet) every status but running
// ends the run: a pause by the breaker of another worker, too.
func (s *Service) followStatus(ctx context.Context, id int64, shared bool) {
	t := time.NewTicker(s.opt.Poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c, err := s.st.Campaign(ctx, id)
		if err != nil {
			continue // a busy database: read again at the next tick
		}
		// Only a person's pause or cancel (Pause, Cancel: their reasons)
		// stops the run; a status this run stores itself as it ends (the
		// circuit breaker's pause, "interrupted") is not someone else's.
		var cause error
		switch {
		case c.Status == store.CampaignPaused && c.StatusReason == ReasonPaused:
			cause = errPauseRequested
		case c.Status == store.CampaignCancelled && c.StatusReason == ReasonCancelled:
			cause = errCancelRequested
		case shared && c.Status != store.CampaignRunning:
			cause = errFleetStatus
		default:
			continue
		}
		if ctx.Err() != nil {
			return // the run ended, or was stopped in this process
		}
		s.mu.Lock()
		r := s.runs[id]
		s.mu.Unlock()
		if r != nil {
			r.cancel(cause)
		}
		// Said once the run was told: from here no message starts.
		s.opt.Logger.Warn("the campaign was "+string(c.Status)+" from another process; finishing the messages in flight",
			"campaign", c.Name)
		return
	}
}

// Watch calls fn with the campaign's progress whenever a run of it in this
// process reports some, until stop is called. While no run of it goes on
// in this process (it may be sent by another process on the same
// database, e.g. mailout send beside the web app), Watch reads the
// campaign's stored counts every Poll and calls fn when they changed. fn
// must not block: a slow consumer (a web client) should keep only the
// latest value. fn is never called after stop returns.
func (s *Service) Watch(id int64, fn func(Progress)) (stop func()) {
	w := &watcher{fn: fn}
	s.mu.Lock()
	s.nextID++
	key := s.nextID
	if s.watchers[id] == nil {
		s.watchers[id] = map[int]*watcher{}
	}
	s.watchers[id][key] = w
	s.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		s.pollCounts(ctx, id, w)
	}()
	return func() {
		cancel()
		<-polled
		s.mu.Lock()
		delete(s.watchers[id], key)
		if len(s.watchers[id]) == 0 {
			delete(s.watchers, id)
		}
		s.mu.Unlock()
		w.mu.Lock()
		w.stopped = true
		w.mu.Unlock()
	}
}

// watcher is one Watch of a campaign.
type watcher struct {
	fn      func(Progress)
	mu      sync.Mutex // serialises calls of fn; held while it runs
	stopped bool
	last    Progress
}

func (w *watcher) send(p Progress, onlyChanges bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	if onlyChanges && sameCounts(w.last.Progress, p.Progress) {
		return
	}
	w.last = p
	w.fn(p)
}

func sameCounts(a, b scheduler.Progress) bool {
	return a.Total == b.Total && a.Delivered == b.Delivered && a.Failed == b.Failed &&
		a.Deferred == b.Deferred && a.Suppressed == b.Suppressed && a.Pending == b.Pending
}

// pollCounts reports the stored counts of campaign id to w every Poll
// while no run of it goes on in this process (whose own reports are
// fresher), until ctx ends.
func (s *Service) pollCounts(ctx context.Context, id int64, w *watcher) {
	t := time.NewTicker(s.opt.Poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		here := s.runs[id] != nil
		s.mu.Unlock()
		if here {
			continue
		}
		n, err := s.st.Counts(ctx, id)
		if err != nil {
			continue
		}
		w.send(Progress{CampaignID: id, Progress: CountsProgress(n)}, true)
	}
}

// CountsProgress is the progress that stored counts show (Sent and
// Started belong to a run and stay zero).
func CountsProgress(n *store.Counts) scheduler.Progress {
	return scheduler.Progress{
		Total: n.Total, Delivered: n.ByState[queue.Delivered], Failed: n.ByState[queue.Failed],
		Deferred: n.ByState[queue.Deferred], Suppressed: n.ByState[queue.Suppressed],
		Pending: n.ByState[queue.Pending] + n.ByState[queue.Sending],
	}
}

// progress is the scheduler's progress callback of a run of campaign id:
// it hands each report to the run's own callback and to every watcher.
func (s *Service) progress(id int64, own func(Progress)) func(scheduler.Progress) {
	return func(sp scheduler.Progress) {
		p := Progress{CampaignID: id, Progress: sp}
		if own != nil {
			own(p)
		}
		s.mu.Lock()
		ws := make([]*watcher, 0, len(s.watchers[id]))
		for _, w := range s.watchers[id] {
			ws = append(ws, w)
		}
		s.mu.Unlock()
		for _, w := range ws {
			w.send(p, false)
		}
	}
}

// Event is what a Service tells its observers (metrics) about the runs in
// this process: an attempt's outcome, or the end of a run.
type Event struct {
	CampaignID int64
	Route      route.Route
	// Attempt is set for an attempt's outcome.
	Attempt *scheduler.Attempt
	// Stop is set when a run ends; Tripped when a fault of the route
	// paused the campaign (the circuit breaker), not the user.
	Stop    Stop
	Tripped bool
}

// Observe calls fn with every event of every run in this process until
// stop is called. fn must not block: it is called on the run's goroutines.
func (s *Service) Observe(fn func(Event)) (stop func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	key := s.nextID
	s.observers[key] = fn
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.observers, key)
	}
}

func (s *Service) emit(ev Event) {
	s.mu.Lock()
	fns := make([]func(Event), 0, len(s.observers))
	for _, fn := range s.observers {
		fns = append(fns, fn)
	}
	s.mu.Unlock()
	for _, fn := range fns {
		fn(ev)
	}
}

// attempt is the scheduler's attempt callback of a run of campaign id.
func (s *Service) attempt(id int64, r route.Route) func(scheduler.Attempt) {
	return func(a scheduler.Attempt) {
		s.emit(Event{CampaignID: id, Route: r, Attempt: &a})
	}
}
