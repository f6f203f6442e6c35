package peertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Keys of the PostgreSQL peers in the env file.
const (
	keyPGURL            = "MAILOUT_PEER_PG_URL"
	keyPGRestartURL     = "MAILOUT_PEER_PG_RESTART_URL"
	keyPGRestartCluster = "MAILOUT_PEER_PG_RESTART_CLUSTER"
)

// PostgresPeer is a PostgreSQL server that scripts/test-setup.sh runs on
// loopback: the database of the PostgreSQL store's and the fleet's tests.
type PostgresPeer struct {
	// URL is the test database's URL (role with CREATEDB).
	URL string
	// Cluster is "VERSION/NAME" for pg_ctlcluster; set only on the
	// restartable server.
	Cluster string
}

// Postgres returns the shared PostgreSQL peer; the test is skipped when it
// is not running, or fails when RequirePeers is true. Tests of every
// package share the server, at once: each works in a schema of its own
// (Schema), and none may stop or restart it.
func Postgres(t testing.TB) *PostgresPeer {
	t.Helper()
	return postgresPeer(t, &PostgresPeer{URL: lookupEnv(mustEnvFile(), keyPGURL)})
}

// RestartablePostgres returns a second PostgreSQL server, kept for the
// tests that restart it (Restart): restarting the shared one would cut off
// the tests that other packages run at the same time. One package only
// (cmd/mailout) uses it, and its tests do not run in parallel.
func RestartablePostgres(t testing.TB) *PostgresPeer {
	t.Helper()
	f := mustEnvFile()
	return postgresPeer(t, &PostgresPeer{URL: lookupEnv(f, keyPGRestartURL), Cluster: lookupEnv(f, keyPGRestartCluster)})
}

func postgresPeer(t testing.TB, p *PostgresPeer) *PostgresPeer {
	t.Helper()
	if err := p.probe(t.Context()); err != nil {
		if RequirePeers() {
			t.Fatalf("PostgreSQL peer required (%s=1) but unavailable: %v; %s", requireVar, err, setupHint)
		}
		t.Skipf("PostgreSQL peer unavailable: %v; %s", err, setupHint)
	}
	return p
}

func (p *PostgresPeer) probe(ctx context.Context) error {
	if p.URL == "" {
		return fmt.Errorf("no URL in the peers' env file (scripts/test-setup.sh writes %s and %s)", keyPGURL, keyPGRestartURL)
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.URL)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

// Schema creates an empty schema with a random name, dropped with
// everything in it when the test ends, and returns the peer's URL with
// that schema as the search path: a store opened on it sees only its own
// tables.
func (p *PostgresPeer) Schema(t testing.TB) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	name := "t_" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.URL)
	if err != nil {
		t.Fatalf("postgres peer: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+name); err != nil {
		t.Fatalf("postgres peer: create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, p.URL)
		if err != nil {
			t.Errorf("postgres peer: drop schema %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+name+" CASCADE"); err != nil {
			t.Errorf("postgres peer: drop schema %s: %v", name, err)
		}
	})
	u, err := url.Parse(p.URL)
	if err != nil {
		t.Fatalf("postgres peer: %v", err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}

// Restart restarts the restartable server (pg_ctlcluster … restart, fast
// shutdown: every connection is dropped) and returns when it accepts
// connections again. On the shared server it fails the test.
func (p *PostgresPeer) Restart(t testing.TB) {
	t.Helper()
	p.ctl(t, "restart")
}

func (p *PostgresPeer) ctl(t testing.TB, action string) {
	t.Helper()
	if p.Cluster == "" {
		t.Fatalf("postgres peer: the shared server is never %sed (other packages' tests use it at the same time); use RestartablePostgres", action)
	}
	parts := strings.Split(p.Cluster, "/")
	if len(parts) != 2 {
		t.Fatalf("postgres peer: %s is %q, want \"VERSION/NAME\"", keyPGRestartCluster, p.Cluster)
	}
	args := []string{"--skip-systemctl-redirect", parts[0], parts[1], action, "--", "-w"} // -w: until it accepts connections
	out, err := exec.Command("pg_ctlcluster", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("pg_ctlcluster %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	deadline := time.Now().Add(defaultWaitTime)
	for {
		err := p.probe(context.Background())
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("postgres peer not back after %s: %v", action, err)
		}
		time.Sleep(pollInterval)
	}
}
