package metrics

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"mailout/internal/campaign"
	"mailout/internal/peertest"
	"mailout/internal/store/postgres"
)

// /metrics of a PostgreSQL database shows the fleet as mailout workers
// does: live and gone workers, and the live ones' claimed rows, rate and
// campaigns, as totals.
func TestFleetGauges(t *testing.T) {
	pg := peertest.Postgres(t)
	db, err := postgres.Open(context.Background(), pg.Schema(t))
	if err != nil {
		t.Fatal(err)
	}
	svc := campaign.New(db, campaign.Options{})
	defer svc.Close()
	ctx := context.Background()
	now := time.Now()
	for _, w := range []*postgres.Worker{
		{ID: "a:1:x", Host: "a", PID: 1, Interval: time.Minute, HeartbeatAt: now, Campaigns: []int64{1, 2}, Rate: 10},
		{ID: "b:2:y", Host: "b", PID: 2, Interval: time.Minute, HeartbeatAt: now, Campaigns: []int64{2}, Rate: 5.5},
		{ID: "c:3:z", Host: "c", PID: 3, Interval: time.Second, HeartbeatAt: now.Add(-time.Hour), Campaigns: []int64{3}, Rate: 99},
	} {
		if err := db.Heartbeat(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	m := New(svc)
	defer m.Close()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`mailout_fleet_workers{state="live"} 2`,
		`mailout_fleet_workers{state="gone"} 1`,
		`mailout_fleet_send_rate 15.5`,
		`mailout_fleet_campaigns 2`,
		`mailout_fleet_claimed_recipients 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, grepFleet(body))
		}
	}
}

func grepFleet(body string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "mailout_fleet") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
