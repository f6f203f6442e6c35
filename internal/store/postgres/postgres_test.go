package postgres_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"mailout/internal/peertest"
	"mailout/internal/store"
	"mailout/internal/store/postgres"
	"mailout/internal/store/storetest"
)

func open(t *testing.T, dsn string) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	pg := peertest.Postgres(t)
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, pg.Schema(t)) })
}

// Processes that start at once on a new database migrate it once: the
// others wait on the advisory lock and find nothing left to do.
func TestConcurrentOpenMigratesOnce(t *testing.T) {
	pg := peertest.Postgres(t)
	dsn := pg.Schema(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			db, err := postgres.Open(context.Background(), dsn)
			if err == nil {
				db.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	db := open(t, dsn)
	var n, distinct int
	if err := db.Pool().QueryRow(context.Background(), `SELECT count(*), count(DISTINCT version) FROM schema_version`).Scan(&n, &distinct); err != nil {
		t.Fatal(err)
	}
	if n != distinct || n == 0 {
		t.Fatalf("schema_version has %d rows for %d versions", n, distinct)
	}
}

func TestOpenErrorHidesPassword(t *testing.T) {
	_, err := postgres.Open(context.Background(), "postgres://u:hunter2-secret@127.0.0.1:1/db?connect_timeout=2")
	if err == nil {
		t.Fatal("open of a closed port succeeded")
	}
	if got := err.Error(); containsSecret(got) {
		t.Fatalf("error shows the password: %s", got)
	}
}

func containsSecret(s string) bool {
	for i := 0; i+len("hunter2") <= len(s); i++ {
		if s[i:i+len("hunter2")] == "hunter2" {
			return true
		}
	}
	return false
}
