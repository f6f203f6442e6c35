package campaign

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mailout/internal/smtptest"
	"mailout/internal/store"
	"mailout/internal/throttle"
)

// fleetStore makes the one SQLite store of a test a store.Fleet, so that
// several services over it behave as the workers of a fleet: its pause is
// one compare-and-set, and it counts the diagnoses stored.
type fleetStore struct {
	store.Store
	mu        sync.Mutex
	diagnoses atomic.Int32
	// renewFails makes RenewLeases fail, as with a database that is
	// unreachable while the run has nothing to record.
	renewFails atomic.Bool
}

var errUnreachable = errors.New("database unreachable")

func (f *fleetStore) RenewLeases(context.Context, int64, string, time.Time) (int, error) {
	if f.renewFails.Load() {
		return 0, errUnreachable
	}
	return 0, nil
}

func (f *fleetStore) ReleaseOwned(context.Context, int64, string, time.Time) (int, error) {
	return 0, nil
}

func (f *fleetStore) PauseRunning(ctx context.Context, id int64, reason string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.Campaign(ctx, id)
	if err != nil || c.Status != store.CampaignRunning {
		return false, err
	}
	return true, f.SetCampaignStatus(ctx, id, store.CampaignPaused, reason)
}

func (f *fleetStore) SetDiagnosis(ctx context.Context, id int64, d []byte) error {
	f.diagnoses.Add(1)
	return f.Store.SetDiagnosis(ctx, id, d)
}

// workers are n services sharing the store of svc, each its own owner.
func workers(svc *Service, n int) (*fleetStore, []*Service) {
	fs := &fleetStore{Store: svc.Store()}
	out := make([]*Service, n)
	for i := range out {
		out[i] = New(fs, Options{Owner: "worker-" + string(rune('a'+i)), Poll: 20 * time.Millisecond})
	}
	return fs, out
}

// When the relay refuses the account, every worker's breaker trips: the
// campaign is paused once, with one diagnosis, for the whole fleet.
func TestSharedBreakerPausesOnceWithOneDiagnosis(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{Auth: map[string]string{"u": "p"}, RequireAuth: true})
	list := "email,first_name\n"
	for i := range 60 {
		list += fmt.Sprintf("r%d@example.org,R\n", i)
	}
	svc, _, c := newRelayCampaign(t, srv, list)
	fs, ws := workers(svc, 3)
	// A claim of 15 rows (a quarter of the lease at 1 a second): each
	// worker holds rows, and each one's breaker trips.
	slow := throttle.Profile{Name: "test", Connections: 1, Rate: 1}
	var wg sync.WaitGroup
	res := make([]*Result, len(ws))
	errs := make([]error, len(ws))
	for i, w := range ws {
		wg.Go(func() { res[i], errs[i] = w.Run(context.Background(), c, RunOptions{Profile: slow, Shared: true}) })
	}
	wg.Wait()
	// A worker whose breaker tripped ends paused; one that found only
	// recipients deferred by the others' refusals (its claim came late)
	// ends deferred, having stored nothing.
	paused := 0
	for i := range ws {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		switch res[i].Stop {
		case StopPaused:
			paused++
		case StopDeferred:
		default:
			t.Errorf("worker %d ended %s, want paused (or deferred: nothing left to send)", i, res[i].Stop)
		}
	}
	if paused == 0 {
		t.Error("no worker's breaker tripped")
	}
	if n := fs.diagnoses.Load(); n != 1 {
		t.Errorf("%d diagnoses stored, want 1", n)
	}
	got, err := fs.Campaign(context.Background(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != store.CampaignPaused || got.StatusReason == "" || len(got.Diagnosis) == 0 {
		t.Errorf("campaign %s (%q), diagnosis %d bytes; want paused with a reason and a diagnosis", got.Status, got.StatusReason, len(got.Diagnosis))
	}
}

// Another worker's breaker paused the campaign: a worker sending it reads
// the paused status and ends its run once its message in flight is
// recorded, storing nothing over the other worker's reason.
func TestSharedRunFollowsAnotherWorkersPause(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	list := "email,first_name\n"
	for i := range 200 {
		list += fmt.Sprintf("r%d@example.org,R\n", i)
	}
	svc, rt, c := newRelayCampaign(t, srv, list)
	fs, ws := workers(svc, 1)
	done := make(chan *Result, 1)
	go func() {
		res, err := ws[0].Run(context.Background(), c, RunOptions{Relays: rt.Relays, Shared: true,
			Profile: throttle.Profile{Name: "test", Connections: 1, Rate: 50}})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.WaitMessages(ctx, 2); err != nil {
		t.Fatal(err)
	}
	const reason = "auth-failed: 535 5.7.8 from another worker"
	if ok, err := fs.PauseRunning(context.Background(), c.ID, reason); err != nil || !ok {
		t.Fatalf("pause: %v %v", ok, err)
	}
	var res *Result
	select {
	case res = <-done:
	case <-ctx.Done():
		t.Fatal("the run did not follow the fleet's pause")
	}
	if res == nil || res.Stop != StopPaused || res.Reason != reason {
		t.Fatalf("run ended %s (%q), want paused for the other worker's reason", res.Stop, res.Reason)
	}
	got, _ := fs.Campaign(context.Background(), c.ID)
	if got.Status != store.CampaignPaused || got.StatusReason != reason {
		t.Errorf("stored %s (%q), want the other worker's pause kept", got.Status, got.StatusReason)
	}
	if n := len(srv.Messages()); n >= 200 {
		t.Errorf("%d messages sent: the run went on after the pause", n)
	}
	if fs.diagnoses.Load() != 0 {
		t.Errorf("a diagnosis was stored by the worker that did not trip")
	}
}

// A worker that cannot renew its leases stops starting messages before
// they end, even while every result it has is recorded: once its leases
// end, another worker may take its recipients and send them too. The run
// ends as a database failure, which the worker waits out.
func TestSharedRunStopsBeforeItsLeasesEnd(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	list := "email,first_name\n"
	for i := range 400 {
		list += fmt.Sprintf("r%d@example.org,R\n", i)
	}
	svc, rt, c := newRelayCampaign(t, srv, list)
	fs, ws := workers(svc, 1)
	const lease = 600 * time.Millisecond
	done := make(chan error, 1)
	go func() {
		_, err := ws[0].Run(context.Background(), c, RunOptions{Relays: rt.Relays, Shared: true, Lease: lease,
			Profile: throttle.Profile{Name: "test", Connections: 1, Rate: 50}})
		done <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.WaitMessages(ctx, 2); err != nil {
		t.Fatal(err)
	}
	fs.renewFails.Store(true)
	select {
	case err := <-done:
		if !errors.Is(err, ErrStoreFailed) {
			t.Fatalf("run ended with %v, want a database failure", err)
		}
	case <-ctx.Done():
		t.Fatal("the run went on with leases it could not renew")
	}
	if n := len(srv.Messages()); n >= 400 {
		t.Errorf("%d messages sent: the run went on", n)
	}
}

// A shared run needs a store the fleet shares.
func TestSharedRunNeedsAFleetStore(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	svc, rt, c := newRelayCampaign(t, srv, fiveRecipients)
	_, err := svc.Run(context.Background(), c, RunOptions{Relays: rt.Relays, Profile: oneAtATime, Shared: true})
	if err == nil || !errors.Is(err, ErrNotShared) {
		t.Fatalf("shared run over SQLite: %v, want ErrNotShared", err)
	}
}

// A shared run takes the campaign's shared lock: while a process sends
// the campaign alone (it holds the lock exclusively), a worker does not
// send it.
func TestSharedRunWaitsForALoneSender(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	svc, rt, c := newRelayCampaign(t, srv, fiveRecipients)
	fs := &fleetStore{Store: svc.Store()}
	w := New(fs, Options{Owner: "worker-a", SharedLock: func(int64) (func(), error) { return nil, ErrLocked }})
	_, err := w.Run(context.Background(), c, RunOptions{Relays: rt.Relays, Profile: oneAtATime, Shared: true})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("shared run beside a lone sender: %v, want ErrLocked", err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("%d messages sent beside the lone sender", n)
	}
}

// Two services of one process (serve's worker and a later one, or a new
// process that reuses a pid) are different owners of leases and
// different workers of a fleet.
func TestDefaultOwnersDiffer(t *testing.T) {
	a, b := New(nil, Options{}), New(nil, Options{})
	if a.Owner() == b.Owner() {
		t.Fatalf("two services share the owner %q", a.Owner())
	}
}
