// Package scheduler runs a campaign: it claims due deliveries from the store
// in batches with a lease, asks the throttle when each may start, has each
// message rendered and handed to the transport, classifies nothing itself
// (the transport returns an outcome.Result) and records every outcome through
// the queue's transition rules, in batches.
//
// Place in the flow: store.Claim -> render -> throttle -> transport.Deliver
// -> queue.Policy.Next -> store.Record.
//
// Durability (at least once, never lost): a row is claimed — attempts
// incremented, leased — in a committed transaction before it is attempted,
// so a crash never loses a recipient; results are written in small batches,
// so a crash re-sends at most the messages in flight (one per connection:
// a pipelined group hands each result over as it comes) plus the results
// not yet flushed (two Config.RecordBatch), and those rows come back flagged
// as possible duplicates with their deterministic Message-ID unchanged.
package scheduler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"mailout/internal/outcome"
	"mailout/internal/queue"
	"mailout/internal/store"
	"mailout/internal/throttle"
	"mailout/internal/transport"
)

// RenderFunc builds the message for one delivery. buf may be reused by the
// caller after the transport returns.
type RenderFunc func(d *store.Delivery, buf *bytes.Buffer) (*transport.Message, error)

// Config is everything one run of a campaign needs.
type Config struct {
	Store     store.Store
	Campaign  *store.Campaign
	Transport transport.Transport
	Render    RenderFunc
	Profile   throttle.Profile
	Clock     throttle.Clock
	Policy    queue.Policy
	// Owner names this runner in leases (host:pid:random).
	Owner string
	// Lease is how long a claimed row stays ours; default 10 minutes.
	Lease time.Duration
	// ClaimBatch is the most rows claimed at once; default 256.
	ClaimBatch int
	// RecordBatch is the most results buffered before they are written;
	// default 64. It bounds the duplicates a crash can cause.
	RecordBatch int
	// SendBatch is the most messages one connection sends back to back in
	// a pipelined group when the transport is a transport.Batcher; default
	// 32, 1 switches it off. A group also stops at 1 MiB of messages. Each
	// result is recorded as soon as it is known, so the group's size does
	// not widen what a crash can re-send (one message per connection).
	SendBatch int
	// RecordEvery flushes buffered results at least this often; default 100ms.
	RecordEvery time.Duration
	// Wait is how long Run stays while only deferred recipients are left
	// (0: return as soon as nothing is due).
	Wait time.Duration
	// Breaker stops a campaign that can deliver nothing; zero value = on
	// with defaults.
	Breaker BreakerConfig
	// ShutdownTimeout bounds how long in-flight deliveries may take to
	// finish after ctx is cancelled; default 10 minutes (the RFC 5321
	// §4.5.3.2.6 DATA termination timeout, so a slow final 250 still counts).
	ShutdownTimeout time.Duration
	Logger          *slog.Logger
	// Progress, when set, is called after every flush with the counts so far.
	Progress func(Progress)
}

// BreakerConfig is the self-diagnosing part of a run (what mailout doctor
// diagnoses on request, a running campaign notices on its own): when
// the first attempts all end in faults on our side, the campaign is paused
// instead of marking the list failed.
type BreakerConfig struct {
	Disabled bool
	// FirstAttempts: pause when this many first attempts (default 10, or all
	// recipients when fewer) all end in local-fault classes.
	FirstAttempts int
	// MinDomains: the failing attempts must span at least this many
	// recipient domains (direct route: 2, so that one broken domain does
	// not look like a blocked port 25), unless the campaign has fewer.
	MinDomains int
	// Window and WindowRate: pause when at least WindowRate of the last
	// Window attempts end in local faults (defaults 50 and 0.9).
	Window     int
	WindowRate float64
}

// Progress is a snapshot for progress displays.
type Progress struct {
	Total, Delivered, Failed, Deferred, Suppressed, Pending int
	Sent                                                    int // attempts finished in this run
	Started                                                 time.Time
}

// StopReason says why Run returned.
type StopReason string

const (
	StopDone        StopReason = "done"        // every delivery is final
	StopDeferred    StopReason = "deferred"    // only deferred rows remain, due after Wait
	StopInterrupted StopReason = "interrupted" // ctx cancelled (signal)
	StopPaused      StopReason = "paused"      // a fault of the route stopped the run
)

// Result of one Run.
type Result struct {
	Stop StopReason
	// Reason is the pause reason (the outcome that stopped the run).
	Reason string
	// PauseResult is the outcome that caused a pause, if any.
	PauseResult *outcome.Result
	Counts      *store.Counts
	Attempts    int
}

// ErrStoreFailed wraps a store error that stopped the run: nothing more is
// sent when its outcome cannot be recorded.
var ErrStoreFailed = errors.New("store failed")

// RecordError is returned when results could not be recorded (disk full, a
// failed commit). From the first failure on no new message started; the
// messages in flight were finished and their results retried. Unrecorded
// is how many results were still not recorded when the run ended: those
// recipients may have received the message, and the next run sends to
// them again, flagged as possible duplicates. It matches ErrStoreFailed.
type RecordError struct {
	Err        error
	Unrecorded int
}

func (e *RecordError) Error() string { return "could not record results: " + e.Err.Error() }

func (e *RecordError) Unwrap() []error { return []error{ErrStoreFailed, e.Err} }

// recordTimeout bounds one Record call. Results are recorded under a
// context detached from the run's cancellation (a pause or a signal must
// not turn a write in progress into a database failure); this timeout is
// what keeps a hung database from holding the run forever.
const recordTimeout = time.Minute

// recordTries is how often the last flush of a run tries a failing Record
// before it gives up, with a growing pause (0.2 s, 0.4 s, … in all 2 s).
const recordTries = 5

func (c *Config) defaults() {
	if c.Lease <= 0 {
		c.Lease = 10 * time.Minute
	}
	if c.ClaimBatch <= 0 {
		c.ClaimBatch = 256
	}
	if c.RecordBatch <= 0 {
		c.RecordBatch = 64
	}
	if c.SendBatch <= 0 {
		c.SendBatch = 32
	}
	if c.RecordEvery <= 0 {
		c.RecordEvery = 100 * time.Millisecond
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 10 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Breaker.FirstAttempts <= 0 {
		c.Breaker.FirstAttempts = 10
	}
	if c.Breaker.Window <= 0 {
		c.Breaker.Window = 50
	}
	if c.Breaker.WindowRate <= 0 || c.Breaker.WindowRate > 1 {
		c.Breaker.WindowRate = 0.9
	}
}

type job struct {
	d *store.Delivery
}

// run is the state of one Run call.
type run struct {
	cfg     Config
	limiter *throttle.Limiter
	started time.Time

	mu sync.Mutex
	// drained is signalled (on mu) when pending was taken for writing.
	drained  *sync.Cond
	pending  []store.AttemptResult
	storeErr error
	// recordErr is the first Record failure (also in storeErr).
	recordErr error
	pause     *outcome.Result
	attempts  int
	breaker   *breaker // guarded by mu
	flushKick chan struct{}
	// base is the run's context detached from its cancellation: results
	// are recorded under it. halt stops every new claim and send.
	base    context.Context
	halt    context.CancelFunc
	flushMu sync.Mutex
	// lastProgress and progressEvery are guarded by flushMu.
	lastProgress  time.Time
	progressEvery time.Duration
	// total is the campaign's size when the run started.
	total int
	sent  atomic.Int64

	// inflight counts jobs handed to workers and not yet finished; idle is
	// poked when it drops to zero.
	inflight atomic.Int64
	idle     chan struct{}
}

// Run sends the campaign until every delivery is final, only deferred ones
// are left beyond cfg.Wait, ctx is cancelled, or a route fault pauses it.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg.defaults()
	r := &run{
		cfg:       cfg,
		limiter:   throttle.New(cfg.Profile, cfg.Clock),
		started:   cfg.Clock.Now(),
		flushKick: make(chan struct{}, 1),
		idle:      make(chan struct{}, 1),
	}
	r.drained = sync.NewCond(&r.mu)
	return r.run(ctx)
}

func (r *run) run(parent context.Context) (*Result, error) {
	cfg := r.cfg
	c := cfg.Campaign
	// stop ends the claiming; in-flight deliveries go on under sendCtx,
	// which ends only after ShutdownTimeout once parent is done.
	stopCtx, stop := context.WithCancel(parent)
	defer stop()
	r.base, r.halt = context.WithoutCancel(parent), stop
	sendCtx, cancelSend := context.WithCancel(context.WithoutCancel(parent))
	defer cancelSend()
	go func() {
		select {
		case <-parent.Done():
			t := time.NewTimer(cfg.ShutdownTimeout)
			defer t.Stop()
			select {
			case <-t.C:
				cancelSend()
			case <-sendCtx.Done():
			}
		case <-sendCtx.Done():
		}
	}()

	counts, err := cfg.Store.Counts(parent, c.ID)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStoreFailed, err)
	}
	r.total = counts.ByState[queue.Pending] + counts.ByState[queue.Deferred] + counts.ByState[queue.Sending]
	r.breaker = newBreaker(cfg.Breaker, r.total)
	if cfg.Progress != nil {
		cfg.Progress(r.progress(counts))
	}

	workers := max(cfg.Profile.Connections, 1)
	// The queue holds a whole claim, so the next claim (a write transaction
	// of a few milliseconds) runs while the workers send the previous one
	// instead of leaving them idle.
	jobs := make(chan job, max(workers, r.claimSize()))
	group := 1
	if _, ok := cfg.Transport.(transport.Batcher); ok {
		group = cfg.SendBatch
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &worker{r: r, bufs: make([]bytes.Buffer, group)}
			w.loop(stopCtx, sendCtx, stop, jobs)
		}()
	}

	flushDone := make(chan struct{})
	flushStop := make(chan struct{})
	go func() {
		defer close(flushDone)
		t := time.NewTicker(cfg.RecordEvery)
		defer t.Stop()
		for {
			select {
			case <-flushStop:
				return
			case <-t.C:
			case <-r.flushKick:
			}
			select {
			case <-flushStop:
				return // the final flush below writes what is left
			default:
			}
			// One try: a failure halts the run, and the final flush
			// retries once the messages in flight have finished.
			_ = r.flush(1)
		}
	}()

	claimErr := r.claimLoop(stopCtx, jobs)
	close(jobs)
	wg.Wait()
	close(flushStop)
	<-flushDone
	ferr := r.flush(recordTries)

	res := &Result{Attempts: r.attempts}
	bg := context.WithoutCancel(parent)
	counts, cerr := cfg.Store.Counts(bg, c.ID)
	res.Counts = counts
	if cfg.Progress != nil && cerr == nil {
		cfg.Progress(r.progress(counts))
	}

	r.mu.Lock()
	storeErr, recordErr, pause := r.storeErr, r.recordErr, r.pause
	unrecorded := 0
	for _, ar := range r.pending {
		if !ar.Refund {
			unrecorded++
		}
	}
	r.mu.Unlock()
	switch {
	case recordErr != nil:
		return res, &RecordError{Err: recordErr, Unrecorded: unrecorded}
	case storeErr != nil || ferr != nil:
		err := storeErr
		if err == nil {
			err = ferr
		}
		return res, fmt.Errorf("%w: %w", ErrStoreFailed, err)
	case claimErr != nil && !errors.Is(claimErr, context.Canceled):
		return res, claimErr
	case cerr != nil:
		return res, cerr
	case pause != nil:
		res.Stop = StopPaused
		res.PauseResult = pause
		res.Reason = pauseReason(pause)
		if err := cfg.Store.SetCampaignStatus(bg, c.ID, store.CampaignPaused, res.Reason); err != nil {
			return res, err
		}
	case parent.Err() != nil:
		res.Stop = StopInterrupted
		res.Reason = "interrupted"
		if err := cfg.Store.SetCampaignStatus(bg, c.ID, store.CampaignPaused, "interrupted"); err != nil {
			return res, err
		}
	case counts.ByState[queue.Pending]+counts.ByState[queue.Deferred]+counts.ByState[queue.Sending] == 0:
		res.Stop = StopDone
		if err := cfg.Store.SetCampaignStatus(bg, c.ID, store.CampaignDone, ""); err != nil {
			return res, err
		}
	default:
		res.Stop = StopDeferred
	}
	return res, nil
}

func pauseReason(p *outcome.Result) string {
	s := string(p.Class)
	if p.Code != 0 {
		s += fmt.Sprintf(": %d", p.Code)
		if p.Enhanced != "" {
			s += " " + p.Enhanced
		}
		if p.Text != "" {
			s += " " + p.Text
		}
	} else if p.Text != "" {
		s += ": " + p.Text
	}
	if p.Host != "" {
		s += " (" + p.Host + ")"
	}
	return s
}

// claimLoop feeds jobs until nothing is due within the wait, or ctx ends.
func (r *run) claimLoop(ctx context.Context, jobs chan<- job) error {
	cfg := r.cfg
	var deadline time.Time
	if cfg.Wait > 0 {
		deadline = r.started.Add(cfg.Wait)
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		now := cfg.Clock.Now()
		batch, err := cfg.Store.Claim(ctx, cfg.Campaign.ID, cfg.Owner, now, cfg.Lease, r.claimSize())
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r.setStoreErr(err)
			return fmt.Errorf("%w: %w", ErrStoreFailed, err)
		}
		// A row released by a crash of an earlier run comes alone (see
		// store.Store.Claim): it is sent by itself and its result recorded
		// before anything else is claimed, so that if it crashes the
		// process again no other recipient has a crash counted with it.
		suspect := len(batch) == 1 && batch[0].Crashes > 0
		for i := range batch {
			r.inflight.Add(1)
			select {
			case jobs <- job{d: &batch[i]}:
			case <-ctx.Done():
				r.inflight.Add(-1)
				// Give back what was claimed but never handed out.
				for j := range batch[i:] {
					r.add(refund(&batch[i+j], now))
				}
				return ctx.Err()
			}
		}
		if suspect {
			if err := r.drain(ctx); err != nil {
				return err
			}
			if err := r.flush(1); err != nil {
				return err
			}
		}
		if len(batch) > 0 {
			continue
		}
		// Nothing due now: wait until in-flight results are recorded, then
		// look at what is left.
		if err := r.drain(ctx); err != nil {
			return err
		}
		if err := r.flush(1); err != nil {
			return err
		}
		counts, err := cfg.Store.Counts(ctx, cfg.Campaign.ID)
		if err != nil {
			if ctx.Err() != nil {
				// Stopped (pause, signal) while counting: not a store failure.
				return ctx.Err()
			}
			r.setStoreErr(err)
			return fmt.Errorf("%w: %w", ErrStoreFailed, err)
		}
		open := counts.ByState[queue.Pending] + counts.ByState[queue.Deferred]
		if open == 0 && counts.ByState[queue.Sending] == 0 {
			return nil
		}
		if open == 0 {
			// Rows still sending under someone else's lease: look again
			// when the first could expire.
			return nil
		}
		next := counts.NextDue
		if next.IsZero() || deadline.IsZero() || next.After(deadline) {
			return nil
		}
		if err := cfg.Clock.Sleep(ctx, next.Sub(cfg.Clock.Now())); err != nil {
			return err
		}
	}
}

// drain waits until every handed-out job has been attempted.
func (r *run) drain(ctx context.Context) error {
	for r.inflight.Load() > 0 {
		select {
		case <-r.idle:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func refund(d *store.Delivery, now time.Time) store.AttemptResult {
	return store.AttemptResult{DeliveryID: d.ID, Attempt: d.Attempts, State: queue.Pending,
		NextAt: now, Refund: true, MessageID: d.MessageID, At: now}
}

// claimSize keeps a claim small enough to be sent well within the lease at
// the profile's rate.
func (r *run) claimSize() int {
	n := r.cfg.ClaimBatch
	if rate := r.cfg.Profile.Rate; rate > 0 {
		n = min(n, max(1, int(rate*r.cfg.Lease.Seconds()/4)))
	}
	return n
}

// worker sends the jobs of one connection's worth of concurrency: one
// message at a time, or with a Batcher transport a group of up to
// len(bufs) messages on one session.
type worker struct {
	r     *run
	bufs  []bytes.Buffer // one per message of a group, reused
	carry *job           // taken from the queue but not allowed into the last group
	ds    []*store.Delivery
	msgs  []*transport.Message
	size  int // bytes of msgs
	// reported[k]: msgs[k]'s result was recorded during DeliverBatch.
	reported []bool
}

// maxGroupBytes stops a group from growing once its messages hold this
// much: the rendered messages of a group are in memory at once (a list
// with a large attachment sends one message per group).
const maxGroupBytes = 1 << 20

func (w *worker) loop(stopCtx, sendCtx context.Context, stop context.CancelFunc, jobs <-chan job) {
	r := w.r
	for {
		var first job
		if w.carry != nil {
			first, w.carry = *w.carry, nil
		} else {
			j, ok := <-jobs
			if !ok {
				return
			}
			first = j
		}
		n := w.sendGroup(stopCtx, sendCtx, stop, first, jobs)
		if r.inflight.Add(-int64(n)) == 0 {
			select {
			case r.idle <- struct{}{}:
			default:
			}
		}
	}
}

// sendGroup makes one attempt for first and, when the transport batches,
// for more queued jobs that the profile lets start at once (Limiter.Allow:
// a paced profile never turns into bursts); all of them go out on one
// session. It returns how many jobs it finished (a job it could not add is
// kept in w.carry for the next group).
func (w *worker) sendGroup(stopCtx, sendCtx context.Context, stop context.CancelFunc, first job, jobs <-chan job) int {
	r, cfg := w.r, w.r.cfg
	w.ds, w.msgs, w.size = w.ds[:0], w.msgs[:0], 0
	done := 1
	if stopCtx.Err() != nil {
		// Claimed but never started: give the attempt back.
		r.add(refund(first.d, cfg.Clock.Now()))
		return done
	}
	if err := r.limiter.Wait(stopCtx, first.d.Domain); err != nil {
		r.add(refund(first.d, cfg.Clock.Now()))
		return done
	}
	w.prepare(first.d)
fill:
	for done < len(w.bufs) && w.size < maxGroupBytes {
		var j job
		select {
		case x, ok := <-jobs:
			if !ok {
				break fill
			}
			j = x
		default:
			break fill
		}
		if stopCtx.Err() != nil || !r.limiter.Allow(j.d.Domain) {
			w.carry = &j
			break
		}
		done++
		w.prepare(j.d)
	}
	if len(w.msgs) == 0 {
		return done
	}
	release, err := r.acquireDomains(stopCtx, w.ds)
	if err != nil {
		for _, d := range w.ds {
			r.add(refund(d, cfg.Clock.Now()))
		}
		return done
	}
	if b, ok := cfg.Transport.(transport.Batcher); ok && len(w.msgs) > 1 {
		// Each result is recorded as it comes, while the rest of the group
		// is still on the wire: a crash leaves at most the message in
		// progress sent and not recorded, however large the group.
		w.reported = append(w.reported[:0], make([]bool, len(w.msgs))...)
		// Once results can no longer be recorded, the rest of the group is
		// not sent: the group's context is cancelled between two messages.
		gctx, cut := context.WithCancel(sendCtx)
		var cutMu sync.Mutex
		cutDone := false
		report := func(k int, res transport.Result) {
			cutMu.Lock()
			defer cutMu.Unlock()
			if w.reported[k] {
				return
			}
			w.reported[k] = true
			if cutDone && !res.IsDelivered() && !res.Ambiguous {
				// Not started, or stopped before the end of its data:
				// nobody received it, the attempt is given back.
				r.add(refund(w.ds[k], cfg.Clock.Now()))
				return
			}
			r.finish(stop, w.ds[k], res)
			if !cutDone && r.recordFailed() {
				cutDone = true
				cut()
			}
		}
		results := b.DeliverBatch(gctx, w.msgs, report)
		// The contract is one report per message; one the transport did
		// not report is recorded now from the returned results rather
		// than left leased until the next run.
		for k := range w.reported {
			report(k, results[k])
		}
		cut()
	} else {
		r.finish(stop, w.ds[0], cfg.Transport.Deliver(sendCtx, w.msgs[0]))
	}
	release()
	return done
}

// prepare renders d into the next buffer and queues it for sending; a
// message that cannot be built fails that recipient at once.
func (w *worker) prepare(d *store.Delivery) {
	buf := &w.bufs[len(w.msgs)]
	buf.Reset()
	msg, err := w.r.render(d, buf)
	if err != nil {
		w.r.finish(nil, d, transport.Result{Via: "render", Result: outcome.Result{
			Class: outcome.RenderFailed, Kind: outcome.KindPermanent, Step: outcome.StepRender,
			Text: err.Error(), Reason: "the message could not be built for this recipient"}})
		return
	}
	if d.MessageID == "" {
		d.MessageID = msg.MessageID
	}
	w.ds = append(w.ds, d)
	w.msgs = append(w.msgs, msg)
	w.size += len(msg.Data)
}

// acquireDomains takes one DomainConnections slot for each distinct domain
// of ds, in sorted order: every worker takes them in the same order, so two
// groups waiting for each other's domains cannot deadlock.
func (r *run) acquireDomains(ctx context.Context, ds []*store.Delivery) (release func(), err error) {
	if len(ds) == 1 {
		return r.limiter.AcquireDomain(ctx, ds[0].Domain)
	}
	domains := make([]string, 0, len(ds))
	for _, d := range ds {
		domains = append(domains, d.Domain)
	}
	slices.Sort(domains)
	domains = slices.Compact(domains)
	releases := make([]func(), 0, len(domains))
	release = func() {
		for _, f := range releases {
			f()
		}
	}
	for _, dom := range domains {
		f, err := r.limiter.AcquireDomain(ctx, dom)
		if err != nil {
			release()
			return nil, err
		}
		releases = append(releases, f)
	}
	return release, nil
}

// finish classifies the transition of one attempt, buffers its result and
// feeds the breaker; stop (nil for a render failure) pauses the run.
func (r *run) finish(stop context.CancelFunc, d *store.Delivery, res transport.Result) {
	cfg := r.cfg
	now := cfg.Clock.Now()
	if res.Class == outcome.RateLimited {
		r.limiter.SlowDown(d.Domain)
	}
	tr := cfg.Policy.Next(res.Result, d.Attempts, cfg.Campaign.CreatedAt, now, rand.Float64())
	ar := store.AttemptResult{
		DeliveryID: d.ID, Attempt: d.Attempts, State: tr.State, NextAt: tr.NextAt,
		Class: res.Class, Step: res.Step, Code: res.Code, Enhanced: res.Enhanced,
		Text: res.Text, Host: res.Host, Via: res.Via, MessageID: d.MessageID,
		PossibleDuplicate: res.Ambiguous, At: now,
	}
	// A hard bounce (the mailbox does not exist) puts the address on the
	// suppression list when it is recorded; a full mailbox, a policy or
	// content refusal and the faults of the route or account do not.
	ar.Suppress = tr.State == queue.Failed && res.Class == outcome.RecipientUnknown
	if tr.State == queue.Failed && res.Kind == outcome.KindTemporary && tr.Reason != "" {
		ar.Text = tr.Reason + ": " + ar.Text
	}
	// Checked first: boxing the attributes costs allocations per message
	// even when debug logging is off.
	if cfg.Logger.Enabled(context.Background(), slog.LevelDebug) {
		cfg.Logger.Debug("attempt", "campaign", cfg.Campaign.Name, "delivery", d.ID, "rcpt_domain", d.Domain,
			"class", res.Class, "smtp_code", res.Code, "host", res.Host, "state", tr.State)
	}
	r.add(ar)

	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts++
	if stop == nil {
		return
	}
	if res.Kind == outcome.KindPermanentForRun && r.pause == nil {
		p := res.Result
		r.pause = &p
		stop()
	}
	if why := r.breaker.observe(res.LocalFault, d.Domain); why != "" && r.pause == nil {
		p := res.Result
		p.Reason = why + ": " + p.Reason
		r.pause = &p
		stop()
	}
}

// render builds one message. A panic while rendering (a bug met by one
// recipient's data) fails that recipient instead of the process: a process
// that died on the same message at every start would never get past it.
func (r *run) render(d *store.Delivery, buf *bytes.Buffer) (msg *transport.Message, err error) {
	defer func() {
		if p := recover(); p != nil {
			r.cfg.Logger.Error("rendering crashed; this recipient is failed and the campaign goes on",
				"campaign", r.cfg.Campaign.Name, "delivery", d.ID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			msg, err = nil, fmt.Errorf("internal error while building the message (please report it): %v", p)
		}
	}()
	return r.cfg.Render(d, buf)
}

// add buffers one result and asks for a flush when the batch is full. While
// a full batch waits to be written, add blocks: the results not yet
// recorded never exceed two batches (one being written, one filling), which
// bounds what a crash can send twice.
func (r *run) add(ar store.AttemptResult) {
	r.mu.Lock()
	for len(r.pending) >= r.cfg.RecordBatch && r.storeErr == nil {
		select {
		case r.flushKick <- struct{}{}:
		default:
		}
		r.drained.Wait()
	}
	r.pending = append(r.pending, ar)
	full := len(r.pending) >= r.cfg.RecordBatch
	r.mu.Unlock()
	if full {
		select {
		case r.flushKick <- struct{}{}:
		default:
		}
	}
}

// flush writes the buffered results under the run's detached context: a
// pause or a signal that arrives while a batch is being written lets the
// write finish, so it neither loses the results nor reports a database
// failure. A store failure halts the run at once (no new message starts),
// keeps the results buffered for the next flush; the last one of the run
// tries them several times. The messages sent but not recorded are at
// most those in flight when the store failed.
func (r *run) flush(tries int) error {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	r.mu.Lock()
	batch := r.pending
	r.pending = nil
	r.drained.Broadcast()
	r.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	var err error
	for try := 0; try < tries; try++ {
		if try > 0 {
			if serr := r.cfg.Clock.Sleep(r.base, time.Duration(try)*200*time.Millisecond); serr != nil {
				break
			}
		}
		ctx, cancel := context.WithTimeout(r.base, recordTimeout)
		_, err = r.cfg.Store.Record(ctx, batch)
		cancel()
		if err == nil {
			break
		}
		if r.setRecordErr(err) {
			r.cfg.Logger.Error("recording results failed: no new message is sent; the messages in flight finish", "campaign", r.cfg.Campaign.Name, "err", err, "results", len(batch))
		} else {
			r.cfg.Logger.Warn("recording results failed; retrying", "campaign", r.cfg.Campaign.Name, "err", err, "results", len(batch))
		}
	}
	if err != nil {
		r.mu.Lock()
		r.pending = append(batch, r.pending...)
		r.mu.Unlock()
		return err
	}
	r.sent.Add(int64(len(batch)))
	// Counting is a scan of the campaign: at most once a second, and at
	// most 2% of the time (on a million rows a count takes about 100 ms).
	if now := r.cfg.Clock.Now(); r.cfg.Progress != nil && now.Sub(r.lastProgress) >= max(time.Second, r.progressEvery) {
		r.lastProgress = now
		start := time.Now()
		counts, cerr := r.cfg.Store.Counts(r.base, r.cfg.Campaign.ID)
		r.progressEvery = 50 * time.Since(start)
		if cerr == nil {
			r.cfg.Progress(r.progress(counts))
		}
	}
	return nil
}

func (r *run) progress(c *store.Counts) Progress {
	return Progress{
		Total: c.Total, Delivered: c.ByState[queue.Delivered], Failed: c.ByState[queue.Failed],
		Deferred: c.ByState[queue.Deferred], Suppressed: c.ByState[queue.Suppressed],
		Pending: c.ByState[queue.Pending] + c.ByState[queue.Sending],
		Sent:    int(r.sent.Load()), Started: r.started,
	}
}

// recordFailed reports whether a Record has failed in this run.
func (r *run) recordFailed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.recordErr != nil
}

// setRecordErr notes a Record failure and halts the run; it reports
// whether this was the first one.
func (r *run) setRecordErr(err error) bool {
	r.mu.Lock()
	first := r.recordErr == nil
	if first {
		r.recordErr = err
	}
	if r.storeErr == nil {
		r.storeErr = err
	}
	r.drained.Broadcast()
	r.mu.Unlock()
	r.halt()
	return first
}

func (r *run) setStoreErr(err error) {
	r.mu.Lock()
	if r.storeErr == nil {
		r.storeErr = err
	}
	r.drained.Broadcast()
	r.mu.Unlock()
}
