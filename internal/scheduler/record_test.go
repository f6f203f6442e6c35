package scheduler

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mailout/internal/outcome"
	"mailout/internal/queue"
	"mailout/internal/smtptest"
	"mailout/internal/store"
	"mailout/internal/throttle"
	"mailout/internal/transport"
)

// stallingStore holds every Record until the run's caller has cancelled
// (a SIGTERM arriving while a batch is being written), then behaves as a
// database driver does: a statement run under a cancelled context fails.
type stallingStore struct {
	store.Store
	cancelled <-chan struct{} // closed once the caller cancelled the run
	entered   chan struct{}   // closed at the first Record
	once      sync.Once
}

func (s *stallingStore) Record(ctx context.Context, r []store.AttemptResult) (int, error) {
	s.once.Do(func() { close(s.entered) })
	<-s.cancelled
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return s.Store.Record(ctx, r)
}

// A signal that arrives while results are being recorded stops the run as
// an interruption: the results are recorded and no database failure is
// reported.
func TestInterruptWhileRecordingIsNotAStoreFailure(t *testing.T) {
	st, c := setup(t, 5)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ss := &stallingStore{Store: st, cancelled: ctx.Done(), entered: make(chan struct{})}
	go func() {
		select {
		case <-ss.entered:
			cancel()
		case <-t.Context().Done():
		}
	}()
	tr := newFake(func(string, int) outcome.Result { return delivered })
	cfg := config(ss, c, tr, throttle.RealClock())
	// Results are written only when the claim loop finds nothing more to
	// claim, after the five messages went out.
	cfg.RecordEvery, cfg.RecordBatch = time.Hour, 1000
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v; a signal during a write must not be reported as a store failure", err)
	}
	if res.Stop != StopInterrupted && res.Stop != StopDone {
		t.Fatalf("stop %s, want interrupted (or done)", res.Stop)
	}
	n := counts(t, st, c)
	if got := n.ByState[queue.Delivered]; got != 5 || int64(got) != tr.total.Load() {
		t.Fatalf("%d delivered recorded, %d sent; every result must be recorded on shutdown", got, tr.total.Load())
	}
}

// brokenStore records normally until ok results were recorded, then every
// Record fails as a full disk does.
type brokenStore struct {
	store.Store
	mu       sync.Mutex
	ok       int
	recorded int
	failures int
}

var errDiskFull = errors.New("database or disk is full")

func (b *brokenStore) Record(ctx context.Context, r []store.AttemptResult) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.recorded+len(r) > b.ok {
		b.failures++
		return 0, errDiskFull
	}
	n, err := b.Store.Record(ctx, r)
	b.recorded += n
	return n, err
}

// When results cannot be recorded, sending stops at once: the messages a
// real relay received beyond those recorded are bounded by what was in
// flight (plus the batch whose write failed), and the run ends with an
// error naming the store failure.
func TestRecordFailureStopsSendingAtOnce(t *testing.T) {
	const (
		total       = 3000
		connections = 4
		recordBatch = 16
	)
	st, c := setup(t, total)
	var received atomic.Int64
	sink := smtptest.Start(t, smtptest.Options{OnMessage: func(smtptest.Received) { received.Add(1) }})
	acc, _, err := transport.ParseRelayURL("smtp+insecure://"+sink.Addr, func(string) string { return "" }, nil)
	if err != nil {
		t.Fatal(err)
	}
	relay, err := transport.NewRelay(transport.RelayConfig{Accounts: []*transport.RelayAccount{acc},
		LocalName: "sender.example.com", MaxConns: connections})
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	bs := &brokenStore{Store: st, ok: 200}
	cfg := config(bs, c, relay, throttle.RealClock())
	cfg.Profile = throttle.Profile{Name: "test", Connections: connections}
	cfg.RecordBatch, cfg.SendBatch = recordBatch, 32
	res, err := Run(t.Context(), cfg)
	var re *RecordError
	if !errors.As(err, &re) || !errors.Is(err, ErrStoreFailed) || !errors.Is(err, errDiskFull) {
		t.Fatalf("err = %v, want a RecordError wrapping the store's error", err)
	}
	if res == nil || res.Counts == nil {
		t.Fatalf("no counts after the failure: %+v", res)
	}
	recorded := int64(res.Counts.ByState[queue.Delivered])
	if recorded != int64(bs.recorded) {
		t.Fatalf("%d delivered in the store, the wrapper recorded %d", recorded, bs.recorded)
	}
	// In flight when the write failed: the batch being written, the one
	// filling, and per connection the message on the wire and the next
	// one of its group, whose commands may already be on their way.
	bound := int64(2*connections + 2*recordBatch)
	if got := received.Load(); got > recorded+bound {
		t.Fatalf("relay received %d messages, %d recorded: %d sent after the store failed, want at most %d in flight",
			got, recorded, got-recorded, bound)
	}
	if int64(re.Unrecorded) != received.Load()-recorded {
		t.Errorf("error says %d results unrecorded; %d received, %d recorded", re.Unrecorded, received.Load(), recorded)
	}
	if n := counts(t, st, c); n.ByState[queue.Failed] != 0 {
		t.Fatal("recipients marked failed because of our own database error")
	}
}

// A recipient whose mailbox does not exist goes on the suppression list
// with the campaign and the server's reply; other failures do not.
func TestHardBounceIsSuppressed(t *testing.T) {
	st, c := setup(t, 6)
	full := outcome.Result{Class: outcome.MailboxFull, Kind: outcome.KindPermanent, Code: 552, Enhanced: "5.2.2", Text: "over quota"}
	tr := newFake(func(to string, _ int) outcome.Result {
		switch to {
		case "r1@example.org":
			return unknown
		case "r2@example.org":
			return full
		}
		return delivered
	})
	if _, err := Run(t.Context(), config(st, c, tr, throttle.NewAutoClock(time.Now()))); err != nil {
		t.Fatal(err)
	}
	var got []store.Suppression
	if err := st.Suppressions(t.Context(), func(s *store.Suppression) error {
		got = append(got, *s)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Key != "r1@example.org" || got[0].Reason != store.ReasonHardBounce ||
		got[0].Campaign != c.Name || got[0].Code != 550 || got[0].Enhanced != "5.1.1" || got[0].Text != unknown.Text {
		t.Fatalf("suppression list %+v; want only r1@example.org as a hard bounce of %q with 550 5.1.1", got, c.Name)
	}
}
