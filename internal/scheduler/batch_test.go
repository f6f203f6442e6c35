package scheduler

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"mailout/internal/outcome"
	"mailout/internal/queue"
	"mailout/internal/store"
	"mailout/internal/throttle"
	"mailout/internal/transport"
)

// batchTransport is a fakeTransport that also takes groups, and records
// their sizes.
type batchTransport struct {
	*fakeTransport
	mu     sync.Mutex
	groups []int
}

func (b *batchTransport) DeliverBatch(ctx context.Context, msgs []*transport.Message, done func(int, transport.Result)) []transport.Result {
	b.mu.Lock()
	b.groups = append(b.groups, len(msgs))
	b.mu.Unlock()
	out := make([]transport.Result, len(msgs))
	for i, m := range msgs {
		out[i] = b.Deliver(ctx, m)
		if done != nil {
			done(i, out[i])
		}
	}
	return out
}

func (b *batchTransport) largest() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := 0
	for _, g := range b.groups {
		m = max(m, g)
	}
	return m
}

// With an unpaced profile a Batcher gets groups of up to SendBatch, and
// every recipient's own outcome is recorded once.
func TestBatchesGoToBatcher(t *testing.T) {
	st, c := setup(t, 300, "a.example", "b.example", "c.example")
	tr := &batchTransport{fakeTransport: newFake(func(to string, _ int) outcome.Result {
		if strings.HasPrefix(to, "r7") {
			return unknown
		}
		return delivered
	})}
	cfg := config(st, c, tr, throttle.NewAutoClock(time.Now()))
	cfg.Profile.Connections = 2
	cfg.Profile.DomainConnections = 1
	cfg.SendBatch = 8
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// r7, r70..r79, r700..: 1 + 10 = 11 of the 300 are refused.
	if res.Stop != StopDone || res.Counts.ByState[queue.Delivered] != 289 || res.Counts.ByState[queue.Failed] != 11 {
		t.Fatalf("stop %s, counts %+v", res.Stop, res.Counts.ByState)
	}
	for to, n := range tr.calls {
		if n != 1 {
			t.Errorf("%s attempted %d times", to, n)
		}
	}
	if g := tr.largest(); g < 2 || g > 8 {
		t.Errorf("largest group %d, want 2..8 (SendBatch)", g)
	}
}

// A paced profile never groups: each message waits for its own start.
func TestPacedProfileDoesNotBatch(t *testing.T) {
	st, c := setup(t, 30)
	tr := &batchTransport{fakeTransport: newFake(func(string, int) outcome.Result { return delivered })}
	cfg := config(st, c, tr, throttle.NewAutoClock(time.Now()))
	cfg.Profile.Rate = 5
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Counts.ByState[queue.Delivered] != 30 {
		t.Fatalf("counts %+v", res.Counts.ByState)
	}
	if g := tr.largest(); g > 1 {
		t.Errorf("a group of %d messages at 5 msg/s, want none", g)
	}
}

// A group stops growing at 1 MiB of rendered messages: large messages go
// two by two here, never 32 at once in memory.
func TestGroupsStopAtOneMiB(t *testing.T) {
	st, c := setup(t, 40)
	tr := &batchTransport{fakeTransport: newFake(func(string, int) outcome.Result { return delivered })}
	cfg := config(st, c, tr, throttle.NewAutoClock(time.Now()))
	cfg.Profile.Connections = 1
	big := bytes.Repeat([]byte("x"), 600<<10)
	cfg.Render = func(d *store.Delivery, buf *bytes.Buffer) (*transport.Message, error) {
		m, err := render(d, buf)
		if err == nil {
			m.Data = big
		}
		return m, err
	}
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Counts.ByState[queue.Delivered] != 40 {
		t.Fatalf("counts %+v", res.Counts.ByState)
	}
	if g := tr.largest(); g != 2 {
		t.Errorf("largest group of 600 KiB messages: %d, want 2", g)
	}
}

// sloppyBatcher breaks the report-once contract: it never reports the
// first message of a group and reports every other one twice.
type sloppyBatcher struct{ *batchTransport }

func (b sloppyBatcher) DeliverBatch(ctx context.Context, msgs []*transport.Message, done func(int, transport.Result)) []transport.Result {
	out := b.batchTransport.DeliverBatch(ctx, msgs, nil)
	for i := 1; i < len(out); i++ {
		done(i, out[i])
		done(i, out[i])
	}
	return out
}

// Every recipient is recorded exactly once even when the transport reports
// some results twice and others not at all.
func TestEachResultRecordedOnce(t *testing.T) {
	st, c := setup(t, 100)
	tr := sloppyBatcher{&batchTransport{fakeTransport: newFake(func(string, int) outcome.Result { return delivered })}}
	cfg := config(st, c, tr, throttle.NewAutoClock(time.Now()))
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stop != StopDone || res.Counts.ByState[queue.Delivered] != 100 || res.Attempts != 100 {
		t.Fatalf("stop %s, attempts %d, counts %+v; want done, 100 attempts, 100 delivered", res.Stop, res.Attempts, res.Counts.ByState)
	}
	if g := tr.largest(); g < 2 {
		t.Fatalf("largest group %d: the test needs groups", g)
	}
}
