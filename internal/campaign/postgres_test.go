package campaign

import (
	"context"
	"errors"
	"strings"
	"testing"

	"mailout/internal/peertest"
	"mailout/internal/store/postgres"
)

// A postgres:// --db opens the PostgreSQL store, whose campaigns are
// locked with the database's advisory lock: a service sees a campaign
// locked by another process's session as being sent.
func TestOpenPostgres(t *testing.T) {
	ctx := context.Background()
	dsn := peertest.Postgres(t).Schema(t)
	a, err := Open(ctx, dsn, false, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(ctx, dsn, false, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	db, ok := a.Store().(*postgres.DB)
	if !ok {
		t.Fatalf("Open(postgres://…) is a %T", a.Store())
	}
	if sending, err := b.Sending(3); err != nil || sending {
		t.Fatalf("Sending before any lock: %v, %v", sending, err)
	}
	unlock, err := db.LockCampaign(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if sending, err := b.Sending(3); err != nil || !sending {
		t.Fatalf("Sending while another session holds the lock: %v, %v; want true", sending, err)
	}
	if _, err := b.opt.Lock(3); !errors.Is(err, ErrLocked) {
		t.Fatalf("Lock while another session holds it: %v, want ErrLocked", err)
	}
	unlock()
	u, err := b.opt.Lock(3)
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	if sending, err := a.Sending(3); err != nil || !sending {
		t.Fatalf("Sending while b runs it: %v, %v; want true", sending, err)
	}
	u()
}

func TestOpenPostgresUnreachable(t *testing.T) {
	_, err := Open(context.Background(), "postgresql://u:hunter2-secret@127.0.0.1:1/db?connect_timeout=5", false, Options{})
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Open of a closed port: %v, want ErrUnreachable", err)
	}
	if msg := err.Error(); strings.Contains(msg, "hunter2") || !strings.Contains(msg, "127.0.0.1:1") {
		t.Fatalf("error %q: want the host without the password", msg)
	}
}
