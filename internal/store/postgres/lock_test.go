package postgres_test

import (
	"context"
	"errors"
	"testing"

	"mailout/internal/peertest"
	"mailout/internal/store/postgres"
)

// A campaign's lock is held by one session at a time, across processes
// (here two pools on one database): the second is refused until the first
// lets go, and CampaignRunning sees the holder without taking the lock.
func TestLockCampaign(t *testing.T) {
	ctx := context.Background()
	pg := peertest.Postgres(t)
	dsn := pg.Schema(t)
	a, b := open(t, dsn), open(t, dsn)

	running := func(db *postgres.DB, id int64) bool {
		t.Helper()
		r, err := db.CampaignRunning(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if running(b, 7) {
		t.Fatal("campaign 7 running before anyone locked it")
	}
	unlock, err := a.LockCampaign(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.LockCampaign(ctx, 7); !errors.Is(err, postgres.ErrCampaignLocked) {
		t.Fatalf("second lock of campaign 7: %v, want ErrCampaignLocked", err)
	}
	if !running(b, 7) || !running(a, 7) {
		t.Fatal("campaign 7 locked but not seen running")
	}
	if running(b, 8) {
		t.Fatal("campaign 8 seen running while only 7 is locked")
	}
	// Another campaign, and the same id in another schema, are free.
	u8, err := b.LockCampaign(ctx, 8)
	if err != nil {
		t.Fatalf("lock of campaign 8 while 7 is locked: %v", err)
	}
	u8()
	other := open(t, pg.Schema(t))
	if running(other, 7) {
		t.Fatal("campaign 7 of another schema seen running")
	}
	uo, err := other.LockCampaign(ctx, 7)
	if err != nil {
		t.Fatalf("lock of campaign 7 in another schema: %v", err)
	}
	uo()

	unlock()
	if running(b, 7) {
		t.Fatal("campaign 7 still running after unlock")
	}
	u2, err := b.LockCampaign(ctx, 7)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	u2()
}

// Closing the store while a run holds its campaign's lock does not wait
// for the run: the lock's connection is not the pool's.
func TestLockOutlivesPoolClose(t *testing.T) {
	ctx := context.Background()
	pg := peertest.Postgres(t)
	dsn := pg.Schema(t)
	db, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := db.LockCampaign(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if r, err := open(t, dsn).CampaignRunning(ctx, 1); err != nil || !r {
		t.Fatalf("after the pool closed: running %v, %v; want the lock still held", r, err)
	}
	unlock()
	if r, err := open(t, dsn).CampaignRunning(ctx, 1); err != nil || r {
		t.Fatalf("after unlock: running %v, %v; want free", r, err)
	}
}

// A server that cannot be reached is told apart from a failing query.
func TestUnreachable(t *testing.T) {
	_, err := postgres.Open(context.Background(), "postgres://u:hunter2-secret@127.0.0.1:1/db?connect_timeout=2")
	if !postgres.Unreachable(err) {
		t.Fatalf("open of a closed port: %v; want Unreachable", err)
	}
	if postgres.Unreachable(errors.New("syntax error")) {
		t.Fatal("any error is Unreachable")
	}
}
