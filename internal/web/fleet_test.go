package web

import (
	"context"
	"testing"

	"mailout/internal/campaign"
	"mailout/internal/queue"
	"mailout/internal/store"
)

// A runner of a fleet sends nothing itself: starting a paused campaign
// stores it as running for the workers, and neither the interrupted nor
// the scheduled campaigns are run here.
func TestFleetRunnerLeavesTheSendingToTheWorkers(t *testing.T) {
	a := newApp(t)
	a.runner.Fleet = true
	ctx := context.Background()
	c := a.newCampaign("spring", campaign.RouteConfig{}, fiveRecipients, false)
	if err := a.svc.Store().SetCampaignStatus(ctx, c.ID, store.CampaignPaused, campaign.ReasonPaused); err != nil {
		t.Fatal(err)
	}
	if err := a.runner.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if got := a.campaign(c.ID); got.Status != store.CampaignRunning {
		t.Fatalf("after Start: %s, want running for the workers", got.Status)
	}
	if n, err := a.runner.ResumeInterrupted(ctx); err != nil || n != 0 {
		t.Fatalf("ResumeInterrupted: %d %v; want nothing run here", n, err)
	}
	if err := a.runner.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := a.svc.Store().Counts(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if n.ByState[queue.Pending] != 5 || a.runner.Running(c.ID) {
		t.Fatalf("counts %v: the runner sent the campaign itself", n.ByState)
	}
}
