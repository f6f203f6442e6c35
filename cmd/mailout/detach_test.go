package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailout/internal/peertest"
	"mailout/internal/smtptest"
	"mailout/internal/store"
	"mailout/internal/store/postgres"
)

// send --detach on PostgreSQL stores the campaign for the workers and says
// how to follow it; nothing is sent until a worker runs, which then sends
// every recipient once.
func TestSendDetachLeavesTheCampaignToTheWorkers(t *testing.T) {
	pg := peertest.Postgres(t)
	f := &fleet{pg: pg, dsn: pg.Schema(t), srv: smtptest.Start(t, smtptest.Options{}), n: 200}
	list := writeList(t, manyRecipients(f.n, "example.org")...)
	r := mailout(t, nil, "send", "--db", f.dsn, "--campaign", "fleet", "--recipients", list,
		"--message", writeMessage(t, testMessage), "--relay", "smtp+insecure://"+f.srv.Addr, "--detach")
	if r.code != 0 || !strings.Contains(r.stdout, "mailout workers") || !strings.Contains(r.stdout, "mailout report fleet") {
		t.Fatalf("send --detach: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if n := len(f.srv.Messages()); n != 0 {
		t.Fatalf("send --detach sent %d messages itself", n)
	}
	db, err := postgres.Open(context.Background(), f.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	f.db = db
	if f.c, err = db.CampaignByName(context.Background(), "fleet"); err != nil || f.c.Status != store.CampaignRunning {
		t.Fatalf("stored: %+v %v; want running", f.c, err)
	}
	f.startWorker(t)
	f.waitDone(t, time.Minute)
	if extra := f.copiesAtReceiver(t); extra != 0 {
		t.Errorf("%d copies beyond one", extra)
	}
}

// With SQLite, send --detach stores the campaign and says that nothing
// sends it until serve (or resume) does.
func TestSendDetachOnSQLiteSaysNothingSendsIt(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	dbPath := filepath.Join(t.TempDir(), "mailout.db")
	r := mailout(t, nil, "send", "--db", dbPath, "--campaign", "later", "--recipients", writeList(t, "a@example.org"),
		"--message", writeMessage(t, testMessage), "--relay", "smtp+insecure://"+srv.Addr, "--detach")
	if r.code != 0 || !strings.Contains(r.stdout, "nothing sends it yet") || !strings.Contains(r.stdout, "mailout resume later") {
		t.Fatalf("send --detach on SQLite: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("%d messages sent", n)
	}
}

// serve on PostgreSQL runs a worker of its own: a campaign left running
// by send --detach is sent by it. --worker=false needs PostgreSQL.
func TestServeRunsALocalWorkerOnPostgres(t *testing.T) {
	if r := mailout(t, nil, "serve", "--db", filepath.Join(t.TempDir(), "m.db"), "--worker=false"); r.code != exitUsage || !strings.Contains(r.stderr, "PostgreSQL") {
		t.Fatalf("serve --worker=false on SQLite: %d %s", r.code, r.stderr)
	}
	pg := peertest.Postgres(t)
	f := &fleet{pg: pg, dsn: pg.Schema(t), srv: smtptest.Start(t, smtptest.Options{}), n: 50}
	r := mailout(t, nil, "send", "--db", f.dsn, "--campaign", "fleet", "--recipients", writeList(t, manyRecipients(f.n, "example.org")...),
		"--message", writeMessage(t, testMessage), "--relay", "smtp+insecure://"+f.srv.Addr, "--detach")
	if r.code != 0 {
		t.Fatalf("send --detach: %d %s", r.code, r.stderr)
	}
	db, err := postgres.Open(context.Background(), f.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	f.db = db
	if f.c, err = db.CampaignByName(context.Background(), "fleet"); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "serve", "--listen", "127.0.0.1:0", "--db", f.dsn)
	cmd.Env = append(os.Environ(), "MAILOUT_SECRET_KEY=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	f.waitDone(t, time.Minute)
	if extra := f.copiesAtReceiver(t); extra != 0 {
		t.Errorf("%d copies beyond one", extra)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve after SIGTERM: %v\n%s", err, out)
	}
}
