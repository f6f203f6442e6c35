package scheduler

import (
	"bytes"
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"mailout/internal/outcome"
	"mailout/internal/store"
	"mailout/internal/throttle"
	"mailout/internal/transport"
)

// worker is one session's worth of concurrency: it takes a group from the
// handout and sends it, one message at a time, or with a Batcher
// transport the whole group back to back on one session.
type worker struct {
	cfg     *Config
	work    *handout
	limiter *throttle.Limiter
	rec     *recorder
	batcher transport.Batcher // nil: one message at a time

	bufs []bytes.Buffer // one per message of a group, reused
	ds   []*store.Delivery
	msgs []*transport.Message
	size int // bytes of msgs
	// returned counts the messages of the current group given back to
	// the handout.
	returned int
	// settled counts the messages of the current group whose result was
	// handed over while the rest of the group was still on the wire.
	settled int
	// reported[k]: msgs[k]'s result was recorded during DeliverBatch.
	reported []bool
	// per is the time each message of the last group took on the wire,
	// by the run's clock (0: none went out).
	per time.Duration
}

// maxGroupBytes stops a group from growing once its messages hold this
// much: the rendered messages of a group are in memory at once (a list
// with a large attachment sends one message per group).
const maxGroupBytes = 1 << 20

// loop sends groups until the handout closes. stopCtx ends the starting
// of messages; sendCtx bounds the messages in flight.
func (w *worker) loop(stopCtx, sendCtx context.Context) {
	for {
		group, ok := w.work.take()
		if !ok {
			return
		}
		w.returned, w.settled, w.per = 0, 0, 0
		if release, ok := w.acquire(stopCtx, group); ok {
			w.sendGroup(stopCtx, sendCtx, group)
			release()
		}
		per := w.per
		if w.cfg.Gate != nil {
			// A fleet's session keeps no connection between groups (its
			// slot goes back to the fleet), so a small group would cost a
			// new connection per message: the groups keep their size.
			per = 0
		}
		w.work.done(group[0].Domain, len(group)-w.returned-w.settled, per)
	}
}

// acquire takes the Gate's connection slots for group: with a per-domain
// limit (a group then holds one domain) one of the group's domain first,
// then one of the total. In that order a session waiting for a busy
// domain holds none of the fleet's total, which the other domains' groups
// can use meanwhile; and a session holding a total slot waits for nothing
// more, so the order cannot deadlock. When ctx ends first, the group's
// attempts are given back and ok is false.
func (w *worker) acquire(ctx context.Context, group []*store.Delivery) (release func(), ok bool) {
	g := w.cfg.Gate
	if g == nil {
		return func() {}, true
	}
	domain := func() {}
	var err error
	if w.cfg.Profile.DomainConnections > 0 {
		domain, err = g.Acquire(ctx, group[0].Domain)
	}
	if err == nil {
		var total func()
		if total, err = g.Acquire(ctx, ""); err == nil {
			return func() { total(); domain() }, true
		}
		domain()
	}
	// Claimed but never started: give the attempts back.
	for _, d := range group {
		w.rec.refund(d)
	}
	return nil, false
}

// allow reports whether one more message to domain may start now, and
// takes that start (throttle.Limiter.Allow, and the Gate's).
func (w *worker) allow(domain string) bool {
	if g := w.cfg.Gate; g != nil && !g.Allow(domain) {
		return false
	}
	return w.limiter.Allow(domain)
}

// wait blocks until one more message to domain may start.
func (w *worker) wait(ctx context.Context, domain string) error {
	if err := w.limiter.Wait(ctx, domain); err != nil {
		return err
	}
	if g := w.cfg.Gate; g != nil {
		return g.Wait(ctx, domain)
	}
	return nil
}

// giveBack returns messages of the group that were not started to the
// handout, or their attempts to the store once the handout is closed.
func (w *worker) giveBack(ds []*store.Delivery) {
	w.returned += len(ds)
	if !w.work.giveBack(ds) {
		for _, d := range ds {
			w.rec.refund(d)
		}
	}
}

// sendGroup makes one attempt for the first message of group, waiting
// for the profile if it must (the rest of the group goes back to the
// handout meanwhile), and, when the transport batches, for the following
// ones while the profile lets them start at once (Limiter.Allow: a paced
// profile never turns into bursts) and the group holds less than
// maxGroupBytes; all of them go out on one session. The others go back to
// the handout.
func (w *worker) sendGroup(stopCtx, sendCtx context.Context, group []*store.Delivery) {
	w.ds, w.msgs, w.size = w.ds[:0], w.msgs[:0], 0
	if stopCtx.Err() == nil && !w.allow(group[0].Domain) {
		// The profile makes the first message wait: the others go back
		// meanwhile, for sessions that may send them now.
		w.giveBack(group[1:])
		group = group[:1]
		if w.wait(stopCtx, group[0].Domain) != nil {
			w.rec.refund(group[0])
			return
		}
	}
	if stopCtx.Err() != nil {
		// Claimed but never started: give the attempts back.
		for _, d := range group {
			w.rec.refund(d)
		}
		return
	}
	w.prepare(group[0])
	for i, d := range group[1:] {
		if w.size >= maxGroupBytes || stopCtx.Err() != nil || !w.allow(d.Domain) {
			w.giveBack(group[1+i:])
			break
		}
		w.prepare(d)
	}
	if len(w.msgs) == 0 {
		return
	}
	if w.batcher == nil || len(w.msgs) == 1 {
		start, onClock := time.Now(), w.cfg.Clock.Now()
		res := w.cfg.Transport.Deliver(sendCtx, w.msgs[0])
		if !res.NotStarted {
			w.per = w.cfg.Clock.Now().Sub(onClock)
		}
		w.record(w.ds[0], res, time.Since(start))
		return
	}
	// Each result is recorded as it comes, while the rest of the group is
	// still on the wire: a crash leaves at most the message in progress
	// sent and not recorded, however large the group.
	w.reported = append(w.reported[:0], make([]bool, len(w.msgs))...)
	// Once results can no longer be recorded, the rest of the group is not
	// sent: the group's context is cancelled between two messages.
	gctx, cut := context.WithCancel(sendCtx)
	defer cut()
	// A pause, a cancel or Ctrl-C (stopCtx) takes effect between two
	// messages: the one under way finishes with its reply, the others
	// come back not started and are given back.
	gctx = transport.WithStop(gctx, stopCtx.Done())
	var mu sync.Mutex
	cutDone := false
	// A pipelined group's replies come one after the other: each
	// message's latency runs from the previous reply.
	last := time.Now()
	onClock, sent := w.cfg.Clock.Now(), 0
	report := func(k int, res transport.Result) {
		mu.Lock()
		defer mu.Unlock()
		if w.reported[k] {
			return
		}
		w.reported[k] = true
		if res.NotStarted {
			w.rec.refund(w.ds[k])
			return
		}
		now := time.Now()
		latency := now.Sub(last)
		last = now
		if cutDone && !res.IsDelivered() && !res.Ambiguous {
			// Not started, or stopped before the end of its data: nobody
			// received it, the attempt is given back.
			w.rec.refund(w.ds[k])
			return
		}
		w.record(w.ds[k], res, latency)
		sent++
		// The handout shares out work by what each session still has to
		// do, not by the size of the groups it took.
		w.work.settle(1)
		w.settled++
		if !cutDone && w.rec.failed() {
			cutDone = true
			cut()
		}
	}
	results := w.batcher.DeliverBatch(gctx, w.msgs, report)
	// The contract is one report per message; one the transport did not
	// report is recorded now from the returned results rather than left
	// leased until the next run.
	for k := range w.reported {
		report(k, results[k])
	}
	if sent > 0 {
		w.per = w.cfg.Clock.Now().Sub(onClock) / time.Duration(sent)
	}
}

// record hands one attempt's result to the recorder; a rate-limited
// answer slows its domain down. latency is the transport's time for it.
func (w *worker) record(d *store.Delivery, res transport.Result, latency time.Duration) {
	if res.Class == outcome.RateLimited {
		if g := w.cfg.Gate; g != nil {
			g.SlowDown(d.Domain)
		} else {
			w.limiter.SlowDown(d.Domain)
		}
	}
	w.rec.finish(d, res, true, latency)
}

// prepare renders d into the next buffer and queues it for sending; a
// message that cannot be built fails that recipient at once.
func (w *worker) prepare(d *store.Delivery) {
	buf := &w.bufs[len(w.msgs)]
	buf.Reset()
	msg, err := w.render(d, buf)
	if err != nil {
		w.rec.finish(d, transport.Result{Via: "render", Result: outcome.Result{
			Class: outcome.RenderFailed, Kind: outcome.KindPermanent, Step: outcome.StepRender,
			Text: err.Error(), Reason: "the message could not be built for this recipient"}}, false, 0)
		return
	}
	if d.MessageID == "" {
		d.MessageID = msg.MessageID
	}
	w.ds = append(w.ds, d)
	w.msgs = append(w.msgs, msg)
	w.size += len(msg.Data)
}

// render builds one message. A panic while rendering (a bug met by one
// recipient's data) fails that recipient instead of the process: a process
// that died on the same message at every start would never get past it.
func (w *worker) render(d *store.Delivery, buf *bytes.Buffer) (msg *transport.Message, err error) {
	defer func() {
		if p := recover(); p != nil {
			w.cfg.Logger.Error("rendering crashed; this recipient is failed and the campaign goes on",
				"campaign", w.cfg.Campaign.Name, "delivery", d.ID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			msg, err = nil, fmt.Errorf("internal error while building the message (please report it): %v", p)
		}
	}()
	return w.cfg.Render(d, buf)
}
