package campaign

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailout/internal/queue"
	"mailout/internal/smtptest"
	"mailout/internal/store"
	"mailout/internal/throttle"
)

// twoProcesses opens two services on one database file, as mailout send
// and the web app do from two processes, and creates a campaign of n
// recipients on the relay route to srv through the first.
func twoProcesses(t *testing.T, srv *smtptest.Server, n int, poll time.Duration) (sender, web *Service, rt *Routing, c *store.Campaign) {
	t.Helper()
	var list strings.Builder
	list.WriteString("email,first_name\n")
	for i := range n {
		list.WriteString("r" + string(rune('a'+i%26)) + string(rune('a'+i/26)) + "@example.org,R\n")
	}
	path := filepath.Join(t.TempDir(), "mailout.db")
	sender, rt, c = newRelayCampaignAt(t, path, srv, list.String(), Options{Poll: poll})
	web, err := Open(context.Background(), path, false, Options{Poll: poll})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { web.Close() })
	return sender, web, rt, c
}

// A campaign sent by one process is paused from another (the web app
// beside mailout send): the run notices within about a second, finishes
// the message in flight and ends as paused by the user, with the rest
// still pending.
func TestPauseFromAnotherProcessStopsTheRun(t *testing.T) {
	g := newGate(1)
	srv := smtptest.Start(t, smtptest.Options{Faults: g.faults})
	sender, web, rt, c := twoProcesses(t, srv, 20, time.Second)
	ctx := context.Background()
	done := make(chan *Result, 1)
	go func() {
		res, err := sender.Run(ctx, c, RunOptions{Relays: rt.Relays, Profile: fivePerSecond})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	<-g.inFlight
	if err := web.Pause(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	close(g.release)
	var res *Result
	select {
	case res = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the run did not notice the pause stored by another process")
	}
	if res == nil || res.Stop != StopPaused || res.Reason != ReasonPaused {
		t.Fatalf("run ended %+v, want paused by the user", res)
	}
	if took := time.Since(paused); took > 3*time.Second {
		t.Errorf("the run stopped %v after the pause, want about a second", took)
	}
	n := res.Counts.ByState
	if n[queue.Pending] == 0 || n[queue.Sending] != 0 || len(srv.Messages()) != n[queue.Delivered] {
		t.Errorf("stored %v, server got %d; want the rest pending and every message sent recorded", n, len(srv.Messages()))
	}
	stored, err := web.Store().Campaign(ctx, c.ID)
	if err != nil || stored.Status != store.CampaignPaused || stored.StatusReason != ReasonPaused {
		t.Errorf("stored status %v (%v), want paused by the user", stored.Status, err)
	}
}

// Cancel from another process ends the run as cancelled.
func TestCancelFromAnotherProcessStopsTheRun(t *testing.T) {
	g := newGate(1)
	srv := smtptest.Start(t, smtptest.Options{Faults: g.faults})
	sender, web, rt, c := twoProcesses(t, srv, 20, 50*time.Millisecond)
	ctx := context.Background()
	done := make(chan *Result, 1)
	go func() {
		res, _ := sender.Run(ctx, c, RunOptions{Relays: rt.Relays, Profile: fivePerSecond})
		done <- res
	}()
	<-g.inFlight
	if err := web.Cancel(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	close(g.release)
	res := <-done
	if res == nil || res.Stop != StopCancelled {
		t.Fatalf("run ended %+v, want cancelled", res)
	}
	if got := len(srv.Messages()); got >= 20 {
		t.Errorf("server got %d messages after the cancel, want the run stopped", got)
	}
}

// Watch in one process follows a campaign sent by another: the counts
// are read from the database as they change, up to the end.
func TestWatchFollowsACampaignRunningInAnotherProcess(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	sender, web, rt, c := twoProcesses(t, srv, 10, 50*time.Millisecond)
	seen := make(chan Progress, 1000)
	stop := web.Watch(c.ID, func(p Progress) { seen <- p })
	defer stop()
	// The run ends before the test does (its store is closed by the
	// test's cleanup): the last progress can arrive before Run returns.
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	defer func() {
		cancel()
		<-ran
	}()
	go func() {
		defer close(ran)
		if _, err := sender.Run(ctx, c, RunOptions{Relays: rt.Relays, Profile: twentyPerSecond}); err != nil {
			t.Error(err)
		}
	}()
	partial := false
	timeout := time.After(20 * time.Second)
	for {
		select {
		case p := <-seen:
			if p.CampaignID != c.ID || p.Total != 10 {
				t.Fatalf("watched %+v, want campaign %d of 10", p, c.ID)
			}
			if p.Delivered > 0 && p.Delivered < 10 {
				partial = true
			}
			if p.Delivered == 10 {
				if !partial {
					t.Error("saw only the end, no progress on the way")
				}
				return
			}
		case <-timeout:
			t.Fatal("Watch did not report the other process's progress to the end")
		}
	}
}

var (
	fivePerSecond   = throttle.Profile{Name: "test", Connections: 1, Rate: 5}
	twentyPerSecond = throttle.Profile{Name: "test", Connections: 1, Rate: 20}
)
