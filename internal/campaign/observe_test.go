package campaign

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"mailout/internal/outcome"
	"mailout/internal/queue"
	"mailout/internal/smtptest"
)

// events collects what Observe reports.
type events struct {
	mu  sync.Mutex
	all []Event
}

func (e *events) add(ev Event) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	e.mu.Unlock()
}

func (e *events) get() []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Event(nil), e.all...)
}

// An observer sees every attempt of a run (class, state, way, the
// server's time to answer) and its end; a server slow to give its final
// reply shows in the latency.
func TestObserveAttemptsAndEnd(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{LocalPartFaults: true})
	svc, _, c := newRelayCampaign(t, srv, "email,first_name\nslow@example.org,S\nunknown@example.org,U\nok@example.org,O\n")
	var got events
	stop := svc.Observe(got.add)
	defer stop()
	if _, err := svc.Run(context.Background(), c, RunOptions{Profile: oneAtATime}); err != nil {
		t.Fatal(err)
	}
	evs := got.get()
	if len(evs) != 4 {
		t.Fatalf("%d events, want 3 attempts and the end: %+v", len(evs), evs)
	}
	byClass := map[outcome.Class]int{}
	for _, ev := range evs[:3] {
		a := ev.Attempt
		if a == nil || ev.CampaignID != c.ID || ev.Route != "relay" || a.Via != "relay:127.0.0.1" {
			t.Fatalf("event %+v (attempt %+v)", ev, a)
		}
		byClass[a.Class]++
		if a.Class == outcome.RecipientUnknown && a.State != queue.Failed {
			t.Errorf("unknown recipient left %s", a.State)
		}
		if a.Latency <= 0 {
			t.Errorf("attempt %+v has no latency", a)
		}
	}
	if byClass[outcome.Delivered] != 2 || byClass[outcome.RecipientUnknown] != 1 {
		t.Fatalf("by class %v", byClass)
	}
	// "slow" is the first row: the server holds its final reply a second.
	if l := evs[0].Attempt.Latency; l < time.Second {
		t.Errorf("slow reply measured %v", l)
	}
	if end := evs[3]; end.Attempt != nil || end.Stop != StopDone || end.Tripped {
		t.Fatalf("end %+v", end)
	}
	// After stop, nothing more is reported.
	stop()
	if _, err := svc.Requeue(context.Background(), c.ID, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Resume(context.Background(), c.ID, RunOptions{Profile: oneAtATime}); err != nil {
		t.Fatal(err)
	}
	if n := len(got.get()); n != 4 {
		t.Fatalf("%d events after stop", n-4)
	}
}

// A run the route's fault pauses (the relay wants AUTH) ends tripped.
func TestObserveBreakerTrip(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{Auth: map[string]string{"u": "p"}, RequireAuth: true})
	svc, _, c := newRelayCampaign(t, srv, fiveRecipients)
	var got events
	defer svc.Observe(got.add)()
	res, err := svc.Run(context.Background(), c, RunOptions{Profile: oneAtATime, NoDiagnosis: true})
	if err != nil {
		t.Fatal(err)
	}
	evs := got.get()
	end := evs[len(evs)-1]
	if res.Stop != StopPaused || end.Stop != StopPaused || !end.Tripped {
		t.Fatalf("stop %s, end %+v", res.Stop, end)
	}
}

// Sending tells a front end that another process holds the campaign's
// lock (mailout send in a terminal) before it tries to run it.
func TestSendingSeesAnotherProcessLock(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "mailout.db")
	svc, err := Open(context.Background(), db, true, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	if busy, err := svc.Sending(7); err != nil || busy {
		t.Fatalf("no lock: sending %v, %v", busy, err)
	}
	unlock, err := FileLock(db + ".campaign-7.lock")
	if err != nil {
		t.Fatal(err)
	}
	if busy, err := svc.Sending(7); err != nil || !busy {
		t.Fatalf("lock held: sending %v, %v", busy, err)
	}
	unlock()
	if busy, err := svc.Sending(7); err != nil || busy {
		t.Fatalf("lock released: sending %v, %v", busy, err)
	}
}
