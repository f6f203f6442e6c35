package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"time"

	"mailout/internal/queue"
	"mailout/internal/store"
	"mailout/internal/store/migration"
	"mailout/internal/store/storetest"
)

func openTemp(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "mailout.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t) })
}

// TestReopen closes the database mid-campaign and opens the file again:
// campaign, recipients, leases and outcomes are all still there, and opening
// twice more applies no migration again.
func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "mailout.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	c := &store.Campaign{Name: "persist", Route: "sandbox", Message: store.Message{Template: []byte("Subject: s\r\n\r\nx")}}
	i := 0
	next := func() (*store.NewRecipient, error) {
		if i == 50 {
			return nil, nil
		}
		i++
		return &store.NewRecipient{Line: i, Email: "a@b.example", Domain: "b.example", Key: "a@b.example", Fields: map[string]string{"n": "v"}}, nil
	}
	if err := db.ImportCampaign(ctx, c, next); err != nil {
		t.Fatal(err)
	}
	now := time.UnixMilli(time.Now().UnixMilli()).Add(time.Second)
	ds, err := db.Claim(ctx, c.ID, "w", now, time.Minute, 20)
	if err != nil || len(ds) != 20 {
		t.Fatalf("Claim = %d rows, %v", len(ds), err)
	}
	if n, err := db.Record(ctx, []store.AttemptResult{{DeliveryID: ds[0].ID, Attempt: 1, State: queue.Delivered, At: now}}); err != nil || n != 1 {
		t.Fatalf("Record = %d, %v", n, err)
	}
	want, err := db.Counts(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	for range 2 {
		db, err = Open(ctx, path)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		var versions int
		if err := db.r.QueryRowContext(ctx, `SELECT count(*) FROM schema_version`).Scan(&versions); err != nil {
			t.Fatal(err)
		}
		migs, _ := migration.Load(migrationFiles)
		if versions != len(migs) {
			t.Fatalf("schema_version has %d rows after reopening, want %d", versions, len(migs))
		}
		got, err := db.Counts(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range queue.States {
			if got.ByState[st] != want.ByState[st] {
				t.Errorf("after reopen %s = %d, want %d", st, got.ByState[st], want.ByState[st])
			}
		}
		if got.ByState[queue.Sending] != 19 || got.ByState[queue.Delivered] != 1 || got.Total != 50 {
			t.Errorf("after reopen: %v", got.ByState)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "mailout.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.w.ExecContext(ctx, `INSERT INTO schema_version (version, name, applied_at) VALUES (9999, 'future', 0)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if db, err := Open(ctx, path); !errors.Is(err, errTooNew) {
		if err == nil {
			db.Close()
		}
		t.Fatalf("Open of a newer schema: err = %v, want %v", err, errTooNew)
	}
}

func TestOpenBadPath(t *testing.T) {
	for _, p := range []string{"", "a.db?mode=ro", filepath.Join(t.TempDir(), "missing-dir", "x.db")} {
		if db, err := Open(context.Background(), p); err == nil {
			db.Close()
			t.Errorf("Open(%q) succeeded", p)
		}
	}
}

func TestEmbeddedMigrations(t *testing.T) {
	if _, err := migration.Load(migrationFiles); err != nil {
		t.Fatalf("embedded migrations: %v", err)
	}
}

func TestRepeatValues(t *testing.T) {
	got, err := repeatValues("INSERT INTO t (a, b)\nVALUES (?, 'x')\n", 3)
	if err != nil {
		t.Fatal(err)
	}
	if want := "INSERT INTO t (a, b)\nVALUES\n\t(?, 'x'),\n\t(?, 'x'),\n\t(?, 'x')"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if _, err := repeatValues("INSERT INTO t (a) SELECT 1", 2); err == nil {
		t.Fatal("accepted an INSERT without VALUES")
	}
	if _, err := repeatValues("INSERT INTO t (a) VALUES (1) RETURNING a", 2); err == nil {
		t.Fatal("accepted VALUES not at the end")
	}
}

// TestReadersDoNotWaitForWriter holds a write transaction open (as a long
// import does) and reads meanwhile.
func TestReadersDoNotWaitForWriter(t *testing.T) {
	ctx := context.Background()
	db := openTemp(t)
	c := &store.Campaign{Name: "r"}
	if err := db.ImportCampaign(ctx, c, func() (*store.NewRecipient, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE campaigns SET status_reason = 'in flight' WHERE id = ?`, c.ID); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	got, err := db.Campaign(rctx, c.ID)
	if err != nil {
		t.Fatalf("read during a write transaction: %v", err)
	}
	if got.StatusReason != "" {
		t.Fatalf("read saw uncommitted data %q", got.StatusReason)
	}
}

func TestQueryFilesAllPrepared(t *testing.T) {
	names, err := queryFiles.ReadDir("queries")
	if err != nil {
		t.Fatal(err)
	}
	db := openTemp(t)
	src, err := queryText("delivery_insert")
	if err != nil || !strings.Contains(src, "VALUES") {
		t.Fatalf("delivery_insert: %v", err)
	}
	// Every file is prepared once; delivery_insert and subscriber_upsert a
	// second time as a batch, campaign_exists and suppression_get once per
	// handle; record_batch once per chunk size. The accounts', the
	// bounce mailbox's and the consents' statements are prepared apart,
	// pending_get once per handle.
	if n, want := len(db.q.all)+len(db.acct.all)+len(db.bq.all)+len(db.cq.all), len(names)+5+len(recordChunks)-1; n != want {
		t.Fatalf("%d statements prepared for %d query files, want %d", n, len(names), want)
	}
}

// TestQueryPlans pins the plans that keep the hot paths fast on a campaign
// of a million rows: Claim walks the partial due index (no scan, no sort),
// Deliveries streams in id order without a sort, Counts reads only an index.
func TestQueryPlans(t *testing.T) {
	db := openTemp(t)
	args := []any{sql.Named("campaign", 1), sql.Named("owner", "w"), sql.Named("now", 5),
		sql.Named("lease_until", 6), sql.Named("limit", 500), sql.Named("states", `["failed"]`),
		sql.Named("classes", "[]"), sql.Named("due", 5), sql.Named("cursor", 7), sql.Named("first_id", 8),
		sql.Named("last_id", 9), sql.Named("reason", "r"), sql.Named("list", 1), sql.Named("after", 3)}
	for _, tc := range []struct {
		query string
		want  []string
		never []string
	}{
		{"claim", []string{"USING INDEX deliveries_due"}, []string{"TEMP B-TREE", "SCAN deliveries"}},
		{"claim_suspect", []string{"deliveries_suspect"}, []string{"TEMP B-TREE", "SCAN deliveries"}},
		{"claim_fresh", []string{"deliveries_due (campaign_id=? AND next_at=? AND rowid>?)"}, []string{"TEMP B-TREE", "SCAN"}},
		{"claim_cursor", []string{"claims_range"}, []string{"SCAN"}},
		{"claim_release", []string{"deliveries_due (campaign_id=? AND next_at=? AND rowid>? AND rowid<?)"}, []string{"SCAN"}},
		{"counts_claimed", []string{"deliveries_due", "claims_range"}, []string{"SCAN deliveries"}},
		// A fresh row's claim is found by the index, not by a scan of claims.
		{"deliveries_list", []string{"deliveries_campaign (campaign_id=? AND rowid>?)", "claims_range (campaign_id=? AND last_id>?)"}, []string{"TEMP B-TREE", "SCAN d", "SCAN c", "SCAN k"}},
		{"counts_by_state", []string{"COVERING INDEX deliveries_state"}, []string{"SCAN deliveries"}},
		{"counts_next_due", []string{"deliveries_due"}, []string{"SCAN deliveries"}},
		{"release_leases", []string{"deliveries_state"}, []string{"SCAN deliveries"}},
		// A list's subscribers page by id without a sort; counts read an index.
		{"subscribers_list", []string{"subscribers_list (list_id=? AND rowid>?)"}, []string{"TEMP B-TREE", "SCAN subscribers"}},
		{"subscribers_count", []string{"SEARCH subscribers USING COVERING INDEX subscribers_list (list_id=?)"}, nil},
		{"list_get", []string{"SEARCH s USING COVERING INDEX subscribers_list (list_id=?)"}, []string{"SCAN s"}},
	} {
		t.Run(tc.query, func(t *testing.T) {
			text, err := queryText(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			rows, err := db.r.Query("EXPLAIN QUERY PLAN "+text, args...)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var plan []string
			for rows.Next() {
				var id, parent, unused int
				var detail string
				if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, detail)
			}
			all := strings.Join(plan, "\n")
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("plan lacks %q:\n%s", w, all)
				}
			}
			for _, n := range tc.never {
				if strings.Contains(all, n) {
					t.Errorf("plan has %q:\n%s", n, all)
				}
			}
		})
	}
}
