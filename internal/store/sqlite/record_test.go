package sqlite

import (
	"context"
	"testing"
	"time"

	"mailout/internal/queue"
	"mailout/internal/store"
)

// TestRecordChunks records batches cut into every chunk size, with stale
// results, refunds and a delivery named twice among them, and checks each
// row against what one-by-one recording in the given order would leave.
func TestRecordChunks(t *testing.T) {
	for _, tc := range []struct {
		name  string
		n     int  // results in the batch
		stale int  // every stale-th result carries a wrong attempt (0: none)
		twice bool // the last result names the first delivery again
		want  int
	}{
		{"one", 1, 0, false, 1},
		{"all chunk sizes", 64 + 16 + 4 + 1, 0, false, 85},
		{"stale among them", 64 + 16 + 4 + 1 + 1, 7, false, 86 - 13}, // 0, 7, …, 84 stale,
		{"refunds among them", 20, 0, false, 20},
		{"a delivery twice", 70, 0, true, 70},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := openTemp(t)
			ctx := context.Background()
			c := &store.Campaign{Name: "c", Route: "sandbox"}
			if err := db.ImportCampaign(ctx, c, benchRecipients(tc.n)); err != nil {
				t.Fatal(err)
			}
			now := time.UnixMilli(time.Now().UnixMilli()).Add(time.Second)
			ds, err := db.Claim(ctx, c.ID, "w", now, time.Minute, tc.n)
			if err != nil || len(ds) != tc.n {
				t.Fatalf("Claim = %d rows, %v", len(ds), err)
			}
			rs := make([]store.AttemptResult, len(ds))
			for i, d := range ds {
				rs[i] = store.AttemptResult{DeliveryID: d.ID, Attempt: d.Attempts, State: queue.Delivered,
					Class: "delivered", Code: 250, Text: "ok", MessageID: "m", At: now}
				if tc.stale > 0 && i%tc.stale == 0 {
					rs[i].Attempt++
				}
				if tc.name == "refunds among them" && i%3 == 0 {
					rs[i] = store.AttemptResult{DeliveryID: d.ID, Attempt: d.Attempts, State: queue.Pending,
						NextAt: now, Refund: true, At: now}
				}
			}
			if tc.twice {
				// Applied in order: the first result wins, the second
				// finds the row no longer sending.
				rs[0].State, rs[0].Class = queue.Failed, "first"
				rs[len(rs)-1] = store.AttemptResult{DeliveryID: ds[0].ID, Attempt: 1, State: queue.Delivered, Class: "second", At: now}
				tc.want--
			}
			got, err := db.Record(ctx, rs)
			if err != nil || got != tc.want {
				t.Fatalf("Record = %d, %v; want %d", got, err, tc.want)
			}
			byID := map[int64]store.Delivery{}
			if err := db.Deliveries(ctx, c.ID, store.DeliveryFilter{}, func(d *store.Delivery) error {
				byID[d.ID] = *d
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			for i, r := range rs {
				if tc.twice && i == len(rs)-1 {
					continue
				}
				d := byID[r.DeliveryID]
				switch {
				case tc.stale > 0 && i%tc.stale == 0:
					if d.State != queue.Sending || d.Class != "" {
						t.Errorf("stale result %d: row %s %q, want untouched sending", i, d.State, d.Class)
					}
				case r.Refund:
					if d.State != queue.Pending || d.Attempts != 0 || !d.NextAt.Equal(now) {
						t.Errorf("refund %d: row %s attempts %d next %v", i, d.State, d.Attempts, d.NextAt)
					}
				default:
					if d.State != r.State || d.Class != r.Class || d.Code != r.Code || d.Text != r.Text ||
						d.LeaseOwner != "" || !d.LeaseUntil.IsZero() || !d.UpdatedAt.Equal(now) {
						t.Errorf("result %d: row %+v", i, d)
					}
					if r.State == queue.Delivered && (!d.DeliveredAt.Equal(now) || d.MessageID != "m") {
						t.Errorf("result %d: delivered at %v, Message-ID %q", i, d.DeliveredAt, d.MessageID)
					}
				}
			}
		})
	}
}
