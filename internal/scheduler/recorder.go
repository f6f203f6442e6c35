package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"mailout/internal/outcome"
	"mailout/internal/queue"
	"mailout/internal/store"
	"mailout/internal/transport"
)

// recorder turns attempts into store transitions and writes them in
// batches, under a context detached from the run's cancellation; it
// feeds the breaker and the progress display, and halts the run at the
// first failed write. One goroutine (loop) does every write of the run
// until the run's last flush, so writes never overlap.
type recorder struct {
	cfg *Config
	// base is the run's context detached from its cancellation: results
	// are recorded under it.
	base context.Context
	// halt stops every new claim and send.
	halt    context.CancelFunc
	results *results
	verdict *verdict

	kick     chan struct{}   // a batch is full
	requests chan chan error // a flush now, and its outcome
	quit     chan struct{}
	stopped  chan struct{}

	// Owned by whoever writes: the loop while it runs, then the run.
	started       time.Time
	sent          int // results recorded in this run
	lastProgress  time.Time
	progressEvery time.Duration
}

func newRecorder(cfg *Config, base context.Context, halt context.CancelFunc, started time.Time, total int) *recorder {
	r := &recorder{cfg: cfg, base: base, halt: halt, started: started,
		verdict:  &verdict{breaker: newBreaker(cfg.Breaker, total), stop: halt, checkDNS: cfg.CheckDNS, base: base},
		kick:     make(chan struct{}, 1),
		requests: make(chan chan error),
		quit:     make(chan struct{}),
		stopped:  make(chan struct{}),
	}
	r.results = &results{limit: cfg.RecordBatch, kick: r.poke}
	r.results.drained = sync.NewCond(&r.results.mu)
	return r
}

func (r *recorder) poke() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// start runs the writing loop: a flush every RecordEvery, when a batch is
// full, or when flushNow asks.
func (r *recorder) start() {
	go func() {
		defer close(r.stopped)
		t := time.NewTicker(r.cfg.RecordEvery)
		defer t.Stop()
		for {
			select {
			case <-r.quit:
				return
			case reply := <-r.requests:
				reply <- r.flush(1)
				continue
			case <-t.C:
			case <-r.kick:
			}
			select {
			case <-r.quit:
				return // the run's last flush writes what is left
			default:
			}
			// One try: a failure halts the run, and the last flush
			// retries once the messages in flight have finished.
			_ = r.flush(1)
		}
	}()
}

// flushNow writes what is buffered before it returns (one try).
func (r *recorder) flushNow() error {
	reply := make(chan error, 1)
	r.requests <- reply
	return <-reply
}

// stop ends the writing loop; the caller does the last flush.
func (r *recorder) stop() {
	close(r.quit)
	<-r.stopped
}

// finish classifies the transition of one attempt, buffers its result
// and, when the attempt may pause the run (not a render failure), feeds
// the breaker.
func (r *recorder) finish(d *store.Delivery, res transport.Result, mayPause bool, latency time.Duration) {
	cfg := r.cfg
	now := cfg.Clock.Now()
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
	r.results.add(ar)
	r.verdict.observe(res.Result, d.Domain, mayPause)
	if cfg.Attempt != nil {
		cfg.Attempt(Attempt{Class: res.Class, State: tr.State, Via: res.Via, Latency: latency, PossibleDuplicate: res.Ambiguous})
	}
}

// refund gives back the attempt of a delivery that was claimed but not
// sent.
func (r *recorder) refund(d *store.Delivery) {
	now := r.cfg.Clock.Now()
	r.results.add(store.AttemptResult{DeliveryID: d.ID, Attempt: d.Attempts, State: queue.Pending,
		NextAt: now, Refund: true, MessageID: d.MessageID, At: now})
}

// failed reports whether a write has failed in this run.
func (r *recorder) failed() bool { return r.results.failure() != nil }

// flush writes the buffered results under the run's detached context: a
// pause or a signal that arrives while a batch is being written lets the
// write finish, so it neither loses the results nor reports a database
// failure. A store failure halts the run at once (no new message starts),
// keeps the results buffered for the next flush; the last one of the run
// tries them several times. The messages sent but not recorded are at
// most those in flight when the store failed.
func (r *recorder) flush(tries int) error {
	batch := r.results.take()
	if len(batch) == 0 {
		return nil
	}
	cfg := r.cfg
	var err error
	for try := 0; try < tries; try++ {
		if try > 0 {
			if serr := cfg.Clock.Sleep(r.base, time.Duration(try)*200*time.Millisecond); serr != nil {
				break
			}
		}
		ctx, cancel := context.WithTimeout(r.base, recordTimeout)
		_, err = cfg.Store.Record(ctx, batch)
		cancel()
		if err == nil {
			break
		}
		// Halt first: fail wakes the sessions waiting for room in the
		// buffer, and they must find the run halted, not send on.
		r.halt()
		first := r.results.fail(err)
		if first {
			cfg.Logger.Error("recording results failed: no new message is sent; the messages in flight finish", "campaign", cfg.Campaign.Name, "err", err, "results", len(batch))
		} else {
			cfg.Logger.Warn("recording results failed; retrying", "campaign", cfg.Campaign.Name, "err", err, "results", len(batch))
		}
	}
	if err != nil {
		r.results.restore(batch)
		return err
	}
	r.sent += len(batch)
	// Counting is a scan of the campaign: at most once a second, and at
	// most 2% of the time (on a million rows a count takes about 100 ms).
	if now := cfg.Clock.Now(); cfg.Progress != nil && now.Sub(r.lastProgress) >= max(time.Second, r.progressEvery) {
		r.lastProgress = now
		start := time.Now()
		counts, cerr := cfg.Store.Counts(r.base, cfg.Campaign.ID)
		r.progressEvery = 50 * time.Since(start)
		if cerr == nil {
			cfg.Progress(r.progress(counts))
		}
	}
	return nil
}

func (r *recorder) progress(c *store.Counts) Progress {
	return Progress{Sent: r.sent, Started: r.started}.WithCounts(c)
}

// results buffers the results not yet written. While a full batch waits
// to be written, add blocks: the results not yet recorded never exceed two
// batches (one being written, one filling), which bounds what a crash can
// send twice.
type results struct {
	limit int
	kick  func() // asks for a flush

	mu sync.Mutex
	// drained is signalled (on mu) when pending was taken for writing or
	// a write failed.
	drained *sync.Cond
	pending []store.AttemptResult
	// err is the first failed write; from then on add no longer waits.
	err error
}

func (b *results) add(ar store.AttemptResult) {
	b.mu.Lock()
	for len(b.pending) >= b.limit && b.err == nil {
		b.kick()
		b.drained.Wait()
	}
	b.pending = append(b.pending, ar)
	full := len(b.pending) >= b.limit
	b.mu.Unlock()
	if full {
		b.kick()
	}
}

// take removes and returns the buffered results for writing.
func (b *results) take() []store.AttemptResult {
	b.mu.Lock()
	defer b.mu.Unlock()
	batch := b.pending
	b.pending = nil
	b.drained.Broadcast()
	return batch
}

// restore puts back a batch whose write failed, ahead of newer results.
func (b *results) restore(batch []store.AttemptResult) {
	b.mu.Lock()
	b.pending = append(batch, b.pending...)
	b.mu.Unlock()
}

// fail notes a failed write; it reports whether it was the first.
func (b *results) fail(err error) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	first := b.err == nil
	if first {
		b.err = err
	}
	b.drained.Broadcast()
	return first
}

func (b *results) failure() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// unrecorded counts the buffered results of messages that were sent (not
// the attempts given back).
func (b *results) unrecorded() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, ar := range b.pending {
		if !ar.Refund {
			n++
		}
	}
	return n
}

// verdict decides whether the run goes on: a fault of the route or the
// account (permanent for the run) or the breaker pauses it.
type verdict struct {
	stop context.CancelFunc

	mu       sync.Mutex
	breaker  *breaker
	pause    *outcome.Result
	attempts int

	// Refusals as unauthenticated (outcome.SenderUnauthenticated), and
	// the recipient domains they came from (up to two).
	unauth        int
	unauthDomains map[string]bool

	// checkDNS is Config.CheckDNS, asked (without the lock, by one
	// attempt at a time: checking) before a pause for missing domains.
	checkDNS func(context.Context) bool
	checking bool
	base     context.Context
}

// Receivers that refuse the message as unauthenticated pause the run when
// this many refusals come, or when they come from this many recipient
// domains: the sender's DNS needs putting right, and every message sent
// meanwhile to a receiver that checks it is refused too (or, where it only
// counts against the domain, lands in spam). Fewer, from one domain, may
// be that receiver's own doing: the recipients are retried.
const (
	unauthPauseRefusals = 5
	unauthPauseDomains  = 2
)

func (v *verdict) observe(res outcome.Result, domain string, mayPause bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.attempts++
	if !mayPause {
		return
	}
	if res.Kind == outcome.KindPermanentForRun {
		v.pauseFor(res, "")
	}
	told := slices.Contains(v.breaker.cfg.Told, res.Class) // the user was told and resumed
	f := faultOf(res)
	if told {
		f = notOurs
	}
	if why, missing := v.breaker.observe(f, domain); why != "" && v.pause == nil && v.serverAtFault(missing) {
		v.pauseFor(res, why)
	}
	if res.Class == outcome.SenderUnauthenticated && !told && !v.breaker.cfg.Disabled && v.pause == nil {
		v.unauth++
		if v.unauthDomains == nil {
			v.unauthDomains = map[string]bool{}
		}
		if len(v.unauthDomains) < unauthPauseDomains {
			v.unauthDomains[domain] = true
		}
		if v.unauth >= unauthPauseRefusals || len(v.unauthDomains) >= unauthPauseDomains {
			v.pauseFor(res, fmt.Sprintf("%d refusals as unauthenticated from %d recipient domains", v.unauth, len(v.unauthDomains)))
		}
	}
}

// pauseFor pauses the run for res, unless it is paused already; why, when
// given, goes in front of res's reason. Called with v.mu held.
func (v *verdict) pauseFor(res outcome.Result, why string) {
	if v.pause != nil {
		return
	}
	if why != "" {
		res.Reason = why + ": " + res.Reason
	}
	v.pause = &res
	v.stop()
}

// serverAtFault is true unless the breaker tripped on missing domains
// alone and the DNS server knows other domains of the campaign: then the
// first-attempts signal ends, as if something had been delivered. Called
// with v.mu held; CheckDNS runs without it. An attempt that trips the
// breaker while another asks does not pause.
func (v *verdict) serverAtFault(missing bool) bool {
	if !missing || v.checkDNS == nil {
		return true
	}
	if v.checking {
		return false
	}
	v.checking = true
	v.mu.Unlock()
	atFault := v.checkDNS(v.base)
	v.mu.Lock()
	v.checking = false
	if !atFault {
		v.breaker.endFirst()
	}
	return atFault && v.pause == nil
}

// state returns the attempts made and the outcome that paused the run,
// if any.
func (v *verdict) state() (attempts int, pause *outcome.Result) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.attempts, v.pause
}
