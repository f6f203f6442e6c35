package campaign

import (
	"context"
	"errors"
	"testing"

	"mailout/internal/doctor"
	"mailout/internal/route"
	"mailout/internal/smtptest"
	"mailout/internal/store"
)

// A paused campaign whose diagnosis suggests the relay's right port gets
// it with ApplyFix, and the next run sends there.
func TestApplyFixUsesTheSuggestedRelay(t *testing.T) {
	wrong := smtptest.Start(t, smtptest.Options{})
	right := smtptest.Start(t, smtptest.Options{})
	svc, _, c := newRelayCampaign(t, wrong, fiveRecipients)
	ctx := context.Background()
	if _, err := svc.ApplyFix(ctx, c.ID); !errors.Is(err, ErrNoFix) {
		t.Fatalf("ApplyFix without a diagnosis: %v, want ErrNoFix", err)
	}
	rep := &doctor.Report{Route: route.Relay, Verdict: doctor.Verdict{ID: doctor.VerdictRelayWrongPort, Suggest: "smtp+insecure://" + right.Addr}}
	if err := svc.Store().SetDiagnosis(ctx, c.ID, rep.JSON()); err != nil {
		t.Fatal(err)
	}
	if err := svc.Pause(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	stored, _ := svc.Store().Campaign(ctx, c.ID)
	if got := FixOf(stored); got != "smtp+insecure://"+right.Addr {
		t.Fatalf("FixOf = %q", got)
	}
	fixed, err := svc.ApplyFix(ctx, c.ID)
	if err != nil || fixed != "smtp+insecure://"+right.Addr {
		t.Fatalf("ApplyFix = %q, %v", fixed, err)
	}
	stored, _ = svc.Store().Campaign(ctx, c.ID)
	s, err := SettingsOf(stored)
	if err != nil || len(s.Relays) != 1 || s.Relays[0] != fixed || s.Route != route.Relay {
		t.Fatalf("stored settings %+v, %v; want the fixed relay", s, err)
	}
	res, err := svc.Resume(ctx, c.ID, RunOptions{Profile: oneAtATime})
	if err != nil || res.Stop != StopDone {
		t.Fatalf("resume after the fix: %+v %v", res, err)
	}
	if len(right.Messages()) != 5 || len(wrong.Messages()) != 0 {
		t.Errorf("the right server got %d, the wrong one %d; want all 5 at the suggested relay", len(right.Messages()), len(wrong.Messages()))
	}
}

// The fix keeps where the relay's password comes from, and applies only
// to the relay the suggestion names.
func TestRelayToFixKeepsThePasswordSource(t *testing.T) {
	c := &store.Campaign{Route: route.Relay, Status: store.CampaignPaused,
		RouteConfig: []byte(`{"relays":["smtp://a@other.example:587","smtp://u@relay.example:465?password-env=SMTP_PASSWORD"],"message_id_salt":"x"}`)}
	i, fixed, err := relayToFix(c, "smtps://u@relay.example:465")
	if err != nil || i != 1 || fixed != "smtps://u@relay.example:465?password-env=SMTP_PASSWORD" {
		t.Errorf("relayToFix = %d %q %v", i, fixed, err)
	}
	if _, _, err := relayToFix(c, "smtps://someone@relay.example:465"); !errors.Is(err, ErrNoFix) {
		t.Errorf("a suggestion for another account: %v, want ErrNoFix", err)
	}
}
