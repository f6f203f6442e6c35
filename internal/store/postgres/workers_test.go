package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"mailout/internal/peertest"
	"mailout/internal/queue"
	"mailout/internal/store"
	"mailout/internal/store/postgres"
)

// seed stores a running campaign with n deliveries straight in SQL, the
// first held (sending) by owner until leaseUntil, and returns its id.
func seed(t *testing.T, db *postgres.DB, name string, n, held int, owner string, leaseUntil, startAt time.Time) int64 {
	t.Helper()
	ctx := context.Background()
	var id int64
	if err := db.Pool().QueryRow(ctx, `INSERT INTO campaigns (name, created_at, status, start_at) VALUES ($1, 1, 'running', $2) RETURNING id`,
		name, startAt.UnixMilli()).Scan(&id); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		state, lo, lu := "pending", "", int64(0)
		if i < held {
			state, lo, lu = "sending", owner, leaseUntil.UnixMilli()
		}
		if _, err := db.Pool().Exec(ctx, `INSERT INTO deliveries (campaign_id, email, domain, "key", state, attempts, lease_owner, lease_until, created_at, updated_at)
VALUES ($1, $2, 'example.org', $2, $3, 1, $4, $5, 1, 1)`, id, name+string(rune('a'+i))+"@example.org", state, lo, lu); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

func leases(t *testing.T, db *postgres.DB, id int64) map[string][]int64 {
	t.Helper()
	rows, err := db.Pool().Query(context.Background(), `SELECT state, lease_owner, lease_until FROM deliveries WHERE campaign_id = $1 ORDER BY id`, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][]int64{}
	for rows.Next() {
		var state, owner string
		var until int64
		if err := rows.Scan(&state, &owner, &until); err != nil {
			t.Fatal(err)
		}
		out[state+"/"+owner] = append(out[state+"/"+owner], until)
	}
	return out
}

// The heartbeat registers a worker and counts the rows it holds; a
// worker that misses three beats is gone, one that stopped is gone at
// once, one that beats is live.
func TestWorkersHeartbeatAndGone(t *testing.T) {
	pg := peertest.Postgres(t)
	db := open(t, pg.Schema(t))
	ctx := context.Background()
	t0 := time.UnixMilli(time.Now().UnixMilli())
	seed(t, db, "c", 5, 2, "h1:1:a", t0.Add(time.Minute), time.Time{})

	a := &postgres.Worker{ID: "h1:1:a", Host: "h1", PID: 1, HELO: "mx1.example.com", SourceIP: "127.0.0.2",
		HeartbeatAt: t0, Interval: 5 * time.Second, Campaigns: []int64{1}, Sent: 40, Rate: 8}
	b := &postgres.Worker{ID: "h2:2:b", Host: "h2", PID: 2, HeartbeatAt: t0.Add(time.Millisecond), Interval: 5 * time.Second}
	c := &postgres.Worker{ID: "h3:3:c", Host: "h3", PID: 3, HeartbeatAt: t0.Add(2 * time.Millisecond), Interval: 5 * time.Second}
	for _, w := range []*postgres.Worker{a, b, c} {
		if err := db.Heartbeat(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	if a.Claimed != 2 || b.Claimed != 0 {
		t.Fatalf("claimed: a %d, b %d; want 2 and 0", a.Claimed, b.Claimed)
	}
	// 20 s later a and c beat again, b did not; c stops.
	later := t0.Add(20 * time.Second)
	a.HeartbeatAt, c.HeartbeatAt = later, later
	a.Sent = 140
	for _, w := range []*postgres.Worker{a, c} {
		if err := db.Heartbeat(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	if !a.StartedAt.Equal(t0) {
		t.Fatalf("a beat again: started %v, want the first beat %v", a.StartedAt, t0)
	}
	if err := db.StopWorker(ctx, c.ID, later); err != nil {
		t.Fatal(err)
	}
	ws, err := db.Workers(ctx, later.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 3 {
		t.Fatalf("%d workers, want 3: %+v", len(ws), ws)
	}
	got := map[string]postgres.Worker{}
	for _, w := range ws {
		got[w.ID] = w
	}
	if w := got[a.ID]; w.Gone || w.Sent != 140 || w.Claimed != 2 || w.HELO != "mx1.example.com" || w.SourceIP != "127.0.0.2" || len(w.Campaigns) != 1 {
		t.Fatalf("a: %+v", w)
	}
	if !got[b.ID].Gone {
		t.Fatalf("b missed 3 heartbeats and is not gone: %+v", got[b.ID])
	}
	if !got[c.ID].Gone || got[c.ID].StoppedAt.IsZero() {
		t.Fatalf("c stopped and is not gone: %+v", got[c.ID])
	}
}

// Only running campaigns whose start time has come are carried out.
func TestRunningCampaigns(t *testing.T) {
	pg := peertest.Postgres(t)
	db := open(t, pg.Schema(t))
	ctx := context.Background()
	now := time.Now()
	due := seed(t, db, "due", 1, 0, "", time.Time{}, time.Time{})
	seed(t, db, "later", 1, 0, "", time.Time{}, now.Add(time.Hour))
	paused := seed(t, db, "paused", 1, 0, "", time.Time{}, time.Time{})
	if err := db.SetCampaignStatusForTest(ctx, paused, store.CampaignPaused); err != nil {
		t.Fatal(err)
	}
	ids, err := db.RunningCampaigns(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 1 || ids[0] != due {
		t.Fatalf("running and due: %v, want [%d]", ids, due)
	}
}

// RenewLeases extends only the owner's rows of the campaign; ReleaseOwned
// gives them back as a crash release does, flagged possible duplicates.
func TestRenewAndReleaseOwned(t *testing.T) {
	pg := peertest.Postgres(t)
	db := open(t, pg.Schema(t))
	ctx := context.Background()
	now := time.UnixMilli(time.Now().UnixMilli())
	id := seed(t, db, "c", 6, 3, "me", now.Add(time.Second), time.Time{})
	other := seed(t, db, "d", 2, 2, "other", now.Add(time.Second), time.Time{})
	until := now.Add(time.Minute)
	n, err := db.RenewLeases(ctx, id, "me", until)
	if err != nil || n != 3 {
		t.Fatalf("renewed %d, %v; want 3", n, err)
	}
	for _, u := range leases(t, db, id)["sending/me"] {
		if u != until.UnixMilli() {
			t.Fatalf("lease until %d, want %d", u, until.UnixMilli())
		}
	}
	if n, err := db.RenewLeases(ctx, other, "me", until); err != nil || n != 0 {
		t.Fatalf("renewed another's rows: %d, %v", n, err)
	}
	n, err = db.ReleaseOwned(ctx, id, "me", now)
	if err != nil || n != 3 {
		t.Fatalf("released %d, %v; want 3", n, err)
	}
	var pending, dup int
	err = db.Pool().QueryRow(ctx, `SELECT count(*) FILTER (WHERE state = $2), count(*) FILTER (WHERE possible_duplicate AND crashes = 1)
FROM deliveries WHERE campaign_id = $1`, id, string(queue.Pending)).Scan(&pending, &dup)
	if err != nil || pending != 6 || dup != 3 {
		t.Fatalf("after release: %d pending, %d possible duplicates (%v); want 6 and 3", pending, dup, err)
	}
	if l := leases(t, db, other)["sending/other"]; len(l) != 2 {
		t.Fatalf("another worker's rows were released: %v", leases(t, db, other))
	}
}

// Of several workers pausing the campaign at once, one does.
func TestPauseRunningOnce(t *testing.T) {
	pg := peertest.Postgres(t)
	db := open(t, pg.Schema(t))
	ctx := context.Background()
	id := seed(t, db, "c", 1, 0, "", time.Time{}, time.Time{})
	won := make(chan bool, 4)
	for range 4 {
		go func() {
			ok, err := db.PauseRunning(ctx, id, "local-network: 421")
			if err != nil {
				t.Error(err)
			}
			won <- ok
		}()
	}
	n := 0
	for range 4 {
		if <-won {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d workers paused the campaign, want 1", n)
	}
}

// Workers share a campaign's lock; a process that sends it alone
// (mailout send, resume) cannot take it from them, nor they from it.
func TestSharedCampaignLock(t *testing.T) {
	pg := peertest.Postgres(t)
	db := open(t, pg.Schema(t))
	ctx := context.Background()
	u1, err := db.LockCampaignShared(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	u2, err := db.LockCampaignShared(ctx, 7)
	if err != nil {
		t.Fatalf("a second worker: %v", err)
	}
	if _, err := db.LockCampaign(ctx, 7); !errors.Is(err, postgres.ErrCampaignLocked) {
		t.Fatalf("exclusive lock beside workers: %v, want ErrCampaignLocked", err)
	}
	if running, err := db.CampaignRunning(ctx, 7); err != nil || !running {
		t.Fatalf("running: %v %v", running, err)
	}
	u1()
	u2()
	unlock, err := db.LockCampaign(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if _, err := db.LockCampaignShared(ctx, 7); !errors.Is(err, postgres.ErrCampaignLocked) {
		t.Fatalf("a worker beside a lone sender: %v, want ErrCampaignLocked", err)
	}
}
