package scheduler

import (
	"context"
	"sync"
	"time"

	"mailout/internal/store"
)

// handout holds the claimed deliveries waiting for a session and knows how
// many sessions are busy, so that it can split the due messages fairly:
// every idle session is given work before any session's pipeline is
// deepened. A session takes at most ceil(queued / idle sessions) messages,
// and no more than ceil((queued + held) / sessions), where held counts the
// messages other sessions still have to send,
// capped at the group size; against a slow receiver (a second per DATA
// reply) 4,000 messages over 200 sessions then keep all 200 busy instead
// of a few sessions carrying groups of SendBatch while the others wait.
//
// With a per-domain session limit (the direct route), the handout also
// keeps that limit: a group holds the messages of one domain, and it is
// handed out only while the domain has fewer than perDomain sessions, so a
// session never waits holding messages whose domain is busy while the
// messages of another domain could go. Without one (a relay, the
// sandbox), a group mixes domains: it all goes to one server.
//
// A group is also kept to about groupTime of the receiver's time, by the
// time per message its last groups took: pipelining saves the round trips
// between messages, which is much where a receiver answers in a
// millisecond and nothing where it takes a second per message. There a
// deep group only lets one session hold a domain's last messages while
// the domain's other sessions have none left, and the campaign ends late.
// (With a Gate the sessions learn nothing: a fleet's session connects
// anew for every group, and small groups would cost a connection each.)
type handout struct {
	sessions  int // workers, one session each
	maxGroup  int // most messages one session takes at once
	capacity  int // most deliveries queued before put waits
	perDomain int // most sessions one domain may have at once; 0 = no limit

	mu     sync.Mutex
	queued int                     // deliveries waiting, all domains
	queues map[string]*domainQueue // by domain; one "" queue without perDomain
	// ready are the queues that have work and a free session slot, in the
	// order they are served; a queue may also be listed that lost either
	// since, and is dropped when reached.
	ready   []*domainQueue
	busy    int // sessions holding a group
	held    int // messages those sessions hold and have not settled
	closed  bool
	changed chan struct{} // closed and replaced on every change
	// slow holds the time per message of the receivers slow enough for
	// groupTime to cap their groups, by queue (domain, or "" without a
	// per-domain limit); a receiver not listed is taken to be fast, so
	// the map holds only the slow domains of a campaign.
	slow map[string]time.Duration
}

// groupTime is the receiver's time one group should take at most: a
// receiver that takes a second per message gets groups of one, one that
// answers in 10 ms groups of up to 50 (maxGroup caps them first).
const groupTime = 500 * time.Millisecond

// domainQueue is the waiting work of one domain.
type domainQueue struct {
	domain  string
	q       []*store.Delivery
	active  int  // sessions holding a group of it
	inReady bool // listed in handout.ready
}

func newHandout(sessions, maxGroup, capacity, perDomain int) *handout {
	return &handout{sessions: sessions, maxGroup: maxGroup, capacity: capacity, perDomain: perDomain,
		queues: map[string]*domainQueue{}, changed: make(chan struct{}), slow: map[string]time.Duration{}}
}

// notifyLocked wakes everyone waiting for a change.
func (h *handout) notifyLocked() {
	close(h.changed)
	h.changed = make(chan struct{})
}

// queueLocked returns the queue d waits in.
func (h *handout) queueLocked(domain string) *domainQueue {
	if h.perDomain == 0 {
		domain = ""
	}
	dq := h.queues[domain]
	if dq == nil {
		dq = &domainQueue{domain: domain}
		h.queues[domain] = dq
	}
	return dq
}

// servable: dq has work and may have one more session.
func (h *handout) servable(dq *domainQueue) bool {
	return len(dq.q) > 0 && (h.perDomain == 0 || dq.active < h.perDomain)
}

// markReadyLocked lists dq as ready when it is servable and not listed;
// first puts it at the front (work given back goes first).
func (h *handout) markReadyLocked(dq *domainQueue, first bool) {
	if dq.inReady || !h.servable(dq) {
		return
	}
	dq.inReady = true
	if first {
		h.ready = append([]*domainQueue{dq}, h.ready...)
	} else {
		h.ready = append(h.ready, dq)
	}
}

// servableLocked reports whether some queued work may be handed out now.
func (h *handout) servableLocked() bool {
	for _, dq := range h.ready {
		if h.servable(dq) {
			return true
		}
	}
	return false
}

// forgetLocked drops a queue that holds nothing, so a campaign of many
// domains does not keep one entry per domain it ever sent to.
func (h *handout) forgetLocked(dq *domainQueue) {
	if len(dq.q) == 0 && dq.active == 0 && !dq.inReady {
		delete(h.queues, dq.domain)
	}
}

// put queues ds for the sessions, waiting while the queue holds a claim's
// worth already; it fails only when ctx ends first, and then nothing of ds
// was queued.
func (h *handout) put(ctx context.Context, ds []*store.Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	for {
		h.mu.Lock()
		// With a per-domain limit, the queue may hold only messages of
		// domains at their limit while sessions sit idle: then it takes
		// one claim more, so other domains' messages reach those sessions
		// (and no more, so claimed rows do not wait long under lease).
		stuck := h.perDomain > 0 && !h.servableLocked() && h.queued+len(ds) <= 2*h.capacity
		if h.queued == 0 || h.queued+len(ds) <= h.capacity || stuck {
			for _, d := range ds {
				dq := h.queueLocked(d.Domain)
				dq.q = append(dq.q, d)
				h.markReadyLocked(dq, false)
			}
			h.queued += len(ds)
			h.notifyLocked()
			h.mu.Unlock()
			return nil
		}
		ch := h.changed
		h.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// take waits for work and returns the next group for one session, which
// counts as busy until it calls done. ok is false once the handout is
// closed. With a per-domain limit the group is of one domain, and holds
// one of its session slots until done.
func (h *handout) take() (group []*store.Delivery, ok bool) {
	for {
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			return nil, false
		}
		for len(h.ready) > 0 {
			dq := h.ready[0]
			h.ready = h.ready[1:]
			dq.inReady = false
			if !h.servable(dq) {
				h.forgetLocked(dq)
				continue
			}
			// Fill every idle session before deepening any pipeline, and
			// never take more than a fair share of all the work, queued
			// or held: a session that comes free while the others are busy
			// would otherwise take a whole group, and against a slow
			// receiver carry a long serial queue while the others run dry.
			n := h.queued
			idle := max(h.sessions-h.busy, 1)
			fair := (n + h.held + h.sessions - 1) / h.sessions
			k := max(1, min(h.maxGroup, (n+idle-1)/idle, fair, len(dq.q)))
			if per, ok := h.slow[dq.domain]; ok {
				k = max(1, min(k, int(groupTime/per)))
			}
			group = append([]*store.Delivery(nil), dq.q[:k]...)
			dq.q = dq.q[k:]
			if len(dq.q) == 0 {
				dq.q = nil // let the array go
			}
			dq.active++
			// The domain goes to the back: domains take turns.
			h.markReadyLocked(dq, false)
			h.queued -= k
			h.busy++
			h.held += k
			h.notifyLocked()
			h.mu.Unlock()
			return group, true
		}
		ch := h.changed
		h.mu.Unlock()
		<-ch
	}
}

// giveBack returns deliveries a session took but did not start (the
// profile did not let them start yet, or the group was full) to the front
// of their queue. It reports false when the handout is closed: the caller
// gives their attempts back to the store instead.
func (h *handout) giveBack(ds []*store.Delivery) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.held -= len(ds)
	if h.closed {
		return false
	}
	// Deliveries of one domain keep their order, ahead of the queued ones.
	for i := len(ds) - 1; i >= 0; i-- {
		dq := h.queueLocked(ds[i].Domain)
		dq.q = append([]*store.Delivery{ds[i]}, dq.q...)
	}
	for _, d := range ds {
		h.markReadyLocked(h.queueLocked(d.Domain), true)
	}
	h.queued += len(ds)
	h.notifyLocked()
	return true
}

// settle says that n messages a session holds have their result: it
// still holds the rest of its group.
func (h *handout) settle(n int) {
	h.mu.Lock()
	h.held -= n
	h.mu.Unlock()
}

// done says that a session finished its group, whose domain is domain
// and of which it kept n messages (the others it gave back): every result
// of it was handed to the recorder, and its session slot is free. per is
// the time the messages it sent took each, from the first start to the
// last reply (0: none was sent).
func (h *handout) done(domain string, n int, per time.Duration) {
	h.mu.Lock()
	h.busy--
	h.held -= n
	dq := h.queueLocked(domain)
	h.notePaceLocked(dq.domain, per)
	dq.active--
	h.markReadyLocked(dq, false)
	h.forgetLocked(dq)
	h.notifyLocked()
	h.mu.Unlock()
}

// notePaceLocked folds a group's time per message into its queue's
// (a moving average over about four groups), and keeps it only while it
// is slow enough to cap a group below maxGroup.
func (h *handout) notePaceLocked(key string, per time.Duration) {
	if per <= 0 {
		return
	}
	if old, ok := h.slow[key]; ok {
		per = (3*old + per) / 4
	}
	if per*time.Duration(h.maxGroup) > groupTime {
		h.slow[key] = per
	} else {
		delete(h.slow, key)
	}
}

// waitIdle waits until every delivery handed out was attempted: nothing
// queued, no session busy.
func (h *handout) waitIdle(ctx context.Context) error {
	for {
		h.mu.Lock()
		if h.queued == 0 && h.busy == 0 {
			h.mu.Unlock()
			return nil
		}
		ch := h.changed
		h.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// close ends the handout: sessions finish the group they hold and take no
// other. It returns the deliveries still queued, which were claimed but
// never started.
func (h *handout) close() []*store.Delivery {
	h.mu.Lock()
	defer h.mu.Unlock()
	var left []*store.Delivery
	for _, dq := range h.queues {
		left = append(left, dq.q...)
		dq.q = nil
	}
	h.queued, h.ready, h.closed = 0, nil, true
	h.notifyLocked()
	return left
}
