package web

import (
	"context"
	"net/http"
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

// TestComposeSendAtCreatesAScheduledCampaign: a "Send at" time, taken in
// the server's local zone, makes the new campaign scheduled; Create and
// start sends nothing before that time, and the campaign page says when
// it starts. A time in the past is refused.
func TestComposeSendAtCreatesAScheduledCampaign(t *testing.T) {
	a := newComposeApp(t, nil, threeSubscribers, campaign.FileLimits{})
	at := time.Now().Add(3 * time.Hour).Truncate(time.Minute)
	v := a.form("start")
	v.Set("send_at", at.Format("2006-01-02T15:04")) // what a datetime-local input sends
	res, _ := a.postForm("/campaigns/new", v)
	cs := a.campaigns()
	if res.StatusCode != http.StatusSeeOther || len(cs) != 1 {
		t.Fatalf("create with send at: %s, %d campaigns", res.Status, len(cs))
	}
	a.runner.Wait()
	c := a.campaign(cs[0].ID)
	if !c.StartAt.Equal(at) {
		t.Errorf("StartAt %v, want %v", c.StartAt, at)
	}
	if got := a.keptMessages(c.ID); got != 0 || c.Status != store.CampaignRunning {
		t.Errorf("before its start time: %d messages kept, status %s; want none, running", got, c.Status)
	}
	_, body := a.get("/campaigns/" + itoa(c.ID))
	if want := "Scheduled for " + at.Format(time.DateTime); !strings.Contains(body, want) {
		t.Errorf("the campaign page lacks %q", want)
	}

	v.Set("name", "past")
	v.Set("send_at", time.Now().Add(-time.Hour).Format("2006-01-02T15:04"))
	if res, _ := a.postForm("/campaigns/new", v); res.StatusCode != http.StatusUnprocessableEntity || len(a.campaigns()) != 1 {
		t.Errorf("send at in the past: %s, %d campaigns; want refused", res.Status, len(a.campaigns()))
	}
}

// TestResumingAPausedScheduledCampaignKeepsItsTime: a scheduled campaign
// paused before its time and resumed waits for its time again, and the
// runner then starts it (a resume before the time is not lost).
func TestResumingAPausedScheduledCampaignKeepsItsTime(t *testing.T) {
	a := newApp(t)
	clk := &offsetClock{}
	a.runner.Clock = clk
	c := a.scheduledCampaign("later", time.Now().Add(time.Hour))
	ctx := context.Background()
	if err := a.svc.Store().SetCampaignStatus(ctx, c.ID, store.CampaignPaused, campaign.ReasonPaused); err != nil {
		t.Fatal(err)
	}
	if err := a.runner.Start(ctx, c.ID); err != nil {
		t.Fatalf("resume: %v", err)
	}
	a.runner.Wait()
	if got := a.campaign(c.ID); got.Status != store.CampaignRunning || a.keptMessages(c.ID) != 0 {
		t.Fatalf("resumed before its time: status %s, %d messages kept; want running (waiting), none", got.Status, a.keptMessages(c.ID))
	}
	clk.set(time.Hour + time.Second)
	if n, err := a.runner.StartDue(ctx); err != nil || n != 1 {
		t.Fatalf("StartDue after its time started %d, %v; want 1", n, err)
	}
	a.runner.Wait()
	if got := a.keptMessages(c.ID); got != 5 {
		t.Errorf("after its time: %d messages kept, want 5", got)
	}
}
