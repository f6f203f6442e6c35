package scheduler

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"mailout/internal/outcome"
	"mailout/internal/queue"
	"mailout/internal/store"
	"mailout/internal/throttle"
	"mailout/internal/transport"
)

// slowReceiver is a Batcher whose server takes one second (on the test's
// clock) to answer each message's final ".", as a slow receiving MTA
// does. It notes the size of every group it is handed.
type slowReceiver struct {
	clk   *throttle.FakeClock
	delay time.Duration // per message; 0: a second

	mu      sync.Mutex
	groups  []int
	domains [][]string     // the distinct domains of each group
	active  map[string]int // sessions on each domain now
	peak    map[string]int // most sessions on each domain at once
	taken   int            // messages handed over in groups so far
	changed chan struct{}  // closed and replaced when taken grows
}

func (s *slowReceiver) Deliver(ctx context.Context, m *transport.Message) transport.Result {
	return s.DeliverBatch(ctx, []*transport.Message{m}, nil)[0]
}

func (s *slowReceiver) DeliverBatch(ctx context.Context, msgs []*transport.Message, done func(int, transport.Result)) []transport.Result {
	var doms []string
	for _, m := range msgs {
		if !slices.Contains(doms, m.Domain) {
			doms = append(doms, m.Domain)
		}
	}
	s.mu.Lock()
	s.groups = append(s.groups, len(msgs))
	s.domains = append(s.domains, doms)
	if s.active == nil {
		s.active, s.peak = map[string]int{}, map[string]int{}
	}
	for _, d := range doms {
		s.active[d]++
		s.peak[d] = max(s.peak[d], s.active[d])
	}
	s.taken += len(msgs)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		for _, d := range doms {
			s.active[d]--
		}
		s.mu.Unlock()
	}()
	out := make([]transport.Result, len(msgs))
	for i := range msgs {
		out[i] = transport.Result{Result: delivered, Via: "slow"}
		if err := s.clk.Sleep(ctx, cmp.Or(s.delay, time.Second)); err != nil {
			out[i] = transport.Result{Result: outcome.Result{Class: outcome.ConnectTimeout, Kind: outcome.KindTemporary, Text: err.Error()}, Via: "slow"}
		}
		if done != nil {
			done(i, out[i])
		}
	}
	return out
}

func (s *slowReceiver) Close() error { return nil }

// waitTaken blocks until n messages were handed over in groups.
func (s *slowReceiver) waitTaken(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		ch, got := s.changed, s.taken
		s.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// With N sessions idle and M ≥ N messages due, every session is given work
// before any pipeline is deepened: the due messages are spread over all N
// sessions (at most ceil(M/N) each) instead of a few sessions taking
// SendBatch each while the others wait. Against a receiver that takes a
// second per message this is the difference between N messages a second
// and a handful.
func TestEverySessionGetsWorkBeforeAnyGroupDeepens(t *testing.T) {
	for _, tc := range []struct{ sessions, due, sendBatch int }{
		{sessions: 20, due: 200, sendBatch: 32},
		{sessions: 50, due: 120, sendBatch: 32},
		{sessions: 8, due: 8, sendBatch: 32},
	} {
		st, c := setup(t, tc.due)
		clk := throttle.NewFakeClock(time.Now())
		tr := &slowReceiver{clk: clk, changed: make(chan struct{})}
		cfg := config(st, c, tr, clk)
		cfg.Profile.Connections = tc.sessions
		cfg.SendBatch = tc.sendBatch

		type ran struct {
			res *Result
			err error
		}
		finished := make(chan ran, 1)
		go func() {
			res, err := Run(t.Context(), cfg)
			finished <- ran{res, err}
		}()
		// The clock stands still, so no message is answered: every group
		// handed out is still on its session when all due messages are.
		if err := tr.waitTaken(t.Context(), tc.due); err != nil {
			t.Fatal(err)
		}
		tr.mu.Lock()
		groups := append([]int(nil), tr.groups...)
		tr.mu.Unlock()
		fair := (tc.due + tc.sessions - 1) / tc.sessions
		if len(groups) != tc.sessions {
			t.Errorf("%d sessions, %d due: %d sessions were given work (groups %v), want all %d",
				tc.sessions, tc.due, len(groups), groups, tc.sessions)
		}
		for _, g := range groups {
			if g > fair {
				t.Errorf("%d sessions, %d due: a group of %d (groups %v), want at most %d", tc.sessions, tc.due, g, groups, fair)
				break
			}
		}
		// Let the receiver answer, a second at a time, until the run is over.
		stopDriving := drive(t, clk, time.Second)
		r := <-finished
		stopDriving()
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.res.Stop != StopDone || r.res.Counts.ByState[queue.Delivered] != tc.due {
			t.Fatalf("stop %s, counts %+v", r.res.Stop, r.res.Counts.ByState)
		}
	}
}

// A session that comes free while all the others are busy takes its fair
// share of the work, not a whole group: against a slow receiver a deep
// pipeline on one session is a long serial queue while the others run dry.
func TestFreedSessionTakesAFairShare(t *testing.T) {
	const sessions = 200
	h := newHandout(sessions, 32, 1024, 0)
	rows := func(n int) []*store.Delivery {
		ds := make([]*store.Delivery, n)
		for i := range ds {
			ds[i] = &store.Delivery{ID: int64(i + 1)}
		}
		return ds
	}
	if err := h.put(t.Context(), rows(sessions)); err != nil {
		t.Fatal(err)
	}
	for range sessions {
		if g, ok := h.take(); !ok || len(g) != 1 {
			t.Fatalf("first round: group of %d, want 1 each", len(g))
		}
	}
	if err := h.put(t.Context(), rows(256)); err != nil {
		t.Fatal(err)
	}
	h.done("", 1, 0)
	g, ok := h.take()
	if want := (256 + sessions - 1 + sessions - 1) / sessions; !ok || len(g) > want {
		t.Errorf("a freed session took %d of 256 queued while 199 sessions hold one each; want at most %d", len(g), want)
	}
}

// With a per-domain session limit (the direct route), every session that
// the limit allows is busy at once, and each with one domain: 10 domains
// of 20 messages each, 2 sessions per domain and 20 sessions give 20
// groups of one domain each, 2 per domain, none waiting. A group that
// mixed domains would hold a session slot of each of them while it sends
// one message after another, and keep the other sessions idle.
func TestPerDomainLimitKeepsEverySessionBusy(t *testing.T) {
	const domains, each, sessions, perDomain = 10, 20, 20, 2
	var names []string
	for i := range domains {
		names = append(names, fmt.Sprintf("d%d.example", i))
	}
	st, c := setup(t, domains*each, names...)
	clk := throttle.NewFakeClock(time.Now())
	tr := &slowReceiver{clk: clk, changed: make(chan struct{})}
	cfg := config(st, c, tr, clk)
	cfg.Profile.Connections = sessions
	cfg.Profile.DomainConnections = perDomain
	cfg.SendBatch = 32

	finished := make(chan error, 1)
	go func() {
		res, err := Run(t.Context(), cfg)
		if err == nil && (res.Stop != StopDone || res.Counts.ByState[queue.Delivered] != domains*each) {
			err = fmt.Errorf("stop %s, counts %+v", res.Stop, res.Counts.ByState)
		}
		finished <- err
	}()
	// The clock stands still: whatever is handed out stays on its session.
	// Sessions that wait on a busy domain while holding messages never
	// hand them all out: give up after a while rather than hang.
	waitCtx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := tr.waitTaken(waitCtx, domains*each); err != nil {
		tr.mu.Lock()
		taken, groups := tr.taken, slices.Clone(tr.domains)
		tr.mu.Unlock()
		t.Fatalf("%d of %d messages handed out to sessions (groups %v): %v", taken, domains*each, groups, err)
	}
	tr.mu.Lock()
	groups := slices.Clone(tr.domains)
	tr.mu.Unlock()
	if len(groups) != sessions {
		t.Errorf("%d groups handed out, want %d (one per session): %v", len(groups), sessions, groups)
	}
	per := map[string]int{}
	for _, g := range groups {
		if len(g) != 1 {
			t.Errorf("a group holds the domains %v, want one", g)
		}
		for _, d := range g {
			per[d]++
		}
	}
	for _, d := range names {
		if per[d] != perDomain {
			t.Errorf("%s: %d sessions, want %d", d, per[d], perDomain)
		}
	}

	stopDriving := drive(t, clk, time.Second)
	err := <-finished
	stopDriving()
	if err != nil {
		t.Fatal(err)
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for d, p := range tr.peak {
		if p > perDomain {
			t.Errorf("%s: %d sessions at once, limit %d", d, p, perDomain)
		}
	}
}

// A domain at its session limit does not hold up the others: its next
// group waits while groups of other domains are handed out, and it is
// handed out as soon as one of its sessions ends.
func TestHandoutKeepsThePerDomainLimit(t *testing.T) {
	h := newHandout(10, 32, 1024, 1)
	var ds []*store.Delivery
	for i := range 6 {
		dom := "a.example"
		if i >= 4 {
			dom = "b.example"
		}
		ds = append(ds, &store.Delivery{ID: int64(i + 1), Domain: dom})
	}
	if err := h.put(t.Context(), ds); err != nil {
		t.Fatal(err)
	}
	first, _ := h.take()
	second, _ := h.take()
	if first[0].Domain != "a.example" || second[0].Domain != "b.example" {
		t.Fatalf("groups of %s then %s, want a.example then b.example", first[0].Domain, second[0].Domain)
	}
	// Both domains are at their limit: a third session waits, and takes
	// the work of a domain that has a free slot when some comes.
	got := make(chan []*store.Delivery, 1)
	go func() {
		g, _ := h.take()
		got <- g
	}()
	if err := h.put(t.Context(), []*store.Delivery{{ID: 7, Domain: "c.example"}}); err != nil {
		t.Fatal(err)
	}
	if g := <-got; g[0].Domain != "c.example" {
		t.Fatalf("a third session was given %s while it is at its limit", g[0].Domain)
	}
	h.done("a.example", len(first), 0)
	if g, _ := h.take(); g[0].Domain != "a.example" {
		t.Fatalf("after a.example's session ended, a group of %s", g[0].Domain)
	}
}

// When every queued message belongs to a domain at its session limit,
// the queue takes the next claim although it is full, so that the idle
// sessions get the messages of other domains instead of waiting for the
// busy domains' sessions to end.
func TestHandoutTakesMoreWhenOnlyBusyDomainsAreQueued(t *testing.T) {
	h := newHandout(10, 32, 4, 1)
	var as []*store.Delivery
	for i := range 4 {
		as = append(as, &store.Delivery{ID: int64(i + 1), Domain: "a.example"})
	}
	if err := h.put(t.Context(), as); err != nil {
		t.Fatal(err)
	}
	if g, _ := h.take(); g[0].Domain != "a.example" {
		t.Fatalf("first group of %s", g[0].Domain)
	}
	// a.example is at its limit: its 3 queued messages wait, the other
	// 9 sessions are idle. A claim of b.example goes in at once.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	bs := []*store.Delivery{{ID: 5, Domain: "b.example"}, {ID: 6, Domain: "b.example"}}
	if err := h.put(ctx, bs); err != nil {
		t.Fatalf("the queue held only a busy domain's messages and did not take another claim: %v", err)
	}
	if g, _ := h.take(); g[0].Domain != "b.example" {
		t.Fatalf("an idle session was given %s, want b.example", g[0].Domain)
	}
}

// Pipelining pays against a fast receiver and not against a slow one: the
// sessions learn the receiver's time per message from their groups, and
// once it takes a second per message every group is of one message (a
// session holding several would leave the others without work at the
// end), while against a receiver that answers in a millisecond the groups
// stay at the fair share.
func TestGroupsShrinkAgainstASlowReceiver(t *testing.T) {
	const sessions, due, claim = 4, 96, 16
	for _, tc := range []struct {
		name      string
		delay     time.Duration
		gate      Gate
		wantDepth bool // groups after the first round still deeper than one
	}{
		{"slow", time.Second, nil, false},
		{"fast", time.Millisecond, nil, true},
		// A fleet's session connects anew for every group: groups of one
		// would cost a connection per message.
		{"slow, fleet", time.Second, openGate{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, c := setup(t, due)
			clk := throttle.NewFakeClock(time.Now())
			tr := &slowReceiver{clk: clk, delay: tc.delay, changed: make(chan struct{})}
			cfg := config(st, c, tr, clk)
			cfg.Profile.Connections = sessions
			cfg.SendBatch = 32
			cfg.ClaimBatch = claim // the handout is refilled a claim at a time
			cfg.Gate = tc.gate

			stopDriving := drive(t, clk, tc.delay)
			res, err := Run(t.Context(), cfg)
			stopDriving()
			if err != nil {
				t.Fatal(err)
			}
			if res.Stop != StopDone || res.Counts.ByState[queue.Delivered] != due {
				t.Fatalf("stop %s, counts %+v", res.Stop, res.Counts.ByState)
			}
			tr.mu.Lock()
			groups := slices.Clone(tr.groups)
			tr.mu.Unlock()
			// The first round is handed out before any reply came back.
			later := groups[min(sessions, len(groups)):]
			deep := slices.ContainsFunc(later, func(g int) bool { return g > 1 })
			if deep != tc.wantDepth {
				t.Errorf("receiver at %v a message: groups %v; want later groups deeper than one: %v", tc.delay, groups, tc.wantDepth)
			}
		})
	}
}

// drive advances clk by step whenever a session sleeps on it (the slow
// receiver answering), until the returned function is called.
func drive(t *testing.T, clk *throttle.FakeClock, step time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(t.Context())
	driven := make(chan struct{})
	go func() {
		defer close(driven)
		for clk.WaitForSleepers(ctx, 1) == nil {
			clk.Advance(step)
		}
	}()
	return func() { cancel(); <-driven }
}

// openGate is a fleet with every connection slot and start free.
type openGate struct{}

func (openGate) Acquire(context.Context, string) (func(), error) { return func() {}, nil }
func (openGate) Wait(ctx context.Context, _ string) error        { return ctx.Err() }
func (openGate) Allow(string) bool                               { return true }
func (openGate) SlowDown(string)                                 {}

// The time per message a queue remembers is a moving average, kept only
// while it is slow enough to cap a group.
func TestHandoutPace(t *testing.T) {
	h := newHandout(10, 32, 1024, 1)
	h.notePaceLocked("slow.example", time.Second)
	h.notePaceLocked("fast.example", time.Millisecond)
	if got := h.slow["slow.example"]; got != time.Second {
		t.Errorf("slow domain's pace %v, want 1s", got)
	}
	if _, ok := h.slow["fast.example"]; ok {
		t.Error("a fast domain is remembered")
	}
	h.notePaceLocked("slow.example", 0) // nothing was sent: no change
	h.notePaceLocked("slow.example", 200*time.Millisecond)
	if got, want := h.slow["slow.example"], 800*time.Millisecond; got != want {
		t.Errorf("pace after 1s and 200ms = %v, want %v", got, want)
	}
	for range 20 {
		h.notePaceLocked("slow.example", time.Millisecond)
	}
	if _, ok := h.slow["slow.example"]; ok {
		t.Errorf("a domain that became fast is still remembered at %v", h.slow["slow.example"])
	}
}
