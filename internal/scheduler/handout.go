package scheduler

import (
	"context"
	"sync"

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
type handout struct {
	sessions int // workers, one session each
	maxGroup int // most messages one session takes at once
	capacity int // most deliveries queued before put waits

	mu      sync.Mutex
	queue   []*store.Delivery
	busy    int // sessions holding a group
	held    int // messages those sessions hold and have not settled
	closed  bool
	changed chan struct{} // closed and replaced on every change
}

func newHandout(sessions, maxGroup, capacity int) *handout {
	return &handout{sessions: sessions, maxGroup: maxGroup, capacity: capacity, changed: make(chan struct{})}
}

// notifyLocked wakes everyone waiting for a change.
func (h *handout) notifyLocked() {
	close(h.changed)
	h.changed = make(chan struct{})
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
		if len(h.queue) == 0 || len(h.queue)+len(ds) <= h.capacity {
			h.queue = append(h.queue, ds...)
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
// closed.
func (h *handout) take() (group []*store.Delivery, ok bool) {
	for {
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			return nil, false
		}
		if n := len(h.queue); n > 0 {
			// Fill every idle session before deepening any pipeline, and
			// never take more than a fair share of all the work, queued
			// or held: a session that comes free while the others are busy
			// would otherwise take a whole group, and against a slow
			// receiver carry a long serial queue while the others run dry.
			idle := max(h.sessions-h.busy, 1)
			fair := (n + h.held + h.sessions - 1) / h.sessions
			k := max(1, min(h.maxGroup, (n+idle-1)/idle, fair))
			group = append([]*store.Delivery(nil), h.queue[:k]...)
			h.queue = h.queue[k:]
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
// of the queue. It reports false when the handout is closed: the caller
// gives their attempts back to the store instead.
func (h *handout) giveBack(ds []*store.Delivery) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.held -= len(ds)
	if h.closed {
		return false
	}
	h.queue = append(append([]*store.Delivery(nil), ds...), h.queue...)
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

// done says that a session finished its group, of which it kept n
// messages (the others it gave back): every result of it was handed to
// the recorder.
func (h *handout) done(n int) {
	h.mu.Lock()
	h.busy--
	h.held -= n
	h.notifyLocked()
	h.mu.Unlock()
}

// waitIdle waits until every delivery handed out was attempted: nothing
// queued, no session busy.
func (h *handout) waitIdle(ctx context.Context) error {
	for {
		h.mu.Lock()
		if len(h.queue) == 0 && h.busy == 0 {
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
	left := h.queue
	h.queue, h.closed = nil, true
	h.notifyLocked()
	return left
}
