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
	"slices"
	"strings"
	"sync"
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
	// 32, 1 switches it off. A group also stops at 1 MiB of messages, and
	// takes no more than its share of the due messages, ceil(due / idle
	// connections): every connection is given work before any group grows.
	// Each result is recorded as soon as it is known, so the group's size
	// does not widen what a crash can re-send (one message per connection).
	SendBatch int
	// RecordEvery flushes buffered results at least this often; default 100ms.
	RecordEvery time.Duration
	// Wait is how long Run stays while only deferred recipients are left
	// (0: return as soon as nothing is due).
	Wait time.Duration
	// Breaker stops a campaign that can deliver nothing; zero value = on
	// with defaults.
	Breaker BreakerConfig
	// CheckDNS, when set, is asked before the breaker pauses a run whose
	// first attempts all found their recipient domain missing (NXDOMAIN):
	// true when the DNS server knows none of the campaign's other domains
	// either (the server is at fault: pause), false when it knows some
	// (the missing domains are the list's own: the run goes on). Unset,
	// the breaker pauses.
	CheckDNS func(ctx context.Context) bool
	// ShutdownTimeout bounds how long in-flight deliveries may take to
	// finish after ctx is cancelled; default 10 minutes (the RFC 5321
	// §4.5.3.2.6 DATA termination timeout, so a slow final 250 still counts).
	ShutdownTimeout time.Duration
	Logger          *slog.Logger
	// Progress, when set, is called after every flush with the counts so far.
	Progress func(Progress)
	// Gate, when set, makes the profile's limits hold for every process
	// sending the campaign (see Gate); nil keeps them in this process.
	Gate Gate
	// Attempt, when set, is called with each attempt's outcome as it is
	// handed to the recorder (metrics). It must not block: it is called on
	// the session's goroutine.
	Attempt func(Attempt)
	// Shared: other processes (the workers of a fleet) send the campaign
	// at the same time. The run then stores no status when it is
	// interrupted (one worker stopping does not pause the campaign for
	// the others) or paused by the breaker (the caller pauses the
	// campaign once for the whole fleet); it still stores done.
	Shared bool
}

// Attempt is one attempt's outcome, for metrics.
type Attempt struct {
	Class outcome.Class
	// State is the state the attempt leaves the recipient in.
	State queue.State
	// Via is the way the message went ("sandbox", "relay:HOST",
	// "direct:MXHOST", "render").
	Via string
	// Latency is how long the transport took from handing over the
	// message to the server's final reply; for a message of a pipelined
	// group, from the previous message's reply. Zero when nothing was
	// sent (the message could not be built).
	Latency time.Duration
	// PossibleDuplicate: the message may have been delivered although no
	// reply said so (the session ended after its data was sent): sent
	// again, the recipient may get it twice.
	PossibleDuplicate bool
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
	// Told lists what the pause this run resumes from told the user
	// (outcome.SenderUnauthenticated, outcome.DNSNXDomain): the user
	// resumed knowing it, so it pauses the run no more, and its
	// recipients are retried or failed as any others.
	Told []outcome.Class
}

// Progress is a snapshot for progress displays.
type Progress struct {
	Total, Delivered, Failed, Deferred, Suppressed, Pending int
	Sent                                                    int // attempts finished in this run
	Started                                                 time.Time
}

// WithCounts is p with the tally of c.
func (p Progress) WithCounts(c *store.Counts) Progress {
	p.Total, p.Delivered, p.Failed = c.Total, c.ByState[queue.Delivered], c.ByState[queue.Failed]
	p.Deferred, p.Suppressed = c.ByState[queue.Deferred], c.ByState[queue.Suppressed]
	p.Pending = c.ByState[queue.Pending] + c.ByState[queue.Sending]
	return p
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

// Run sends the campaign until every delivery is final, only deferred ones
// are left beyond cfg.Wait, ctx is cancelled, or a route fault pauses it.
//
// Three parts share the work: a claimer claims due rows and hands them to
// the sessions (handout), one worker per allowed connection sends them,
// in pipelined groups when the transport is a transport.Batcher, and a
// recorder writes the results in batches and decides on pauses.
func Run(parent context.Context, cfg Config) (*Result, error) {
	cfg.defaults()
	c := cfg.Campaign
	started := cfg.Clock.Now()
	// stop ends the claiming and the starting of messages; in-flight
	// deliveries go on under sendCtx, which ends only after
	// ShutdownTimeout once parent is done.
	stopCtx, stop := context.WithCancel(parent)
	defer stop()
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
	total := counts.ByState[queue.Pending] + counts.ByState[queue.Deferred] + counts.ByState[queue.Sending]
	bg := context.WithoutCancel(parent)
	rec := newRecorder(&cfg, bg, stop, started, total)
	if cfg.Progress != nil {
		cfg.Progress(rec.progress(counts))
	}

	sessions := max(cfg.Profile.Connections, 1)
	batcher, _ := cfg.Transport.(transport.Batcher)
	group := 1
	if batcher != nil {
		group = cfg.SendBatch
	}
	size := claimSize(&cfg)
	// The handout holds a whole claim, so the next claim (a write
	// transaction of a few milliseconds) runs while the workers send the
	// previous one instead of leaving them idle.
	work := newHandout(sessions, group, max(sessions, size), cfg.Profile.DomainConnections)
	lp := cfg.Profile
	if cfg.Gate != nil {
		// The Gate paces the rates for the fleet; the process keeps only
		// the pause-every rule.
		lp.Rate, lp.DomainRate = 0, 0
	}
	limiter := throttle.New(lp, cfg.Clock)
	var wg sync.WaitGroup
	for range sessions {
		w := &worker{cfg: &cfg, work: work, limiter: limiter, rec: rec, batcher: batcher,
			bufs: make([]bytes.Buffer, group)}
		wg.Go(func() { w.loop(stopCtx, sendCtx) })
	}
	rec.start()

	cl := &claimer{cfg: &cfg, size: size, started: started, work: work, rec: rec}
	claimErr := cl.loop(stopCtx)
	for _, d := range work.close() {
		rec.refund(d) // claimed, never started
	}
	wg.Wait()
	rec.stop()
	ferr := rec.flush(recordTries)

	attempts, pause := rec.verdict.state()
	res := &Result{Attempts: attempts}
	counts, cerr := cfg.Store.Counts(bg, c.ID)
	res.Counts = counts
	if cfg.Progress != nil && cerr == nil {
		cfg.Progress(rec.progress(counts))
	}

	switch recordErr := rec.results.failure(); {
	case recordErr != nil:
		return res, &RecordError{Err: recordErr, Unrecorded: rec.results.unrecorded()}
	case ferr != nil:
		return res, fmt.Errorf("%w: %w", ErrStoreFailed, ferr)
	case claimErr != nil && !errors.Is(claimErr, context.Canceled):
		return res, claimErr
	case cerr != nil:
		return res, cerr
	case pause != nil:
		res.Stop = StopPaused
		res.PauseResult = pause
		res.Reason = pauseReason(pause)
		if cfg.Shared {
			break
		}
		if err := cfg.Store.SetCampaignStatus(bg, c.ID, store.CampaignPaused, res.Reason); err != nil {
			return res, err
		}
	case parent.Err() != nil:
		res.Stop = StopInterrupted
		res.Reason = "interrupted"
		if cfg.Shared {
			break
		}
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

// pauseReason is Result.Reason of a run paused by p, which the store keeps
// as the campaign's status reason: the class first, then the reply and the
// host. PauseClass reads the class back.
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

// PauseClass is the outcome class that a reason written by pauseReason
// names, or "" for any other reason.
func PauseClass(reason string) outcome.Class {
	end := strings.IndexAny(reason, ": ")
	if end < 0 {
		end = len(reason)
	}
	if c := outcome.Class(reason[:end]); slices.Contains(outcome.Classes, c) {
		return c
	}
	return ""
}
