package campaign

import (
	"context"
	"errors"
	"fmt"

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
)

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

// Watch calls fn with the campaign's progress whenever a run of it in this
// process reports some, until stop is called. fn must not block: a slow
// consumer (a web client) should keep only the latest value.
func (s *Service) Watch(id int64, fn func(Progress)) (stop func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	key := s.nextID
	if s.watchers[id] == nil {
		s.watchers[id] = map[int]func(Progress){}
	}
	s.watchers[id][key] = fn
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.watchers[id], key)
		if len(s.watchers[id]) == 0 {
			delete(s.watchers, id)
		}
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
		fns := make([]func(Progress), 0, len(s.watchers[id]))
		for _, fn := range s.watchers[id] {
			fns = append(fns, fn)
		}
		s.mu.Unlock()
		for _, fn := range fns {
			fn(p)
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
