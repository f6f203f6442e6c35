package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailout/internal/campaign"
	"mailout/internal/store"
	"mailout/internal/store/sqlite"
)

// crashedCampaign leaves in db what kill -9 leaves: a campaign stored as
// running, some rows claimed (by a range claim) and never recorded, and no
// process holding the campaign's lock.
func crashedCampaign(t *testing.T, db, name string, total, claimed int) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c := &store.Campaign{Name: name, Status: store.CampaignRunning, Route: "relay", MaxAge: time.Hour, RetryMin: time.Minute,
		Message: store.Message{Template: []byte("From: a@example.com\n\nhi\n")}}
	i := 0
	if err := st.ImportCampaign(ctx, c, func() (*store.NewRecipient, error) {
		if i == total {
			return nil, nil
		}
		i++
		e := fmt.Sprintf("r%d@example.org", i)
		return &store.NewRecipient{Line: i + 1, Email: e, Domain: "example.org", Key: e}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Claim(ctx, c.ID, "dead:1", time.Now(), 10*time.Minute, claimed); err != nil || len(got) != claimed {
		t.Fatalf("Claim = %d rows, %v", len(got), err)
	}
}

// After kill -9 the campaign does not look like it is running: campaigns
// says nobody runs it and how to go on, and the summary and the
// per-recipient report agree on the rows left in flight.
func TestCrashedRunIsShownInterruptedAndReportsAgree(t *testing.T) {
	db := filepath.Join(t.TempDir(), "mailout.db")
	crashedCampaign(t, db, "killed", 5, 3)

	r := mailout(t, nil, "campaigns", "--db", db)
	if r.code != exitOK || !strings.Contains(r.stdout, "running (no runner: interrupted; mailout resume killed)") {
		t.Fatalf("campaigns (exit %d) does not say the run is gone:\n%s%s", r.code, r.stdout, r.stderr)
	}

	r = mailout(t, nil, "report", "killed", "--db", db, "--summary-json")
	if r.code != exitOK {
		t.Fatalf("summary: %d %s", r.code, r.stderr)
	}
	var sum map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil {
		t.Fatal(err)
	}
	rows := map[string]int{}
	for _, row := range reportRows(t, db, "killed") {
		rows[row["state"].(string)]++
	}
	if sum["sending"] != float64(rows["sending"]) || sum["pending"] != float64(rows["pending"]) || rows["sending"] != 3 {
		t.Fatalf("summary says %v sending, %v pending; the report lists %d sending, %d pending (want 3 and 2)",
			sum["sending"], sum["pending"], rows["sending"], rows["pending"])
	}
	if !strings.Contains(fmt.Sprint(sum["reason"]), "no runner") {
		t.Errorf("summary reason %v does not say the run is gone", sum["reason"])
	}
	r = mailout(t, nil, "report", "killed", "--db", db, "--summary")
	if !strings.Contains(r.stdout, "sending     3") || !strings.Contains(r.stdout, "may have been sent") {
		t.Errorf("summary text:\n%s", r.stdout)
	}

	// While a process holds the lock the campaign is running, as stored.
	st, err := sqlite.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	c, err := st.CampaignByName(context.Background(), "killed")
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := campaign.FileLock(fmt.Sprintf("%s.campaign-%d.lock", db, c.ID))
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if r := mailout(t, nil, "campaigns", "--db", db); strings.Contains(r.stdout, "no runner") {
		t.Errorf("campaign with a live runner shown as interrupted:\n%s", r.stdout)
	}
}
