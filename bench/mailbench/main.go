// Command mailbench is mailout's throughput harness: it sends a
// campaign of personalised messages with the real mailout binary through
// the relay route (and the direct route) into Postfix's smtp-sink on
// loopback, runs Postfix's smtp-source with the same session count and
// message size as this machine's ceiling, and prints medians of several
// runs: messages per second, CPU seconds per 1,000 messages, peak RSS and
// the ratio mailout / smtp-source.
//
// Place in the flow: outside of it. It drives cmd/mailout as a user would
// (CSV + message file, state in SQLite) and reads only what a user sees:
// the exit status, the --json summary and the child's resource usage.
// For the direct route it serves the MX records itself (internal/mx/mxtest)
// and counts the queries.
//
// With -fleet 1,2,3 -db postgres://… it measures instead a campaign sent
// by that many `mailout worker` processes sharing one PostgreSQL database,
// with the profile's limits held for the whole fleet (fleet.go).
//
// Run it through bench/run.sh, which installs Postfix when smtp-sink is
// missing and builds both binaries.
package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"mailout/internal/mx/mxtest"
)

type options struct {
	mailout, sink, source string
	n, runs, sessions     int
	sizes                 []int
	port                  int
	domains, sinks        int
	domainConns           int // direct route: --domain-connections (0: as many as sessions)
	routes                []string
	delay                 int // seconds smtp-sink waits before its reply to DATA (-w)
	work                  string
	keep                  bool
	// fleet mode (fleet.go): worker counts, the database, the fleet's rate
	fleet     []int
	db        string
	fleetRate float64
}

func main() {
	var o options
	var sizes, routes string
	flag.StringVar(&o.mailout, "mailout", "/tmp/mailout", "the mailout binary")
	flag.StringVar(&o.sink, "smtp-sink", "smtp-sink", "Postfix smtp-sink")
	flag.StringVar(&o.source, "smtp-source", "smtp-source", "Postfix smtp-source")
	flag.IntVar(&o.n, "n", 100000, "recipients (messages) per run")
	flag.IntVar(&o.runs, "runs", 3, "runs of each measurement (medians are printed)")
	flag.IntVar(&o.sessions, "sessions", 10, "SMTP sessions (mailout --connections, smtp-source -s)")
	flag.StringVar(&sizes, "sizes", "1024,20480", "message sizes in bytes, comma-separated")
	flag.StringVar(&routes, "routes", "relay,direct", "routes to measure: relay, direct")
	flag.IntVar(&o.port, "port", 30025, "TCP port of the sinks")
	flag.IntVar(&o.domains, "domains", 100, "direct route: recipient domains")
	flag.IntVar(&o.domainConns, "domain-connections", 0, "direct route: sessions per domain (0: as many as -sessions, no per-domain limit)")
	flag.IntVar(&o.sinks, "sinks", 4, "direct route: sinks on 127.0.0.2 .. 127.0.0.(1+sinks)")
	flag.IntVar(&o.delay, "delay", 0, "seconds the sinks wait before each reply to DATA (smtp-sink -w): a slow receiver, where throughput is set by keeping every session busy")
	flag.StringVar(&o.work, "work", "", "work directory (default: a new temporary one)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory")
	var fleet string
	flag.StringVar(&fleet, "fleet", "", "fleet mode: numbers of `mailout worker` processes to measure, e.g. 1,2,3 (needs -db)")
	flag.StringVar(&o.db, "db", os.Getenv("MAILOUT_BENCH_PG"), "fleet mode: a PostgreSQL URL (each run works in a schema of its own); default $MAILOUT_BENCH_PG")
	flag.Float64Var(&o.fleetRate, "fleet-rate", 0, "fleet mode: the profile's rate in messages per second, for the whole fleet (0: none)")
	flag.Parse()
	for _, s := range strings.Split(sizes, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || v < 300 {
			log.Fatalf("-sizes: %q is not a size of at least 300 bytes", s)
		}
		o.sizes = append(o.sizes, v)
	}
	o.routes = strings.Split(routes, ",")
	if fleet != "" {
		var err error
		if o.fleet, err = parseCounts(fleet); err != nil {
			log.Fatalf("-fleet: %v", err)
		}
		if err := runFleetMode(context.Background(), &o); err != nil {
			log.Fatal(err)
		}
		return
	}
	if err := run(context.Background(), &o); err != nil {
		log.Fatal(err)
	}
}

// measure is one run of one program.
type measure struct {
	msgs       int
	wall       time.Duration // sending only (mailout: after the import)
	cpu        time.Duration // user+system of the child while sending
	rssKB      int64         // peak RSS of the child (whole run)
	importRate float64       // mailout: rows per second of the import
	mxQueries  int           // direct route: MX queries the DNS server got
	aQueries   int
}

func (m measure) rate() float64     { return float64(m.msgs) / m.wall.Seconds() }
func (m measure) cpuPer1k() float64 { return m.cpu.Seconds() * 1000 / float64(m.msgs) }

func run(ctx context.Context, o *options) error {
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
	needDirect := slices.Contains(o.routes, "direct")
	hosts := []string{"127.0.0.1"}
	if needDirect {
		for i := range o.sinks {
			hosts = append(hosts, fmt.Sprintf("127.0.0.%d", i+2))
		}
	}
	var sinks []*exec.Cmd
	defer func() {
		for _, s := range sinks {
			_ = s.Process.Kill()
			_ = s.Wait()
		}
	}()
	for _, h := range hosts {
		s, err := startSink(ctx, o.sink, h, o.port, o.delay)
		if err != nil {
			return err
		}
		sinks = append(sinks, s)
	}
	csv := filepath.Join(o.work, "recipients.csv")
	if err := writeCSV(csv, o.n, o.domains); err != nil {
		return err
	}
	fmt.Printf("mailbench: %d messages per run, %d sessions, %d runs, sinks on port %d (reply to DATA after %d s), work dir %s\n",
		o.n, o.sessions, o.runs, o.port, o.delay, o.work)
	fmt.Printf("%-7s %-6s %-12s %5s %10s %10s %9s %12s %10s\n",
		"size", "route", "program", "run", "msg/s", "cpu s/1k", "rss MB", "import row/s", "dns MX/A")

	type row struct {
		size  int
		route string
		prog  string
		runs  []measure
		src   *row // smtp-source's row of the same size; its run i came just before run i
	}
	var rows []*row
	for _, size := range o.sizes {
		msgFile := filepath.Join(o.work, fmt.Sprintf("message-%d.txt", size))
		if err := writeMessage(msgFile, size); err != nil {
			return err
		}
		src := &row{size: size, route: "relay", prog: "smtp-source"}
		rows = append(rows, src)
		byRoute := map[string]*row{}
		for _, rt := range o.routes {
			byRoute[rt] = &row{size: size, route: rt, prog: "mailout", src: src}
			rows = append(rows, byRoute[rt])
		}
		for i := range o.runs {
			m, err := runSource(ctx, o, size)
			if err != nil {
				return err
			}
			src.runs = append(src.runs, m)
			printRun(size, "relay", "smtp-source", i+1, m)
			for _, rt := range o.routes {
				m, err := runMailout(ctx, o, rt, csv, msgFile, fmt.Sprintf("%d-%s-%d", size, rt, i))
				if err != nil {
					return err
				}
				byRoute[rt].runs = append(byRoute[rt].runs, m)
				printRun(size, rt, "mailout", i+1, m)
			}
		}
	}

	fmt.Printf("\nmedians of %d runs, %d messages each, %d sessions, receiver delay %d s:\n", o.runs, o.n, o.sessions, o.delay)
	fmt.Printf("| size | route | program | msg/s | CPU s / 1,000 msg | peak RSS MB | ratio to smtp-source | median of per-run ratios | import rows/s | DNS MX / A queries |\n")
	fmt.Printf("|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
	var ceiling float64
	for _, r := range rows {
		rate := median(r.runs, func(m measure) float64 { return m.rate() })
		if r.prog == "smtp-source" {
			ceiling = rate
		}
		imp, dnsq := "", ""
		if r.prog == "mailout" {
			imp = fmt.Sprintf("%.0f", median(r.runs, func(m measure) float64 { return m.importRate }))
		}
		if r.route == "direct" {
			dnsq = fmt.Sprintf("%.0f / %.0f", median(r.runs, func(m measure) float64 { return float64(m.mxQueries) }),
				median(r.runs, func(m measure) float64 { return float64(m.aQueries) }))
		}
		// Each mailout run against the smtp-source run just before it: the
		// machine's speed drifts less within a pair than across runs.
		paired := "1.00"
		if r.src != nil {
			ratios := make([]float64, len(r.runs))
			for i, m := range r.runs {
				ratios[i] = m.rate() / r.src.runs[i].rate()
			}
			paired = fmt.Sprintf("%.2f", medianOf(ratios))
		}
		fmt.Printf("| %s | %s | %s | %.0f | %.3f | %.0f | %.2f | %s | %s | %s |\n", sizeName(r.size), r.route, r.prog, rate,
			median(r.runs, measure.cpuPer1k),
			median(r.runs, func(m measure) float64 { return float64(m.rssKB) / 1024 }),
			rate/ceiling, paired, imp, dnsq)
	}
	// Direct against relay to the same sinks, run by run (the target: direct
	// within 0.8x of the relay route).
	relays := map[int]*row{}
	for _, r := range rows {
		if r.prog == "mailout" && r.route == "relay" {
			relays[r.size] = r
		}
	}
	for _, r := range rows {
		rel := relays[r.size]
		if r.route != "direct" || rel == nil {
			continue
		}
		ratios := make([]float64, len(r.runs))
		for i, m := range r.runs {
			ratios[i] = m.rate() / rel.runs[i].rate()
		}
		fmt.Printf("\n%s: direct / relay, median of per-run ratios: %.2f", sizeName(r.size), medianOf(ratios))
	}
	if o.delay > 0 {
		// A receiver that takes delay seconds per message: the most any
		// sender can do is keep every allowed session busy.
		ideal := float64(o.sessions) / float64(o.delay)
		fmt.Printf("\nideal with a %d s receiver: relay %.0f msg/s (sessions / delay)", o.delay, ideal)
		if slices.Contains(o.routes, "direct") {
			dc := cmp.Or(o.domainConns, o.sessions)
			fmt.Printf(", direct %.0f msg/s (min(sessions, domains x per-domain sessions) / delay)",
				float64(min(o.sessions, o.domains*dc))/float64(o.delay))
		}
		for _, r := range rows {
			if r.prog != "mailout" {
				continue
			}
			ideal := float64(o.sessions) / float64(o.delay)
			if r.route == "direct" {
				ideal = float64(min(o.sessions, o.domains*cmp.Or(o.domainConns, o.sessions))) / float64(o.delay)
			}
			fmt.Printf("\n%s %s: mailout / ideal %.2f", sizeName(r.size), r.route,
				median(r.runs, func(m measure) float64 { return m.rate() })/ideal)
		}
	}
	fmt.Println()
	return nil
}

func sizeName(n int) string {
	if n%1024 == 0 {
		return fmt.Sprintf("%d KB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}

func printRun(size int, route, prog string, i int, m measure) {
	imp, dnsq := "", ""
	if prog == "mailout" {
		imp = fmt.Sprintf("%.0f", m.importRate)
	}
	if route == "direct" {
		dnsq = fmt.Sprintf("%d/%d", m.mxQueries, m.aQueries)
	}
	fmt.Printf("%-7s %-6s %-12s %5d %10.0f %10.3f %9.1f %12s %10s\n", sizeName(size), route, prog, i,
		m.rate(), m.cpuPer1k(), float64(m.rssKB)/1024, imp, dnsq)
}

func median(ms []measure, f func(measure) float64) float64 {
	v := make([]float64, len(ms))
	for i, m := range ms {
		v[i] = f(m)
	}
	return medianOf(v)
}

func medianOf(v []float64) float64 {
	slices.Sort(v)
	if len(v) == 0 {
		return 0
	}
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// startSink starts smtp-sink on host:port and waits until it accepts.
func startSink(ctx context.Context, bin, host string, port, delay int) (*exec.Cmd, error) {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	args := []string{}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "nobody") // required when started as root
	}
	if delay > 0 {
		args = append(args, "-w", strconv.Itoa(delay))
	}
	args = append(args, addr, "1024")
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("smtp-sink: %w", err)
	}
	for range 100 {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return cmd, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	return nil, fmt.Errorf("smtp-sink on %s never accepted a connection", addr)
}

// writeCSV writes n recipients over the given number of domains, with three
// merge fields each.
func writeCSV(path string, n, domains int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<16)
	fmt.Fprintln(w, "email,first_name,city,code")
	for i := range n {
		fmt.Fprintf(w, "user%d@d%d.bench.test,Name%d,City%d,C%08x\n", i, i%domains, i, i%50, i*2654435761%(1<<32))
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeMessage writes a template whose rendered message is about size
// bytes: personalised headers and greeting, then paragraphs with a merge
// field in every fourth one, as a typical newsletter has.
func writeMessage(path string, size int) error {
	var b strings.Builder
	b.WriteString("From: Bench Shop <news@sender.bench.test>\nTo: {{.first_name}} <{{.email}}>\n")
	b.WriteString("Subject: {{.first_name}}, our offers in {{.city}}\nList-Unsubscribe: <https://sender.bench.test/u/{{.code}}>\n\n")
	b.WriteString("Dear {{.first_name}},\n\n")
	const para = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore\n" +
		"et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut.\n\n"
	// Headers the renderer adds (Message-ID, Date, MIME-Version,
	// Content-Type, Content-Transfer-Encoding) take about 250 bytes.
	target := size - 250
	for i := 0; b.Len() < target-len(para); i++ {
		if i%4 == 3 {
			b.WriteString("Your code is {{.code}}, valid in {{.city}}.\n\n")
		}
		b.WriteString(para)
	}
	for b.Len() < target-1 {
		b.WriteString("x")
	}
	b.WriteString("\n")
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// runSource runs smtp-source with the same sessions and size.
func runSource(ctx context.Context, o *options, size int) (measure, error) {
	// -d: many messages per session (no disconnect between them).
	cmd := exec.CommandContext(ctx, o.source, "-d", "-s", strconv.Itoa(o.sessions), "-m", strconv.Itoa(o.n),
		"-l", strconv.Itoa(size), "-f", "news@sender.bench.test", "-t", "user@d0.bench.test",
		"-M", "sender.bench.test", fmt.Sprintf("127.0.0.1:%d", o.port))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return measure{}, fmt.Errorf("smtp-source: %w", err)
	}
	wall := time.Since(start)
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return measure{msgs: o.n, wall: wall, cpu: rusageCPU(ru), rssKB: ru.Maxrss}, nil
}

func rusageCPU(ru *syscall.Rusage) time.Duration {
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runMailout sends one campaign with a fresh SQLite database. The send
// phase starts when mailout reports the import done; the CPU used until
// then is read from /proc and subtracted.
func runMailout(ctx context.Context, o *options, route, csv, msg, name string) (measure, error) {
	db := filepath.Join(o.work, name+".db")
	defer func() {
		if o.keep {
			return // for a look at the recipients' timings afterwards
		}
		// The database, its WAL and shared memory, the campaign lock file.
		files, _ := filepath.Glob(db + "*")
		for _, f := range files {
			os.Remove(f)
		}
	}()
	args := []string{"send", "--db", db, "--campaign", "bench-" + name, "--recipients", csv, "--message", msg,
		// The fleet mode's rate (0 elsewhere: none), so that its SQLite
		// row sends under the same profile as the workers.
		"--profile", "fast", "--rate", strconv.FormatFloat(o.fleetRate, 'f', -1, 64), "--connections", strconv.Itoa(o.sessions),
		"--helo", "sender.bench.test", "--wait", "0", "--json",
		// Like smtp-source -d: sessions are never ended for a message count.
		"--per-connection", "0"}
	var dnsSrv *mxtest.Server
	switch route {
	case "relay":
		args = append(args, "--relay", fmt.Sprintf("smtp+insecure://127.0.0.1:%d", o.port))
	case "direct":
		z := mxtest.NewZone()
		for i := range o.domains {
			d := fmt.Sprintf("d%d.bench.test", i)
			z.MX(d, 10, fmt.Sprintf("mx%d.bench.test", i%o.sinks))
		}
		for i := range o.sinks {
			z.A(fmt.Sprintf("mx%d.bench.test", i), fmt.Sprintf("127.0.0.%d", i+2))
		}
		var err error
		if dnsSrv, err = mxtest.New("127.0.0.1:0", z); err != nil {
			return measure{}, err
		}
		defer dnsSrv.Close()
		// No per-domain shaping: the sinks are ours, and the comparison
		// is with the relay route at the same session count.
		args = append(args, "--route", "direct", "--dns", dnsSrv.Addr(), "--allow-loopback-mx",
			"--mx-port", strconv.Itoa(o.port), "--domain-rate", "0", "--domain-connections", strconv.Itoa(cmp.Or(o.domainConns, o.sessions)))
	default:
		return measure{}, fmt.Errorf("route %q: use relay or direct", route)
	}
	cmd := exec.CommandContext(ctx, o.mailout, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return measure{}, err
	}
	var out strings.Builder
	cmd.Stdout = &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return measure{}, err
	}
	var imported time.Time
	var cpuAtImport time.Duration
	var errText strings.Builder
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		line := sc.Text()
		if imported.IsZero() && strings.Contains(line, "recipients imported") {
			imported = time.Now()
			cpuAtImport = procCPU(cmd.Process.Pid)
			continue
		}
		if !strings.HasPrefix(line, "progress ") {
			errText.WriteString(line + "\n")
		}
	}
	werr := cmd.Wait()
	end := time.Now()
	if werr != nil {
		return measure{}, fmt.Errorf("mailout %s: %w\n%s%s", strings.Join(args, " "), werr, errText.String(), out.String())
	}
	var sum struct {
		Delivered int `json:"delivered"`
		Total     int `json:"total"`
	}
	if err := json.Unmarshal([]byte(out.String()), &sum); err != nil {
		return measure{}, fmt.Errorf("mailout summary: %w: %q", err, out.String())
	}
	if sum.Delivered != o.n {
		return measure{}, fmt.Errorf("mailout delivered %d of %d:\n%s", sum.Delivered, o.n, out.String())
	}
	if imported.IsZero() {
		return measure{}, errors.New("mailout never reported the import")
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	m := measure{msgs: o.n, wall: end.Sub(imported), cpu: rusageCPU(ru) - cpuAtImport, rssKB: ru.Maxrss,
		importRate: float64(o.n) / imported.Sub(start).Seconds()}
	if dnsSrv != nil {
		m.mxQueries, m.aQueries = dnsSrv.Queries(dns.TypeMX), dnsSrv.Queries(dns.TypeA)
	}
	return m, nil
}

// procCPU is the user+system time a running process has used so far
// (proc(5): fields 14 and 15 of /proc/PID/stat, in clock ticks of 1/100 s).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces: count from its ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}
