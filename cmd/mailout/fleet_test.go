package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mailout/internal/campaign"
	"mailout/internal/peertest"
	"mailout/internal/queue"
	"mailout/internal/recipient"
	"mailout/internal/route"
	"mailout/internal/smtptest"
	"mailout/internal/store"
	"mailout/internal/store/postgres"
	"mailout/internal/throttle"
)

// The fleet's tests: three `mailout worker` processes share one relay
// campaign on a PostgreSQL database (a schema of its own per test) and
// send it to one in-process receiver, which counts the copies each
// recipient got.

const (
	fleetConnections = 4
	fleetRecordBatch = 64 // the scheduler's default
	// fleetInFlight is the most one worker can have sent without a
	// record of it: the results not yet flushed (two record batches) and
	// the message whose reply was awaited on each connection.
	fleetInFlight = 2*fleetRecordBatch + fleetConnections
)

// fleet is a database, a receiver and the campaign the workers send.
type fleet struct {
	pg  *peertest.PostgresPeer
	dsn string
	db  *postgres.DB
	srv *smtptest.Server
	c   *store.Campaign
	n   int
}

// newFleet stores a running relay campaign of n recipients to srv, paced
// at rate messages a second for the whole fleet, over at most
// fleetConnections connections in all.
func newFleet(t *testing.T, pg *peertest.PostgresPeer, n int, rate float64) *fleet {
	t.Helper()
	f := &fleet{pg: pg, dsn: pg.Schema(t), srv: smtptest.Start(t, smtptest.Options{}), n: n}
	ctx := context.Background()
	db, err := postgres.Open(ctx, f.dsn)
	if err != nil {
		t.Fatal(err)
	}
	f.db = db
	t.Cleanup(func() { db.Close() })
	svc := campaign.New(db, campaign.Options{})
	rt, err := campaign.RouteConfig{Relays: []string{"smtp+insecure://" + f.srv.Addr}, HELO: "sender.mailout.test"}.Check(route.Sandbox, campaign.Env{})
	if err != nil {
		t.Fatal(err)
	}
	draft, err := campaign.NewCampaign{Name: "fleet", Routing: rt, MaxAge: time.Hour, RetryMin: time.Minute,
		Message: &store.Message{Template: []byte(testMessage), TemplateName: "message.txt"},
		Profile: throttle.Profile{Name: "test", Connections: fleetConnections, Rate: rate}}.Check(campaign.Env{})
	if err != nil {
		t.Fatal(err)
	}
	var csv strings.Builder
	csv.WriteString("email,first_name\n")
	for _, e := range manyRecipients(n, "example.org") {
		fmt.Fprintf(&csv, "%s,Name\n", e)
	}
	c, imported, err := svc.Create(ctx, draft, recipient.Rows(ctx, strings.NewReader(csv.String()), recipient.Options{}, nil), nil)
	if err != nil || imported != n {
		t.Fatalf("create: %d imported, %v", imported, err)
	}
	f.c = c
	return f
}

// workerProc is one `mailout worker` process.
type workerProc struct {
	cmd *exec.Cmd
	out *syncBuffer
}

// syncBuffer is the output of a process, read while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// id is the worker's id, from the line it prints at start.
func (w *workerProc) id(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for {
		for _, line := range strings.Split(w.out.String(), "\n") {
			if rest, ok := strings.CutPrefix(line, "mailout worker "); ok {
				id, _, _ := strings.Cut(rest, ": ")
				return id
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the worker did not say its id:\n%s", w.out)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// startWorker runs `mailout worker` with a short lease (3 s), heartbeat
// (0.5 s: gone after 1.5 s) and poll, so the tests see a dead worker's
// rows taken over within seconds.
func (f *fleet) startWorker(t *testing.T, extra ...string) *workerProc {
	t.Helper()
	args := append([]string{"worker", "--db", f.dsn, "--lease", "3s", "--heartbeat", "500ms", "--poll", "200ms", "--log-level", "info"}, extra...)
	w := &workerProc{cmd: exec.Command(binary, args...), out: &syncBuffer{}}
	w.cmd.Stdout, w.cmd.Stderr = w.out, w.out
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = w.cmd.Process.Kill()
		_ = w.cmd.Wait()
		if t.Failed() {
			t.Logf("worker output:\n%s", w.out)
		}
	})
	return w
}

// waitDone polls the store until the campaign is done.
func (f *fleet) waitDone(t *testing.T, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), within)
	defer cancel()
	for {
		c, err := f.db.Campaign(ctx, f.c.ID)
		if err == nil && c.Status == store.CampaignDone {
			break
		}
		select {
		case <-ctx.Done():
			n, _ := f.db.Counts(context.Background(), f.c.ID)
			t.Fatalf("the campaign is not done after %s: %+v; %d messages at the receiver", within, n, len(f.srv.Messages()))
		case <-time.After(100 * time.Millisecond):
		}
	}
	n, err := f.db.Counts(ctx, f.c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if n.ByState[queue.Delivered] != f.n {
		t.Fatalf("stored %v, want all %d delivered", n.ByState, f.n)
	}
}

// copiesAtReceiver checks that every recipient got the message and
// returns how many copies beyond one the receiver got in all.
func (f *fleet) copiesAtReceiver(t *testing.T) (extra int) {
	t.Helper()
	got := copies(f.srv)
	for _, e := range manyRecipients(f.n, "example.org") {
		switch k := got[e]; {
		case k == 0:
			t.Errorf("%s never received the message", e)
		case k > 1:
			extra += k - 1
		}
	}
	if len(got) != f.n {
		t.Errorf("%d distinct recipients at the receiver, want %d", len(got), f.n)
	}
	return extra
}

// mostInAnySecond is the most messages accepted within one second.
func mostInAnySecond(msgs []smtptest.Received) int {
	at := make([]time.Time, len(msgs))
	for i, m := range msgs {
		at[i] = m.At
	}
	slices.SortFunc(at, time.Time.Compare)
	most := 0
	for i, j := 0, 0; j < len(at); j++ {
		for at[j].Sub(at[i]) >= time.Second {
			i++
		}
		most = max(most, j-i+1)
	}
	return most
}

// workersJSON reads `mailout workers --json`.
func workersJSON(t *testing.T, dsn string) map[string]workerJSON {
	t.Helper()
	r := mailout(t, nil, "workers", "--db", dsn, "--json")
	if r.code != 0 {
		t.Fatalf("workers: %d %s", r.code, r.stderr)
	}
	var ws []workerJSON
	if err := json.Unmarshal([]byte(r.stdout), &ws); err != nil {
		t.Fatalf("workers --json: %v\n%s", err, r.stdout)
	}
	out := map[string]workerJSON{}
	for _, w := range ws {
		out[w.ID] = w
	}
	return out
}

// Three workers share a campaign: every recipient gets the message once,
// each worker sends part of it, the store says done; stopped with
// SIGTERM, each exits cleanly and is listed as gone.
func TestFleetThreeWorkersDeliverEachRecipientOnce(t *testing.T) {
	const rate = 150
	f := newFleet(t, peertest.Postgres(t), 1500, rate)
	ws := []*workerProc{f.startWorker(t), f.startWorker(t), f.startWorker(t)}
	f.waitDone(t, 2*time.Minute)
	if extra := f.copiesAtReceiver(t); extra != 0 {
		t.Errorf("%d copies beyond one: nobody died, nobody may get the message twice", extra)
	}
	// The profile's limits hold for the fleet, not per worker, counted
	// at the receiver: connections open at once, and messages in any
	// second (the rate, plus the one tenth of a second of it each worker
	// may hold ready, plus one message per connection on the way).
	if peak := f.srv.PeakConnections(); peak > fleetConnections {
		t.Errorf("%d connections open at once at the receiver, the profile allows %d for the whole fleet", peak, fleetConnections)
	}
	if most, limit := mostInAnySecond(f.srv.Messages()), rate+3*rate/10+fleetConnections; most > limit {
		t.Errorf("%d messages arrived within one second; the fleet's rate is %d/s (at most %d with its allowances)", most, rate, limit)
	}
	// Every worker took part (each heartbeat counts its attempts).
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var live map[string]workerJSON
	for {
		live = workersJSON(t, f.dsn)
		total := int64(0)
		for _, w := range live {
			total += w.Sent
		}
		if total == int64(f.n) || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond) // the next heartbeat (0.5 s) brings the last counts
	}
	if len(live) != 3 {
		t.Fatalf("%d workers listed, want 3", len(live))
	}
	for _, w := range ws {
		got := live[w.id(t)]
		if got.Gone || got.Sent == 0 {
			t.Errorf("worker %s: gone %v, sent %d; want a live worker that sent part of the list", got.ID, got.Gone, got.Sent)
		}
	}
	for _, w := range ws {
		if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	for _, w := range ws {
		if err := w.cmd.Wait(); err != nil {
			t.Errorf("worker stopped by SIGTERM: %v\n%s", err, w.out)
		}
	}
	for id, w := range workersJSON(t, f.dsn) {
		if !w.Gone || w.StoppedAt.IsZero() {
			t.Errorf("worker %s after SIGTERM: %+v; want gone, stopped", id, w)
		}
	}
}

// SIGKILL one of three workers mid-campaign: the others take its rows
// when its leases end and finish; every recipient got the message, and
// the copies beyond one are at most what the killed worker had in flight.
// `mailout workers` shows it as gone.
func TestFleetWorkerKilledMidCampaign(t *testing.T) {
	f := newFleet(t, peertest.Postgres(t), 3000, 300)
	ws := []*workerProc{f.startWorker(t), f.startWorker(t), f.startWorker(t)}
	killed := ws[0].id(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := f.srv.WaitMessages(ctx, 600); err != nil {
		t.Fatal(err)
	}
	if err := ws[0].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = ws[0].cmd.Wait()
	f.waitDone(t, 2*time.Minute)
	extra := f.copiesAtReceiver(t)
	t.Logf("%d copies beyond one after the kill", extra)
	if extra > fleetInFlight {
		t.Errorf("%d copies beyond one; a killed worker can have re-sent at most %d", extra, fleetInFlight)
	}
	// Gone after three missed heartbeats (1.5 s); the others live.
	for {
		listed := workersJSON(t, f.dsn)
		if len(listed) != 3 {
			t.Fatalf("%d workers listed, want 3: %+v", len(listed), listed)
		}
		if listed[killed].Gone {
			for _, w := range ws[1:] {
				if listed[w.id(t)].Gone {
					t.Errorf("live worker %s shown as gone", w.id(t))
				}
			}
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the killed worker %s is not shown as gone: %+v", killed, listed[killed])
		case <-time.After(100 * time.Millisecond):
		}
	}
	// The text table says so too.
	r := mailout(t, nil, "workers", "--db", f.dsn)
	if r.code != 0 || !strings.Contains(r.stdout, killed) || !strings.Contains(r.stdout, "gone (no heartbeat)") {
		t.Errorf("workers table: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// PostgreSQL restarts mid-campaign (every connection dropped): the
// workers stop sending, reconnect, and finish; nobody is lost.
func TestFleetSurvivesDatabaseRestart(t *testing.T) {
	f := newFleet(t, peertest.RestartablePostgres(t), 3000, 300)
	ws := []*workerProc{f.startWorker(t), f.startWorker(t), f.startWorker(t)}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := f.srv.WaitMessages(ctx, 600); err != nil {
		t.Fatal(err)
	}
	f.pg.Restart(t)
	// The test's own pool reconnects by itself.
	f.waitDone(t, 3*time.Minute)
	if extra := f.copiesAtReceiver(t); extra > len(ws)*fleetInFlight {
		t.Errorf("%d copies beyond one; at most %d can be in flight in three workers", extra, len(ws)*fleetInFlight)
	}
	for _, w := range ws {
		if !strings.Contains(w.out.String(), "the database is back") {
			t.Errorf("worker %s did not say it lost and got back the database:\n%s", w.id(t), w.out)
		}
	}
}

// A SQLite database is sent by one process: the worker refuses it.
func TestWorkerRefusesSQLite(t *testing.T) {
	r := mailout(t, nil, "worker", "--db", "mailout.db")
	if r.code != exitUsage || !strings.Contains(r.stderr, "PostgreSQL") || !strings.Contains(r.stderr, "mailout send") {
		t.Fatalf("worker on SQLite: %d\n%s", r.code, r.stderr)
	}
}
