package postgres_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"mailout/internal/peertest"
	"mailout/internal/queue"
	"mailout/internal/store"
)

// A list of 100,000 recipients imports in one COPY, streamed: the heap
// does not grow with the rows read. Every row is there, pending and due,
// except those of a suppressed domain and a suppressed address, which are
// stored suppressed with the entry's reason.
func TestImportLarge(t *testing.T) {
	const n = 100_000
	ctx := context.Background()
	db := open(t, peertest.Postgres(t).Schema(t))
	for _, s := range []store.Suppression{
		{Key: "@d3.example", Reason: "domain closed"},
		{Key: "r7@d7.example", Reason: "unsubscribed"},
		{Key: "r13@d3.example", Reason: "complaint"}, // its own entry wins over its domain's
	} {
		if err := db.Suppress(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	// The heap in use after 10,000 rows and after 90,000: a store that
	// held the rows read until the end would hold 80,000 more (over 8 MB
	// of recipients).
	var early, late uint64
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	gen, read := recipients(n), 0
	next := func() (*store.NewRecipient, error) {
		switch read {
		case 10_000:
			early = heap()
		case 90_000:
			late = heap()
		}
		read++
		return gen()
	}
	start := time.Now()
	c := &store.Campaign{Name: "large", Route: "sandbox"}
	if err := db.ImportCampaign(ctx, c, next); err != nil {
		t.Fatal(err)
	}
	t.Logf("imported %d recipients in %v; heap %d KiB after 10,000 rows, %d KiB after 90,000", n, time.Since(start), early>>10, late>>10)
	if late > early+4<<20 {
		t.Errorf("heap grew by %d KiB over 80,000 recipients: the import holds the rows it read", (late-early)>>10)
	}

	got, err := db.Counts(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	suppressed := n/10 + 1 // the domain d3 (every tenth row) and r7
	if got.Total != n || got.ByState[queue.Suppressed] != suppressed || got.ByState[queue.Pending] != n-suppressed {
		t.Fatalf("counts total %d, %v; want %d with %d suppressed", got.Total, got.ByState, n, suppressed)
	}
	if got.NextDue.IsZero() || got.NextDue.After(time.Now()) {
		t.Fatalf("NextDue %v, want due at once", got.NextDue)
	}
	reasons := map[string]string{}
	err = db.Deliveries(ctx, c.ID, store.DeliveryFilter{States: []queue.State{queue.Suppressed}}, func(d *store.Delivery) error {
		if d.Email == "r7@d7.example" || d.Email == "r13@d3.example" || d.Email == "r3@d3.example" {
			reasons[d.Email] = d.Text
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"r7@d7.example": "unsubscribed", "r13@d3.example": "complaint", "r3@d3.example": "domain closed"}
	for k, w := range want {
		if reasons[k] != w {
			t.Errorf("%s suppressed with %q, want %q", k, reasons[k], w)
		}
	}
	var last int64
	rows := 0
	if err := db.Deliveries(ctx, c.ID, store.DeliveryFilter{}, func(d *store.Delivery) error {
		if d.ID <= last {
			t.Fatalf("row %d after %d: not in id order", d.ID, last)
		}
		last = d.ID
		rows++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if rows != n {
		t.Fatalf("Deliveries walked %d rows, want %d", rows, n)
	}
}
