package transport

import (
	"context"
	"sync"
	"time"

	"mailout/internal/smtpclient"
)

// sessionPool keeps a route's SMTP sessions to its destinations (a relay
// account, an MX host address), each known by a key: at most maxOpen
// sessions open per destination; idle sessions kept for the next message,
// at most maxIdle of them in all (0: only maxOpen bounds them; negative:
// none, a session ends when it is given back); a sender
// that finds every slot of a destination taken waits, first come first
// served, for a session to come back or a slot to free. The relay and
// direct routes share it.
type sessionPool struct {
	maxOpen int
	maxIdle int
	// idleTimeout: an idle session unused for longer is ended rather than
	// reused (servers drop idle clients; Postfix after 300 s).
	idleTimeout time.Duration
	now         func() time.Time

	mu     sync.Mutex
	dests  map[string]*destPool
	nIdle  int
	closed bool
}

// destPool holds the sessions to one destination.
type destPool struct {
	idle    []*session
	open    int             // sessions open, idle or in use
	waiters []chan *session // a nil send means: a slot is free, dial
}

func newSessionPool(maxOpen, maxIdle int, idleTimeout time.Duration, now func() time.Time) *sessionPool {
	return &sessionPool{maxOpen: maxOpen, maxIdle: maxIdle, idleTimeout: idleTimeout, now: now, dests: map[string]*destPool{}}
}

// destLocked returns key's sessions, creating them. The caller holds mu.
func (p *sessionPool) destLocked(key string) *destPool {
	dp := p.dests[key]
	if dp == nil {
		dp = &destPool{}
		p.dests[key] = dp
	}
	return dp
}

// nextWaiter removes and returns the longest-waiting sender, or nil. The
// caller holds sessionPool.mu.
func (dp *destPool) nextWaiter() chan *session {
	if len(dp.waiters) == 0 {
		return nil
	}
	w := dp.waiters[0]
	dp.waiters = dp.waiters[1:]
	return w
}

// get returns an idle session to key (reused reports it), dials one with
// dial within maxOpen, or waits for one to come back. With fresh it always
// dials: an idle or handed-over session is ended and its slot used for the
// new one.
func (p *sessionPool) get(ctx context.Context, key string, fresh bool, dial func(context.Context) (*session, error)) (s *session, reused bool, err error) {
	dialIn := func() (*session, bool, error) { // a slot is ours
		s, err := dial(ctx)
		if err != nil {
			p.release(key)
			return nil, false, err
		}
		return s, false, nil
	}
	for {
		p.mu.Lock()
		dp := p.destLocked(key)
		if fresh && dp.open < p.maxOpen {
			dp.open++
			p.mu.Unlock()
			return dialIn()
		}
		if n := len(dp.idle); n > 0 {
			s := dp.idle[n-1]
			dp.idle = dp.idle[:n-1]
			p.nIdle--
			p.mu.Unlock()
			if !fresh && s.c.Usable() && p.now().Sub(s.lastUsed) < p.idleTimeout {
				return s, true, nil
			}
			if fresh {
				s.end(ctx)
				return dialIn()
			}
			p.discard(ctx, key, s)
			continue
		}
		if dp.open < p.maxOpen {
			dp.open++
			p.mu.Unlock()
			return dialIn()
		}
		w := make(chan *session, 1)
		dp.waiters = append(dp.waiters, w)
		p.mu.Unlock()
		select {
		case s := <-w:
			if s != nil && !fresh {
				return s, true, nil
			}
			if s != nil {
				s.end(ctx)
			}
			// A slot was freed (or handed over) for us: it is ours already.
			return dialIn()
		case <-ctx.Done():
			p.mu.Lock()
			for i, x := range dp.waiters {
				if x == w {
					dp.waiters = append(dp.waiters[:i], dp.waiters[i+1:]...)
					break
				}
			}
			p.mu.Unlock()
			// A hand-over may have raced with the cancellation.
			select {
			case s := <-w:
				if s != nil {
					p.put(ctx, key, s, 0)
				} else {
					p.release(key)
				}
			default:
			}
			return nil, false, &smtpclient.Error{Command: "connect", Err: ctx.Err()}
		}
	}
}

// put hands a session to a waiter, or keeps it for the next message to the
// same destination; a session that can no longer talk, has carried
// perConnection messages (0: no cap) or comes back after close is ended.
func (p *sessionPool) put(ctx context.Context, key string, s *session, perConnection int) {
	if !s.c.Usable() || (perConnection > 0 && s.sent >= perConnection) {
		p.discard(ctx, key, s)
		return
	}
	p.mu.Lock()
	dp := p.destLocked(key)
	if p.closed {
		p.mu.Unlock()
		p.discard(ctx, key, s)
		return
	}
	if w := dp.nextWaiter(); w != nil {
		p.mu.Unlock()
		w <- s
		return
	}
	if p.maxIdle < 0 || p.maxIdle > 0 && p.nIdle >= p.maxIdle {
		p.mu.Unlock()
		p.discard(ctx, key, s)
		return
	}
	dp.idle = append(dp.idle, s)
	p.nIdle++
	p.mu.Unlock()
}

// discard ends a session (QUIT when it can still talk) and frees its slot.
func (p *sessionPool) discard(ctx context.Context, key string, s *session) {
	s.end(ctx)
	p.release(key)
}

// release frees one session slot of key, passing it to a waiter if any.
func (p *sessionPool) release(key string) {
	p.mu.Lock()
	dp := p.destLocked(key)
	if w := dp.nextWaiter(); w != nil {
		p.mu.Unlock()
		w <- nil
		return
	}
	dp.open--
	p.mu.Unlock()
}

// closeIdle ends the idle sessions of key (one destination), or of every
// destination when all is set; with all, sessions that come back later
// are ended too.
func (p *sessionPool) closeIdle(ctx context.Context, key string, all bool) {
	type idle struct {
		key string
		s   *session
	}
	var ended []idle
	p.mu.Lock()
	if all {
		p.closed = true
	}
	for k, dp := range p.dests {
		if !all && k != key {
			continue
		}
		for _, s := range dp.idle {
			ended = append(ended, idle{k, s})
		}
		p.nIdle -= len(dp.idle)
		dp.idle = nil
	}
	p.mu.Unlock()
	for _, x := range ended {
		p.discard(ctx, x.key, x.s)
	}
}

// session is one open SMTP session and what it carried.
type session struct {
	c        *smtpclient.Client
	sent     int
	lastUsed time.Time
}

// quitTimeout bounds the QUIT of a session that is done: its messages are
// recorded already, so waiting the RFC's 5 minutes would only hold a slot.
const quitTimeout = 5 * time.Second

// end closes the session, with QUIT when it can still talk. A failing QUIT
// changes nothing about what was sent.
func (s *session) end(ctx context.Context) {
	if s.c.Usable() {
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), quitTimeout)
		_ = s.c.Quit(qctx)
		cancel()
	}
	_ = s.c.Close()
}
