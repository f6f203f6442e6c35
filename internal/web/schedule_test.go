package web

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"mailout/internal/campaign"
	"mailout/internal/queue"
	"mailout/internal/recipient"
	"mailout/internal/route"
	"mailout/internal/store"
	"mailout/internal/throttle"
)

// offsetClock is the wall clock moved ahead by an offset the test sets.
type offsetClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *offsetClock) set(d time.Duration) { c.mu.Lock(); c.offset = d; c.mu.Unlock() }

func (c *offsetClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *offsetClock) Sleep(ctx context.Context, d time.Duration) error {
	return throttle.RealClock().Sleep(ctx, d)
}

// scheduledCampaign creates a sandbox campaign of five recipients that
// starts at start.
func (a *app) scheduledCampaign(name string, start time.Time) *store.Campaign {
	a.t.Helper()
	ctx := context.Background()
	rt, err := campaign.RouteConfig{}.Check(route.Sandbox, campaign.Env{})
	if err != nil {
		a.t.Fatal(err)
	}
	draft, err := campaign.NewCampaign{Name: name, Routing: rt, MaxAge: time.Hour, RetryMin: time.Minute, StartAt: start,
		Message: &store.Message{Template: []byte(testMessage), TemplateName: "message.txt"}}.Check(campaign.Env{})
	if err != nil {
		a.t.Fatal(err)
	}
	c, _, err := a.svc.Create(ctx, draft, recipient.Rows(ctx, strings.NewReader(fiveRecipients), recipient.Options{}, nil), nil)
	if err != nil {
		a.t.Fatal(err)
	}
	return c
}

func (a *app) keptMessages(id int64) int {
	a.t.Helper()
	n := 0
	if err := a.svc.Store().Messages(context.Background(), id, func(int64, string, string, []byte) error { n++; return nil }); err != nil {
		a.t.Fatal(err)
	}
	return n
}

// TestRunnerStartsScheduledCampaignWhenDue: the runner's ticks leave a
// scheduled campaign alone before its start time, on the runner's clock,
// and send it once that time has come.
func TestRunnerStartsScheduledCampaignWhenDue(t *testing.T) {
	a := newApp(t)
	clk := &offsetClock{}
	a.runner.Clock = clk
	c := a.scheduledCampaign("later", time.Now().Add(time.Hour))
	tick := make(chan time.Time)
	go a.runner.WatchScheduled(tick)
	check := func() {
		// The second tick is taken only once the first check has ended.
		tick <- time.Now()
		tick <- time.Now()
	}

	if n, err := a.runner.ResumeInterrupted(context.Background()); err != nil || n != 0 {
		t.Fatalf("ResumeInterrupted before the start time started %d, %v; want none", n, err)
	}
	check()
	a.runner.Wait()
	if a.runner.Running(c.ID) || a.keptMessages(c.ID) != 0 {
		t.Fatalf("before its start time the campaign ran: running %v, %d messages kept", a.runner.Running(c.ID), a.keptMessages(c.ID))
	}

	clk.set(time.Hour + time.Second)
	check()
	a.runner.Wait()
	if got := a.keptMessages(c.ID); got != 5 {
		t.Fatalf("after its start time: %d messages kept, want 5", got)
	}
	n, err := a.svc.Store().Counts(context.Background(), c.ID)
	if err != nil || n.ByState[queue.Delivered] != 5 {
		t.Fatalf("after its start time: counts %+v, %v; want 5 delivered", n, err)
	}
	if got := a.campaign(c.ID).Status; got != store.CampaignDone {
		t.Errorf("status %s, want done", got)
	}
}
