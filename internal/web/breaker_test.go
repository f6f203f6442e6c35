package web

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"mailout/internal/campaign"
	"mailout/internal/doctor"
	"mailout/internal/route"
	"mailout/internal/store"
)

// breakerReason is a status reason the scheduler's breaker writes when a
// fault of the route pauses a run: the outcome class, reply and host.
const breakerReason = "connect-timeout: no answer in 10s (127.0.0.1:2465)"

// pauseAsBreaker pauses c as the breaker does.
func (a *app) pauseAsBreaker(id int64) {
	a.t.Helper()
	if err := a.svc.Store().SetCampaignStatus(context.Background(), id, store.CampaignPaused, breakerReason); err != nil {
		a.t.Fatal(err)
	}
}

// "Why the campaign paused itself" is shown only while the campaign is
// paused by the breaker: not once it is resumed, nor after a pause by the
// user or an interrupted run, though the old diagnosis is still stored;
// and its suggested fix is then refused too.
func TestDiagnosisOnlyWhenPausedByTheBreaker(t *testing.T) {
	a := newApp(t)
	a.signIn()
	c := a.newCampaign("spring", campaign.RouteConfig{Relays: []string{"smtp://u@127.0.0.1:2465"}}, fiveRecipients, false)
	id := itoa(c.ID)
	rep := &doctor.Report{Route: route.Relay, Verdict: doctor.Verdict{ID: doctor.VerdictTLSModeMismatch, Suggest: "smtps://u@127.0.0.1:2465",
		Title: map[string]string{"en": "TLS mode does not match the port"}, Advice: map[string]string{"en": "Use implicit TLS."}}}
	ctx := context.Background()
	if err := a.svc.Store().SetDiagnosis(ctx, c.ID, rep.JSON()); err != nil {
		t.Fatal(err)
	}
	shows := func() bool {
		t.Helper()
		_, page := a.get("/campaigns/" + id)
		diag := strings.Contains(page, "Why the campaign paused itself") || strings.Contains(page, "TLS mode does not match the port")
		if fix := strings.Contains(page, `action="/campaigns/`+id+`/fix"`); fix != diag {
			t.Errorf("diagnosis shown %v, fix button %v", diag, fix)
		}
		return diag
	}

	a.pauseAsBreaker(c.ID)
	if !shows() {
		t.Error("paused by the breaker: no diagnosis")
	}
	// Resumed (as Resume leaves it before the run starts).
	if err := a.svc.Store().SetCampaignStatus(ctx, c.ID, store.CampaignRunning, ""); err != nil {
		t.Fatal(err)
	}
	if shows() {
		t.Error("resumed: the old diagnosis is shown")
	}
	// Paused by the user.
	if err := a.svc.Pause(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if got := a.campaign(c.ID).StatusReason; got != campaign.ReasonPaused {
		t.Fatalf("status reason %q after Pause", got)
	}
	if shows() {
		t.Error("paused by the user: the old diagnosis is shown")
	}
	if res := a.post("/campaigns/"+id+"/fix", nil, nil); res.StatusCode != http.StatusConflict {
		t.Errorf("fix after a user pause: %s, want 409", res.Status)
	}
	// A run interrupted by a signal or a shutdown.
	if err := a.svc.Store().SetCampaignStatus(ctx, c.ID, store.CampaignPaused, "interrupted"); err != nil {
		t.Fatal(err)
	}
	if shows() {
		t.Error("interrupted: the old diagnosis is shown")
	}
	a.pauseAsBreaker(c.ID)
	if !shows() {
		t.Error("paused by the breaker again: no diagnosis")
	}
}
