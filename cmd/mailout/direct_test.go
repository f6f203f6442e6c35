package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"mailout/internal/mx/mxtest"
	"mailout/internal/peertest"
	"mailout/internal/smtptest"
)

// These tests show the direct route end to end: `mailout send
// --route direct` asks a DNS server we run (mxtest, in-process) for the
// recipients' MX records and speaks SMTP to the receiving servers it names,
// in-process smtptest servers on 127.0.0.x, all on one port passed with the
// lab flag --mx-port (port 25 in production).

// mxLab is a set of receiving servers on 127.0.0.x that share one port.
type mxLab struct {
	port    int
	servers map[string]*smtptest.Server // by IP
}

// startMXLab starts one smtptest server on each of ips, all on the same
// port: the port of the first, retried with another when a later address
// has it taken.
func startMXLab(t *testing.T, opts map[string]smtptest.Options, ips ...string) *mxLab {
	t.Helper()
	for range 20 {
		lab := &mxLab{servers: map[string]*smtptest.Server{}}
		var started []*smtptest.Server
		ok := true
		for _, ip := range ips {
			o := opts[ip]
			o.Addr = net.JoinHostPort(ip, strconv.Itoa(lab.port))
			s, err := smtptest.New(o)
			if err != nil {
				ok = false
				break
			}
			started = append(started, s)
			if lab.port == 0 {
				_, p, _ := net.SplitHostPort(s.Addr)
				lab.port, _ = strconv.Atoi(p)
			}
			lab.servers[ip] = s
		}
		if ok {
			for _, s := range started {
				t.Cleanup(func() { _ = s.Close() })
			}
			return lab
		}
		for _, s := range started {
			_ = s.Close()
		}
	}
	t.Fatal("no port free on every lab address")
	return nil
}

// directArgs is a direct-route send through the lab's DNS server and port.
func directArgs(db, name, list, msg, dnsAddr string, port int, extra ...string) []string {
	args := []string{"send", "--db", db, "--campaign", name, "--recipients", list, "--message", msg,
		"--route", "direct", "--dns", dnsAddr, "--helo", "sender.mailout.test", "--allow-loopback-mx",
		"--mx-port", strconv.Itoa(port)}
	return append(args, extra...)
}

// rcptTimes records when a server accepted each RCPT (smtptest.Options.Faults
// sees every step; it returns no fault here).
type rcptTimes struct {
	mu sync.Mutex
	at []time.Time
}

func (r *rcptTimes) add() {
	r.mu.Lock()
	r.at = append(r.at, time.Now())
	r.mu.Unlock()
}

func (r *rcptTimes) times() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.at)
}

// TestDirectCampaignOutcomes shows how direct-route outcomes are reported:
// eight domains, each with its own way of answering, one run; every
// recipient ends in the right state and class, and the report names the MX
// host that took each message.
func TestDirectCampaignOutcomes(t *testing.T) {
	const (
		deadMX    = "127.0.0.2" // nothing listens: connection refused
		backupMX  = "127.0.0.3" // dead.test's second MX
		implicit  = "127.0.0.4" // implicit.test's own A record
		faultsMX  = "127.0.0.5" // local part picks the fault
		limitedMX = "127.0.0.6" // 421 4.7.28 to the first MAIL
		bulkMX    = "127.0.0.7" // a healthy domain with many recipients
	)
	var (
		mu           sync.Mutex
		limitedMails int
		limitedOK    rcptTimes
		bulkOK       rcptTimes
	)
	opts := map[string]smtptest.Options{
		backupMX: {Domain: "mx2.dead.test"},
		implicit: {Domain: "implicit.test"},
		faultsMX: {Domain: "mx.faults.test", LocalPartFaults: true},
		limitedMX: {Domain: "mx.limited.test", Faults: func(ev smtptest.Event) *smtptest.Fault {
			switch ev.Step {
			case "mail":
				mu.Lock()
				defer mu.Unlock()
				limitedMails++
				if limitedMails == 1 {
					// RFC 5321 §3.8: 421 closes the session. 4.7.28 is
					// Gmail's "rate limited" enhanced code.
					return &smtptest.Fault{Code: 421, Enhanced: "4.7.28", Text: "Too many messages from your IP, slow down"}
				}
			case "rcpt":
				limitedOK.add()
			}
			return nil
		}},
		bulkMX: {Domain: "mx.bulk.test", Faults: func(ev smtptest.Event) *smtptest.Fault {
			if ev.Step == "rcpt" {
				bulkOK.add()
			}
			return nil
		}},
	}
	lab := startMXLab(t, opts, backupMX, implicit, faultsMX, limitedMX, bulkMX)

	z := mxtest.NewZone()
	z.MX("dead.test", 10, "mx1.dead.test").MX("dead.test", 20, "mx2.dead.test").
		A("mx1.dead.test", deadMX).A("mx2.dead.test", backupMX)
	z.A("implicit.test", implicit) // no MX: RFC 5321 §5.1 implicit MX
	z.NullMX("nullmx.test")        // RFC 7505
	// nxdomain.test: no record at all, the server answers NXDOMAIN.
	z.MX("grey.test", 10, "mx.faults.test").MX("users.test", 10, "mx.faults.test").A("mx.faults.test", faultsMX)
	z.MX("limited.test", 10, "mx.limited.test").A("mx.limited.test", limitedMX)
	z.MX("bulk.test", 10, "mx.bulk.test").A("mx.bulk.test", bulkMX)
	dnsSrv := mxtest.Start(t, z)

	bulk := manyRecipients(20, "bulk.test")
	emails := append([]string{
		"alice@dead.test", "bob@implicit.test", "carol@nullmx.test", "dave@nxdomain.test",
		"greylist@grey.test", "unknown@users.test", "full@users.test",
		"first@limited.test", "second@limited.test", "third@limited.test",
	}, bulk...)
	db := filepath.Join(t.TempDir(), "mailout.db")
	start := time.Now()
	r := mailout(t, nil, directArgs(db, "direct", writeList(t, emails...), writeMessage(t, testMessage),
		dnsSrv.Addr(), lab.port, "--profile", "fast", "--rate", "0", "--domain-rate", "0",
		"--retry-min", "50ms", "--max-age", "6s", "--wait", "1m", "--json")...)
	if r.code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("campaign of %d recipients over 8 domains took %s", len(emails), time.Since(start).Round(time.Millisecond))
	t.Log(mailout(t, nil, "report", "direct", "--db", db).stdout)

	rows := byEmail(reportRows(t, db, "direct"))
	type want struct {
		email, state, class string
		code                float64
		host                string // the MX host named in the report ("" = not checked)
		attempts            float64
	}
	wants := []want{
		{"alice@dead.test", "delivered", "delivered", 0, "mx2.dead.test", 1},
		{"bob@implicit.test", "delivered", "delivered", 0, "implicit.test", 1},
		{"carol@nullmx.test", "failed", "no-mail-server", 0, "", 1},
		{"dave@nxdomain.test", "failed", "dns-nxdomain", 0, "", 1},
		{"greylist@grey.test", "delivered", "delivered", 0, "mx.faults.test", 2},
		{"unknown@users.test", "failed", "recipient-unknown", 550, "mx.faults.test", 1},
		{"full@users.test", "failed", "mailbox-full", 452, "mx.faults.test", 0},
		{"first@limited.test", "delivered", "delivered", 0, "mx.limited.test", 0},
		{"second@limited.test", "delivered", "delivered", 0, "mx.limited.test", 0},
		{"third@limited.test", "delivered", "delivered", 0, "mx.limited.test", 0},
	}
	for _, e := range bulk {
		wants = append(wants, want{e, "delivered", "delivered", 0, "mx.bulk.test", 1})
	}
	for _, w := range wants {
		row := rows[w.email]
		if row == nil {
			t.Errorf("no report row for %s", w.email)
			continue
		}
		if row["state"] != w.state || row["class"] != w.class {
			t.Errorf("%s: state %v class %v (%v); want %s %s", w.email, row["state"], row["class"], row["text"], w.state, w.class)
		}
		if w.code != 0 && row["code"] != w.code {
			t.Errorf("%s: code %v, want %v", w.email, row["code"], w.code)
		}
		if w.host != "" && (row["host"] != w.host || row["via"] != "direct:"+w.host) {
			t.Errorf("%s: host %v via %v, want host %s via direct:%s", w.email, row["host"], row["via"], w.host, w.host)
		}
		if w.attempts != 0 && row["attempts"] != w.attempts {
			t.Errorf("%s: %v attempts, want %v", w.email, row["attempts"], w.attempts)
		}
		if w.state == "failed" && row["advice"] == "" {
			t.Errorf("%s: failed without advice", w.email)
		}
	}
	// mailbox-full retried until --max-age, then gave up.
	if row := rows["full@users.test"]; row != nil {
		if a, _ := row["attempts"].(float64); a < 3 {
			t.Errorf("full@users.test: %v attempts, want several retries before max age", a)
		}
		if txt, _ := row["text"].(string); !strings.Contains(txt, "max age") {
			t.Errorf("full@users.test: text %q does not say it gave up at the max age", txt)
		}
	}
	// Exactly one limited.test recipient met the 421 and needed a second attempt.
	second := 0
	for _, e := range []string{"first@limited.test", "second@limited.test", "third@limited.test"} {
		if a, _ := rows[e]["attempts"].(float64); a == 2 {
			second++
		}
	}
	if second != 1 {
		t.Errorf("%d limited.test recipients took 2 attempts, want 1 (the one answered 421)", second)
	}

	// Which server got which message: each accepted recipient exactly once,
	// at the MX the report names.
	at := map[string][]string{}
	for ip, s := range lab.servers {
		for _, m := range s.Messages() {
			for _, rc := range m.Rcpts {
				at[rc] = append(at[rc], ip)
			}
		}
	}
	for _, w := range wants {
		n := len(at[w.email])
		if (w.state == "delivered") != (n == 1) || n > 1 {
			t.Errorf("%s received %d times (at %v), state %s", w.email, n, at[w.email], w.state)
		}
	}
	if got := at["alice@dead.test"]; len(got) == 1 && got[0] != backupMX {
		t.Errorf("alice@dead.test delivered at %s, want the backup MX %s", got[0], backupMX)
	}

	// The 421 slowed limited.test down (one message a second, throttle
	// SlowDown) while bulk.test went on at full speed: its 20 messages were
	// all in before limited.test's last one.
	lt, bt := limitedOK.times(), bulkOK.times()
	if len(lt) != 3 || len(bt) != 20 {
		t.Fatalf("accepted RCPTs: limited.test %d, bulk.test %d; want 3 and 20", len(lt), len(bt))
	}
	slices.SortFunc(lt, time.Time.Compare)
	slices.SortFunc(bt, time.Time.Compare)
	if gap := lt[2].Sub(lt[1]); gap < 900*time.Millisecond {
		t.Errorf("limited.test after its 421: messages %s apart, want ≥ 1s (slowed down to 60/min)", gap)
	}
	if !bt[19].Before(lt[2]) {
		t.Errorf("bulk.test finished at +%s, after limited.test's last message at +%s: the slow-down held up other domains",
			bt[19].Sub(start), lt[2].Sub(start))
	}
	// One MX query per domain, although several domains have several recipients.
	for _, d := range []string{"dead.test", "implicit.test", "nullmx.test", "grey.test", "users.test", "limited.test", "bulk.test"} {
		if n := dnsSrv.QueriesFor(d, dns.TypeMX); n != 1 {
			t.Errorf("%s: %d MX queries, want 1", d, n)
		}
	}
	var sum struct {
		Delivered int
		Domains   []struct {
			Domain    string
			Delivered int
			Hosts     []string `json:"mx_hosts"`
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil {
		t.Fatalf("summary: %v\n%s", err, r.stdout)
	}
	if sum.Delivered != 26 {
		t.Errorf("summary says %d delivered, want 26", sum.Delivered)
	}
	// The summary shows, per domain, the MX used and the outcome.
	perDomain := map[string]int{}
	for _, d := range sum.Domains {
		perDomain[d.Domain] = d.Delivered
		if d.Domain == "dead.test" && (len(d.Hosts) != 1 || d.Hosts[0] != "mx2.dead.test") {
			t.Errorf("dead.test: MX hosts %v in the summary, want [mx2.dead.test]", d.Hosts)
		}
	}
	if perDomain["bulk.test"] != 20 || perDomain["limited.test"] != 3 {
		t.Errorf("per-domain summary: %v", perDomain)
	}
}

// TestDirectMXQueriesPerDomain is the query-count proof: 10,000
// recipients over 100 domains cost one MX query per domain — 100, not
// 10,000 — plus one A and one AAAA query per MX host name.
func TestDirectMXQueriesPerDomain(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000-recipient campaign")
	}
	sinks := []string{"127.0.0.21", "127.0.0.22", "127.0.0.23", "127.0.0.24"}
	lab := startMXLab(t, nil, sinks...)
	z := mxtest.NewZone()
	const domains, perDomain = 100, 100
	var emails []string
	for d := range domains {
		dom := fmt.Sprintf("d%03d.test", d)
		host := fmt.Sprintf("mx%d.sinks.test", d%len(sinks))
		z.MX(dom, 10, host)
		for i := range perDomain {
			emails = append(emails, fmt.Sprintf("u%03d@%s", i, dom))
		}
	}
	for i, ip := range sinks {
		z.A(fmt.Sprintf("mx%d.sinks.test", i), ip)
	}
	dnsSrv := mxtest.Start(t, z)
	db := filepath.Join(t.TempDir(), "mailout.db")
	start := time.Now()
	r := mailout(t, nil, directArgs(db, "many", writeList(t, emails...), writeMessage(t, testMessage),
		dnsSrv.Addr(), lab.port, "--profile", "fast", "--rate", "0", "--domain-rate", "0",
		"--connections", "20", "--json")...)
	if r.code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	elapsed := time.Since(start)
	received := 0
	for _, s := range lab.servers {
		received += len(s.Messages())
	}
	if received != len(emails) {
		t.Fatalf("the sinks received %d messages, want %d", received, len(emails))
	}
	mxq, aq, aaaaq := dnsSrv.Queries(dns.TypeMX), dnsSrv.Queries(dns.TypeA), dnsSrv.Queries(dns.TypeAAAA)
	t.Logf("%d recipients over %d domains in %s: %d MX, %d A, %d AAAA queries",
		len(emails), domains, elapsed.Round(time.Millisecond), mxq, aq, aaaaq)
	if mxq > domains {
		t.Errorf("%d MX queries for %d domains, want at most %d (one per domain, not per recipient)", mxq, domains, domains)
	}
	if aq > len(sinks) || aaaaq > len(sinks) {
		t.Errorf("%d A and %d AAAA queries for %d MX host names, want at most one of each per host", aq, aaaaq, len(sinks))
	}
	for d := range domains {
		if n := dnsSrv.QueriesFor(fmt.Sprintf("d%03d.test", d), dns.TypeMX); n != 1 {
			t.Errorf("d%03d.test: %d MX queries, want 1", d, n)
		}
	}
}

// TestDirectConnectionReuse shows that messages to one domain share SMTP
// sessions (one transaction after another, RFC 5321 §3.3), within the
// per-domain connection cap and the messages-per-connection limit of the
// speed profile.
func TestDirectConnectionReuse(t *testing.T) {
	const n = 60
	tests := []struct {
		name      string
		flags     []string
		wantConns func(int) bool
		want      string
	}{
		{"one connection per domain", []string{"--domain-connections", "1"}, func(c int) bool { return c == 1 }, "exactly 1"},
		{"three connections per domain", []string{"--domain-connections", "3"}, func(c int) bool { return c >= 1 && c <= 3 }, "1 to 3"},
		{"20 messages per connection", []string{"--domain-connections", "1", "--per-connection", "20"}, func(c int) bool { return c == n/20 }, "exactly 3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lab := startMXLab(t, nil, "127.0.0.31")
			s := lab.servers["127.0.0.31"]
			z := mxtest.NewZone().MX("reuse.test", 10, "mx.reuse.test").A("mx.reuse.test", "127.0.0.31")
			dnsSrv := mxtest.Start(t, z)
			db := filepath.Join(t.TempDir(), "mailout.db")
			args := directArgs(db, "reuse", writeList(t, manyRecipients(n, "reuse.test")...), writeMessage(t, testMessage),
				dnsSrv.Addr(), lab.port, "--profile", "fast", "--rate", "0", "--domain-rate", "0")
			r := mailout(t, nil, append(args, tc.flags...)...)
			if r.code != exitOK {
				t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
			}
			if got := len(s.Messages()); got != n {
				t.Fatalf("%d messages received, want %d", got, n)
			}
			if c := s.Connections(); !tc.wantConns(c) || c >= n {
				t.Errorf("%d messages over %d connections, want %s", n, c, tc.want)
			}
		})
	}
}

// TestDirectPostfixDnsmasqInterop sends a direct campaign through real
// peers: dnsmasq answers the MX questions, the real Postfix is the MX
// (its plain port, --mx-port), and the messages are read back from where
// Postfix delivered them.
func TestDirectPostfixDnsmasqInterop(t *testing.T) {
	pf := peertest.Postfix(t)
	ns := peertest.DNS(t)
	pf.Clean(t)
	_, port, err := net.SplitHostPort(pf.Plain)
	if err != nil {
		t.Fatal(err)
	}
	mxPort, _ := strconv.Atoi(port)

	type want struct {
		state, class, host string
	}
	wants := map[string]want{}
	var emails []string
	add := func(email string, w want) {
		emails = append(emails, email)
		wants[email] = w
	}
	for _, d := range ns.MXDomains {
		for i := range 5 {
			add(fmt.Sprintf("user%d@%s", i, d), want{"delivered", "delivered", ns.MXHost})
		}
	}
	for i := range 3 {
		add(fmt.Sprintf("backup%d@%s", i, ns.FallbackDomain), want{"delivered", "delivered", ns.MXHost})
	}
	for i := range 2 {
		add(fmt.Sprintf("own%d@%s", i, ns.ImplicitDomain), want{"delivered", "delivered", ns.ImplicitDomain})
	}
	add("nobody@"+ns.NullMXDomain, want{"failed", "no-mail-server", ""})
	add("nobody@"+ns.NXDomain, want{"failed", "dns-nxdomain", ""})
	delivered := len(emails) - 2

	db := filepath.Join(t.TempDir(), "mailout.db")
	r := mailout(t, nil, directArgs(db, "interop", writeList(t, emails...), writeMessage(t, testMessage),
		ns.Addr, mxPort, "--profile", "fast", "--rate", "0", "--domain-rate", "0", "--json")...)
	if r.code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	rows := byEmail(reportRows(t, db, "interop"))
	for email, w := range wants {
		row := rows[email]
		if row == nil {
			t.Errorf("no report row for %s", email)
			continue
		}
		if row["state"] != w.state || row["class"] != w.class {
			t.Errorf("%s: state %v class %v (%v); want %s %s", email, row["state"], row["class"], row["text"], w.state, w.class)
		}
		if w.host != "" && (row["host"] != w.host || row["via"] != "direct:"+w.host) {
			t.Errorf("%s: host %v via %v, want %s", email, row["host"], row["via"], w.host)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := pf.WaitDelivered(ctx, t, delivered); err != nil {
		t.Fatal(err)
	}
	for i, email := range emails {
		got := pf.Delivered(t, email)
		if wants[email].state != "delivered" {
			if len(got) != 0 {
				t.Errorf("%s: %d messages at Postfix, want none", email, len(got))
			}
			continue
		}
		if len(got) != 1 {
			t.Errorf("%s: %d messages at Postfix, want 1", email, len(got))
			continue
		}
		// Personalised, and received by Postfix from our EHLO name.
		for _, s := range []string{fmt.Sprintf("Dear Name%d,", i), "your address is " + email + ".", "sender.mailout.test"} {
			if !strings.Contains(string(got[0]), s) {
				t.Errorf("%s: stored message lacks %q:\n%s", email, s, got[0])
			}
		}
	}
}

// TestDirectFallbackRelay shows the hybrid route (--fallback-relay): when
// the DNS server cannot be reached every domain goes by the relay; with
// --fallback-after 2 a recipient that keeps failing temporarily goes by
// the relay on its second attempt. The report says which way each went.
func TestDirectFallbackRelay(t *testing.T) {
	relaySrv := smtptest.Start(t, smtptest.Options{Auth: map[string]string{"shop": relayPass}, RequireAuth: true})
	relay := fmt.Sprintf("smtp+insecure://shop:%s@%s", relayPass, relaySrv.Addr)

	t.Run("DNS unreachable", func(t *testing.T) {
		// A UDP and TCP port where nothing listens: every query is refused
		// by the kernel (ICMP port unreachable, RST).
		l, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		deadDNS := l.LocalAddr().String()
		l.Close()
		before := len(relaySrv.Messages())
		emails := []string{"a@one.test", "b@two.test", "c@three.test"}
		db := filepath.Join(t.TempDir(), "mailout.db")
		r := mailout(t, nil, directArgs(db, "hyb", writeList(t, emails...), writeMessage(t, testMessage),
			deadDNS, 25, "--fallback-relay", relay, "--profile", "fast", "--rate", "0", "--domain-rate", "0")...)
		if r.code != exitOK {
			t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		t.Log(mailout(t, nil, "report", "hyb", "--db", db).stdout)
		rows := byEmail(reportRows(t, db, "hyb"))
		for _, e := range emails {
			row := rows[e]
			via, _ := row["via"].(string)
			if row["state"] != "delivered" || !strings.HasPrefix(via, "relay") || !strings.Contains(via, "dns-unreachable") {
				t.Errorf("%s: state %v via %q; want delivered by the relay after dns-unreachable", e, row["state"], via)
			}
		}
		if got := len(relaySrv.Messages()) - before; got != len(emails) {
			t.Errorf("relay received %d messages, want %d", got, len(emails))
		}
	})

	t.Run("after two temporary failures", func(t *testing.T) {
		lab := startMXLab(t, map[string]smtptest.Options{"127.0.0.61": {LocalPartFaults: true}}, "127.0.0.61")
		z := mxtest.NewZone().MX("busy.test", 10, "mx.busy.test").A("mx.busy.test", "127.0.0.61")
		ns := mxtest.Start(t, z)
		before := len(relaySrv.Messages())
		db := filepath.Join(t.TempDir(), "mailout.db")
		r := mailout(t, nil, directArgs(db, "hyb2", writeList(t, "temp@busy.test", "ok@busy.test"), writeMessage(t, testMessage),
			ns.Addr(), lab.port, "--fallback-relay", relay, "--fallback-after", "2", "--retry-min", "50ms", "--wait", "1m",
			"--profile", "fast", "--rate", "0", "--domain-rate", "0")...)
		if r.code != exitOK {
			t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		rows := byEmail(reportRows(t, db, "hyb2"))
		if row := rows["ok@busy.test"]; row["state"] != "delivered" || row["via"] != "direct:mx.busy.test" {
			t.Errorf("ok@busy.test: %v via %v; want delivered directly", row["state"], row["via"])
		}
		row := rows["temp@busy.test"]
		via, _ := row["via"].(string)
		if row["state"] != "delivered" || row["attempts"] != 2.0 || !strings.HasPrefix(via, "relay") {
			t.Errorf("temp@busy.test: %v after %v attempts via %q; want delivered by the relay on attempt 2", row["state"], row["attempts"], via)
		}
		if got := len(relaySrv.Messages()) - before; got != 1 {
			t.Errorf("relay received %d messages, want 1", got)
		}
	})
}
