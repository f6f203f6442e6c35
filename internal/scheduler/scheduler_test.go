package scheduler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mailout/internal/outcome"
	"mailout/internal/queue"
	"mailout/internal/store"
	"mailout/internal/store/sqlite"
	"mailout/internal/throttle"
	"mailout/internal/transport"
)

// fakeTransport answers each delivery with what answer says.
type fakeTransport struct {
	mu     sync.Mutex
	calls  map[string]int // per recipient
	total  atomic.Int64
	answer func(to string, n int) outcome.Result
}

func (f *fakeTransport) Deliver(_ context.Context, m *transport.Message) transport.Result {
	f.mu.Lock()
	f.calls[m.To]++
	n := f.calls[m.To]
	f.mu.Unlock()
	f.total.Add(1)
	return transport.Result{Result: f.answer(m.To, n), Via: "fake"}
}
func (f *fakeTransport) Close() error { return nil }

func newFake(answer func(to string, n int) outcome.Result) *fakeTransport {
	return &fakeTransport{calls: map[string]int{}, answer: answer}
}

var (
	delivered  = outcome.Result{Class: outcome.Delivered, Kind: outcome.KindDone}
	greylisted = outcome.Result{Class: outcome.Greylisted, Kind: outcome.KindTemporary, Code: 451, Enhanced: "4.7.1", Text: "greylisted", Reason: "test"}
	authFailed = outcome.Result{Class: outcome.AuthFailed, Kind: outcome.KindPermanentForRun, LocalFault: true, Code: 535, Enhanced: "5.7.8", Text: "Authentication credentials invalid", Reason: "test"}
	timeout    = outcome.Result{Class: outcome.ConnectTimeout, Kind: outcome.KindTemporary, LocalFault: true, Text: "i/o timeout", Reason: "test"}
	unknown    = outcome.Result{Class: outcome.RecipientUnknown, Kind: outcome.KindPermanent, Code: 550, Enhanced: "5.1.1", Text: "no such user", Reason: "test"}
)

// setup stores a campaign of n recipients over the given domains.
func setup(t *testing.T, n int, domains ...string) (store.Store, *store.Campaign) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if len(domains) == 0 {
		domains = []string{"example.org"}
	}
	c := &store.Campaign{Name: "t", Status: store.CampaignRunning, Route: "relay", MaxAge: 24 * time.Hour, RetryMin: 5 * time.Minute,
		Message: store.Message{Template: []byte("From: a@example.com\n\nhi\n")}}
	i := 0
	err = st.ImportCampaign(t.Context(), c, func() (*store.NewRecipient, error) {
		if i == n {
			return nil, nil
		}
		d := domains[i%len(domains)]
		e := fmt.Sprintf("r%d@%s", i, d)
		i++
		return &store.NewRecipient{Line: i + 1, Email: e, Domain: d, Key: e, Fields: map[string]string{}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return st, c
}

func render(d *store.Delivery, _ *bytes.Buffer) (*transport.Message, error) {
	return &transport.Message{DeliveryID: d.ID, CampaignID: d.CampaignID, From: "a@example.com", To: d.Email,
		Domain: d.Domain, MessageID: fmt.Sprintf("%d@example.com", d.ID), Data: []byte("x\r\n"), Attempt: d.Attempts}, nil
}

func config(st store.Store, c *store.Campaign, tr transport.Transport, clk throttle.Clock) Config {
	return Config{Store: st, Campaign: c, Transport: tr, Render: render, Clock: clk, Owner: "test",
		Profile: throttle.Profile{Name: "test", Connections: 4},
		Policy:  queue.Policy{RetryMin: c.RetryMin, MaxAge: c.MaxAge}}
}

func counts(t *testing.T, st store.Store, c *store.Campaign) *store.Counts {
	t.Helper()
	n, err := st.Counts(context.Background(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestGreylistedRecipientsAreRetriedAndDelivered(t *testing.T) {
	st, c := setup(t, 20)
	tr := newFake(func(_ string, n int) outcome.Result {
		if n == 1 {
			return greylisted
		}
		return delivered
	})
	clk := throttle.NewAutoClock(time.Now())
	start := clk.Now()
	cfg := config(st, c, tr, clk)
	cfg.Wait = time.Hour
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stop != StopDone || res.Counts.ByState[queue.Delivered] != 20 {
		t.Fatalf("stop %s, counts %+v", res.Stop, res.Counts.ByState)
	}
	for to, n := range tr.calls {
		if n != 2 {
			t.Errorf("%s: %d attempts, want 2", to, n)
		}
	}
	// The retry waited for the backoff (on the fake clock), not a busy loop.
	if waited := clk.Now().Sub(start); waited < 4*time.Minute {
		t.Errorf("retried after %s, want about RetryMin (5m, ±20%%)", waited)
	}
}

func TestDeferredBeyondWaitReturnsDeferred(t *testing.T) {
	st, c := setup(t, 5)
	tr := newFake(func(string, int) outcome.Result { return greylisted })
	cfg := config(st, c, tr, throttle.NewAutoClock(time.Now()))
	cfg.Wait = time.Minute // shorter than RetryMin: nothing is due within it
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stop != StopDeferred || res.Counts.ByState[queue.Deferred] != 5 || res.Counts.NextDue.IsZero() {
		t.Fatalf("stop %s counts %+v next %v", res.Stop, res.Counts.ByState, res.Counts.NextDue)
	}
	if tr.total.Load() != 5 {
		t.Fatalf("%d attempts, want 5", tr.total.Load())
	}
}

func TestPermanentAndDeliveredAreFinal(t *testing.T) {
	st, c := setup(t, 10)
	tr := newFake(func(to string, _ int) outcome.Result {
		if to == "r3@example.org" {
			return unknown
		}
		return delivered
	})
	res, err := Run(t.Context(), config(st, c, tr, throttle.NewAutoClock(time.Now())))
	if err != nil {
		t.Fatal(err)
	}
	n := res.Counts
	if res.Stop != StopDone || n.ByState[queue.Delivered] != 9 || n.ByState[queue.Failed] != 1 || n.ByClass["recipient-unknown"] != 1 {
		t.Fatalf("stop %s, counts %+v %+v", res.Stop, n.ByState, n.ByClass)
	}
	got, _ := st.Campaign(context.Background(), c.ID)
	if got.Status != store.CampaignDone {
		t.Errorf("campaign status %s, want done", got.Status)
	}
}

func TestAccountFaultPausesWithoutFailingAnyone(t *testing.T) {
	st, c := setup(t, 50)
	tr := newFake(func(string, int) outcome.Result { return authFailed })
	res, err := Run(t.Context(), config(st, c, tr, throttle.NewAutoClock(time.Now())))
	if err != nil {
		t.Fatal(err)
	}
	if res.Stop != StopPaused || res.PauseResult == nil || res.PauseResult.Class != outcome.AuthFailed {
		t.Fatalf("stop %s pause %+v", res.Stop, res.PauseResult)
	}
	n := counts(t, st, c)
	if n.ByState[queue.Failed] != 0 || n.ByState[queue.Sending] != 0 || n.ByState[queue.Pending] != 50 {
		t.Fatalf("after the pause: %+v; want all 50 pending, none failed or leased", n.ByState)
	}
	// No retry storm against the server that refused the credentials.
	if calls := tr.total.Load(); calls > 4 {
		t.Errorf("%d attempts after the first 535; want at most one per connection (4)", calls)
	}
	got, _ := st.Campaign(context.Background(), c.ID)
	if got.Status != store.CampaignPaused || got.StatusReason == "" {
		t.Errorf("campaign %s (%q), want paused with a reason", got.Status, got.StatusReason)
	}
}

func TestBreakerPausesWhenNothingGetsOut(t *testing.T) {
	st, c := setup(t, 100, "a.example", "b.example", "c.example")
	tr := newFake(func(string, int) outcome.Result { return timeout })
	cfg := config(st, c, tr, throttle.NewAutoClock(time.Now()))
	cfg.Breaker.MinDomains = 2
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stop != StopPaused || res.PauseResult.Class != outcome.ConnectTimeout {
		t.Fatalf("stop %s pause %+v", res.Stop, res.PauseResult)
	}
	n := counts(t, st, c)
	if n.ByState[queue.Failed] != 0 {
		t.Fatalf("%d recipients failed for a local fault", n.ByState[queue.Failed])
	}
	if calls := tr.total.Load(); calls > 10+4 {
		t.Errorf("%d attempts before pausing; the breaker should stop after about 10", calls)
	}
}

// runDirect runs a campaign of n recipients over domains, as the direct
// route's breaker sees it (2 domains at least), with a fake transport that
// gives each recipient answer(to).
func runDirect(t *testing.T, n int, domains []string, answer func(to string) outcome.Result) (*Result, store.Store, *store.Campaign) {
	t.Helper()
	st, c := setup(t, n, domains...)
	tr := newFake(func(to string, _ int) outcome.Result { return answer(to) })
	cfg := config(st, c, tr, throttle.NewAutoClock(time.Now()))
	cfg.Breaker.MinDomains = 2
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return res, st, c
}

func TestBreakerIgnoresOneBrokenDomain(t *testing.T) {
	// Direct route: one domain times out, the others work. Not a local fault
	// of ours: no pause.
	res, _, _ := runDirect(t, 30, []string{"broken.example", "ok.example", "ok2.example"}, func(to string) outcome.Result {
		if strings.HasSuffix(to, "@broken.example") {
			return timeout
		}
		return delivered
	})
	if res.Stop == StopPaused {
		t.Fatalf("paused for one broken domain: %s", res.Reason)
	}
	if got := res.Counts.ByState[queue.Delivered]; got != 20 {
		t.Fatalf("%d delivered, want 20", got)
	}
}

// failingStore fails every Record after the first few.
type failingStore struct {
	store.Store
	ok atomic.Int64
}

func (f *failingStore) Record(ctx context.Context, r []store.AttemptResult) (int, error) {
	if f.ok.Add(-1) < 0 {
		return 0, errors.New("disk I/O error")
	}
	return f.Store.Record(ctx, r)
}

func TestStoreFailureStopsSending(t *testing.T) {
	st, c := setup(t, 2000)
	fs := &failingStore{Store: st}
	fs.ok.Store(1)
	tr := newFake(func(string, int) outcome.Result { return delivered })
	cfg := config(fs, c, tr, throttle.NewAutoClock(time.Now()))
	cfg.RecordBatch = 16
	_, err := Run(t.Context(), cfg)
	if !errors.Is(err, ErrStoreFailed) {
		t.Fatalf("err = %v, want ErrStoreFailed", err)
	}
	// Nothing is sent that cannot be recorded: the run stops within a few
	// batches, it does not go through the list.
	if calls := tr.total.Load(); calls > 200 {
		t.Fatalf("%d messages sent after the store failed", calls)
	}
	n := counts(t, st, c)
	if n.ByState[queue.Failed] != 0 {
		t.Fatal("recipients marked failed because of our own database error")
	}
}

func TestInterruptFinishesInFlightAndGivesBackTheRest(t *testing.T) {
	st, c := setup(t, 200)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	tr := newFake(func(string, int) outcome.Result { return delivered })
	var once sync.Once
	inner := tr.answer
	tr.answer = func(to string, n int) outcome.Result {
		if tr.total.Load() >= 50 {
			once.Do(cancel)
		}
		return inner(to, n)
	}
	res, err := Run(ctx, config(st, c, tr, throttle.RealClock()))
	if err != nil {
		t.Fatal(err)
	}
	if res.Stop != StopInterrupted {
		t.Fatalf("stop %s", res.Stop)
	}
	n := counts(t, st, c)
	if n.ByState[queue.Sending] != 0 {
		t.Fatalf("%d rows left leased after a graceful stop", n.ByState[queue.Sending])
	}
	if got := n.ByState[queue.Delivered]; int64(got) != tr.total.Load() {
		t.Fatalf("%d delivered recorded, %d sent: every finished message must be recorded", got, tr.total.Load())
	}
	// The recipients never attempted got their attempt back.
	err = st.Deliveries(context.Background(), c.ID, store.DeliveryFilter{States: []queue.State{queue.Pending}}, func(d *store.Delivery) error {
		if d.Attempts != 0 {
			return fmt.Errorf("%s: attempts %d after a refund", d.Email, d.Attempts)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRenderPanicFailsOneRecipientNotTheRun(t *testing.T) {
	st, c := setup(t, 10)
	tr := newFake(func(string, int) outcome.Result { return delivered })
	cfg := config(st, c, tr, throttle.NewAutoClock(time.Now()))
	cfg.Render = func(d *store.Delivery, b *bytes.Buffer) (*transport.Message, error) {
		if d.Email == "r4@example.org" {
			var m map[string]string
			m["boom"] = "" // a bug met by one recipient's data
		}
		return render(d, b)
	}
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stop != StopDone || res.Counts.ByState[queue.Delivered] != 9 || res.Counts.ByClass["render-failed"] != 1 {
		t.Fatalf("stop %s, counts %+v %+v", res.Stop, res.Counts.ByState, res.Counts.ByClass)
	}
	err = st.Deliveries(context.Background(), c.ID, store.DeliveryFilter{States: []queue.State{queue.Failed}}, func(d *store.Delivery) error {
		if d.Email != "r4@example.org" || d.Text == "" {
			return fmt.Errorf("failed row %s %q", d.Email, d.Text)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
