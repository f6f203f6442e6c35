package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// The fleet mode (-fleet 1,2,3 -db postgres://…) measures a campaign sent
// by 1, 2, 3… `mailout worker` processes sharing one PostgreSQL database,
// against the relay sink(s): `mailout send --db … --detach` stores the
// campaign, the workers are started, and the run lasts until no recipient
// is left pending, sending or deferred (read from the database, as
// `mailout report` would). The profile's connections (-sessions) and rate
// (-fleet-rate) are the fleet's: with a slow receiver (-delay) the ideal
// is sessions / delay whatever the number of workers, so a ratio to the
// ideal above 1 would mean the workers passed the profile's limits
// together, and one well below 1 that sharing them costs throughput.
//
// Each run works in a schema of its own in the database given, dropped
// afterwards (kept with -keep).

// fleetRun is one run of the fleet mode.
type fleetRun struct {
	workers int
	m       measure
}

func runFleetMode(ctx context.Context, o *options) error {
	if o.db == "" {
		return errors.New("-fleet needs -db postgres://… (or MAILOUT_BENCH_PG)")
	}
	if o.work == "" {
		d, err := os.MkdirTemp("", "mailbench-")
		if err != nil {
			return err
		}
		o.work = d
	}
	if !o.keep {
		defer os.RemoveAll(o.work)
	}
	s, err := startSink(ctx, o.sink, "127.0.0.1", o.port, o.delay)
	if err != nil {
		return err
	}
	defer func() {
		_ = s.Process.Kill()
		_ = s.Wait()
	}()
	csv := filepath.Join(o.work, "recipients.csv")
	if err := writeCSV(csv, o.n, o.domains); err != nil {
		return err
	}
	fmt.Printf("mailbench fleet: %d messages per run, %d sessions and %s for the whole fleet, workers %v, %d runs, sink on port %d (reply to DATA after %d s)\n",
		o.n, o.sessions, rateName(o.fleetRate), o.fleet, o.runs, o.port, o.delay)
	fmt.Printf("%-7s %-8s %5s %10s %10s %9s %12s\n", "size", "workers", "run", "msg/s", "cpu s/1k", "rss MB", "import row/s")
	ideal := 0.0
	if o.delay > 0 {
		ideal = float64(o.sessions) / float64(o.delay)
	}
	if o.fleetRate > 0 && (ideal == 0 || o.fleetRate < ideal) {
		ideal = o.fleetRate
	}
	type row struct {
		size, workers int
		runs          []measure
	}
	var rows []*row
	for _, size := range o.sizes {
		msgFile := filepath.Join(o.work, fmt.Sprintf("message-%d.txt", size))
		if err := writeMessage(msgFile, size); err != nil {
			return err
		}
		// The same campaign on SQLite, sent by one `mailout send`: the
		// embedded default the fleet is compared with (workers 0).
		sq := &row{size: size}
		rows = append(rows, sq)
		for i := range o.runs {
			m, err := runMailout(ctx, o, "relay", csv, msgFile, fmt.Sprintf("%d-sqlite-%d", size, i))
			if err != nil {
				return err
			}
			sq.runs = append(sq.runs, m)
			fmt.Printf("%-7s %-8s %5d %10.0f %10.3f %9.1f %12.0f\n", sizeName(size), "sqlite", i+1,
				m.rate(), m.cpuPer1k(), float64(m.rssKB)/1024, m.importRate)
		}
		for _, k := range o.fleet {
			r := &row{size: size, workers: k}
			rows = append(rows, r)
			for i := range o.runs {
				m, err := runFleet(ctx, o, csv, msgFile, k, fmt.Sprintf("%d-w%d-%d", size, k, i))
				if err != nil {
					return err
				}
				r.runs = append(r.runs, m)
				fmt.Printf("%-7s %-8d %5d %10.0f %10.3f %9.1f %12.0f\n", sizeName(size), k, i+1,
					m.rate(), m.cpuPer1k(), float64(m.rssKB)/1024, m.importRate)
			}
		}
	}
	fmt.Printf("\nmedians of %d runs, %d messages each, %d sessions and %s for the fleet, receiver delay %d s:\n",
		o.runs, o.n, o.sessions, rateName(o.fleetRate), o.delay)
	fmt.Printf("| size | workers | msg/s | CPU s / 1,000 msg (all workers) | peak RSS MB (largest worker) | ratio to the ideal | ratio to 1 worker |\n")
	fmt.Printf("|---|---|---:|---:|---:|---:|---:|\n")
	one := map[int]float64{} // size -> msg/s of one worker
	for _, r := range rows {
		if r.workers == 1 {
			one[r.size] = median(r.runs, func(m measure) float64 { return m.rate() })
		}
	}
	for _, r := range rows {
		rate := median(r.runs, func(m measure) float64 { return m.rate() })
		ratio, scale := "-", "-"
		if ideal > 0 {
			ratio = fmt.Sprintf("%.2f", rate/ideal)
		}
		if one[r.size] > 0 {
			scale = fmt.Sprintf("%.2f", rate/one[r.size])
		}
		who := strconv.Itoa(r.workers) + " (PostgreSQL)"
		if r.workers == 0 {
			who = "mailout send (SQLite)"
		}
		fmt.Printf("| %s | %s | %.0f | %.3f | %.0f | %s | %s |\n", sizeName(r.size), who, rate,
			median(r.runs, measure.cpuPer1k),
			median(r.runs, func(m measure) float64 { return float64(m.rssKB) / 1024 }), ratio, scale)
	}
	if ideal > 0 {
		fmt.Printf("\nideal: %.0f msg/s (the lower of sessions / delay and the fleet's rate), whatever the number of workers\n", ideal)
	}
	return nil
}

func rateName(r float64) string {
	if r <= 0 {
		return "no rate limit"
	}
	return fmt.Sprintf("%g msg/s", r)
}

// runFleet sends one campaign with k workers in a fresh schema.
func runFleet(ctx context.Context, o *options, csv, msg string, k int, name string) (measure, error) {
	dsn, drop, err := benchSchema(ctx, o.db, o.keep)
	if err != nil {
		return measure{}, err
	}
	defer drop()
	campaign := "bench-" + name
	args := []string{"send", "--db", dsn, "--campaign", campaign, "--recipients", csv, "--message", msg,
		"--profile", "fast", "--rate", strconv.FormatFloat(o.fleetRate, 'f', -1, 64),
		"--connections", strconv.Itoa(o.sessions), "--helo", "sender.bench.test",
		"--per-connection", "0", "--relay", fmt.Sprintf("smtp+insecure://127.0.0.1:%d", o.port), "--detach"}
	start := time.Now()
	if out, err := exec.CommandContext(ctx, o.mailout, args...).CombinedOutput(); err != nil {
		return measure{}, fmt.Errorf("mailout send --detach: %w\n%s", err, out)
	}
	importRate := float64(o.n) / time.Since(start).Seconds()

	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return measure{}, err
	}
	defer func() { conn.Close(context.Background()) }()

	var workers []*exec.Cmd
	stopAll := func() (cpu time.Duration, rss int64) {
		for _, w := range workers {
			_ = w.Process.Signal(syscall.SIGTERM)
		}
		for _, w := range workers {
			_ = w.Wait()
			if ru, ok := w.ProcessState.SysUsage().(*syscall.Rusage); ok {
				cpu += rusageCPU(ru)
				rss = max(rss, ru.Maxrss)
			}
		}
		workers = nil
		return cpu, rss
	}
	defer stopAll()
	began := time.Now()
	for i := range k {
		logf, err := os.Create(filepath.Join(o.work, fmt.Sprintf("%s-worker%d.log", name, i)))
		if err != nil {
			return measure{}, err
		}
		w := exec.CommandContext(ctx, o.mailout, "worker", "--db", dsn)
		w.Stdout, w.Stderr = logf, logf
		err = w.Start()
		logf.Close()
		if err != nil {
			return measure{}, fmt.Errorf("mailout worker: %w", err)
		}
		workers = append(workers, w)
	}
	// The run ends when nothing is left to send; a paused campaign (the
	// breaker) ends it with an error.
	lastOK := time.Now()
	for {
		var left, delivered int
		var status, reason string
		err := conn.QueryRow(ctx, `SELECT
	(SELECT count(*) FROM deliveries d WHERE d.campaign_id = c.id AND d.state IN ('pending', 'sending', 'deferred')),
	(SELECT count(*) FROM deliveries d WHERE d.campaign_id = c.id AND d.state = 'delivered'),
	c.status, c.status_reason
FROM campaigns c WHERE c.name = $1`, campaign).Scan(&left, &delivered, &status, &reason)
		if err != nil {
			// The database may restart under a long run: ask again on a
			// new connection for up to a minute.
			if lastOK.IsZero() || time.Since(lastOK) > time.Minute {
				return measure{}, fmt.Errorf("read the campaign's progress: %w", err)
			}
			conn.Close(context.Background())
			if c, cerr := pgx.Connect(ctx, dsn); cerr == nil {
				conn = c
			}
			time.Sleep(time.Second)
			continue
		}
		lastOK = time.Now()
		if status == "paused" || status == "cancelled" {
			return measure{}, fmt.Errorf("campaign %s %s: %s (worker logs in %s)", campaign, status, reason, o.work)
		}
		if left == 0 {
			wall := time.Since(began)
			if delivered != o.n {
				return measure{}, fmt.Errorf("%d of %d delivered", delivered, o.n)
			}
			cpu, rss := stopAll()
			return measure{msgs: o.n, wall: wall, cpu: cpu, rssKB: rss, importRate: importRate}, nil
		}
		select {
		case <-ctx.Done():
			return measure{}, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// benchSchema creates a schema of its own in the database at base and
// returns the URL that works in it, and the function that drops it.
func benchSchema(ctx context.Context, base string, keep bool) (string, func(), error) {
	b := make([]byte, 6)
	rand.Read(b)
	name := "mailbench_" + hex.EncodeToString(b)
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", nil, fmt.Errorf("-db: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+name); err != nil {
		return "", nil, fmt.Errorf("-db: create schema: %w", err)
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", nil, errors.New("-db: not a postgres:// URL")
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	drop := func() {
		if keep {
			fmt.Fprintf(os.Stderr, "mailbench: schema %s kept\n", name)
			return
		}
		c, err := pgx.Connect(context.Background(), base)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP SCHEMA "+name+" CASCADE")
	}
	return u.String(), drop, nil
}

// parseCounts reads "1,2,3".
func parseCounts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := strconv.Atoi(f)
		if err != nil || v < 1 {
			return nil, fmt.Errorf("%q is not a number of workers", f)
		}
		out = append(out, v)
	}
	return out, nil
}
