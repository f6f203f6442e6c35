package main

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"mailout/internal/mx/mxtest"
	"mailout/internal/smtptest"
)

// The DNS server given with --dns knows none of the recipients' domains
// (a company DNS server that only serves its own names): every lookup says
// NXDOMAIN. The campaign pauses after its first attempts instead of failing
// the list for good, the diagnosis says no MX lookup succeeded, nobody is
// left failed; with a DNS server that answers, resume delivers each
// recipient once.
func TestEveryDomainMissingPausesAndResumeDelivers(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	_, port, _ := net.SplitHostPort(srv.Addr)
	domains := []string{"a.example", "b.example", "c.example"}
	zone := mxtest.NewZone()
	dns := mxtest.Start(t, zone)
	var emails []string
	for i := range 60 {
		emails = append(emails, fmt.Sprintf("r%d@%s", i, domains[i%3]))
	}
	db := filepath.Join(t.TempDir(), "mailout.db")
	r := mailout(t, nil, "send", "--db", db, "--campaign", "nx", "--recipients", writeList(t, emails...),
		"--message", writeMessage(t, testMessage), "--route", "direct", "--dns", dns.Addr(), "--allow-loopback-mx",
		"--mx-port", port, "--helo", "sender.mailout.test", "--profile", "fast", "--rate", "0", "--domain-rate", "0")
	if r.code != exitPaused {
		t.Fatalf("send: exit %d, want %d (paused)\n%s\n%s", r.code, exitPaused, r.stdout, r.stderr)
	}
	if out := r.stdout + r.stderr; !strings.Contains(out, "(mx-lookup-failed)") {
		t.Errorf("the pause does not blame the DNS server:\n%s", out)
	}
	for _, row := range reportRows(t, db, "nx") {
		if row["state"] == "failed" || row["state"] == "suppressed" {
			t.Errorf("%v: %v; the DNS server is at fault, not the domain", row["email"], row["state"])
		}
	}

	// The DNS server answers now: resume delivers everyone, once.
	for _, d := range domains {
		zone.MX(d, 10, "mx."+d).A("mx."+d, "127.0.0.1")
	}
	if r := mailout(t, nil, "resume", "nx", "--db", db); r.code != exitOK {
		t.Fatalf("resume: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	wantOneCopyEach(t, srv, emails)
}

// A list that starts with dead domains, sent with a DNS server that works:
// the sender's domain and the live domains after them resolve, so the
// campaign goes on; the dead addresses fail as dns-nxdomain, the others
// are delivered once.
func TestListStartingWithDeadDomainsIsSent(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	_, port, _ := net.SplitHostPort(srv.Addr)
	zone := mxtest.NewZone().MX("live.example", 10, "mx.live.example").A("mx.live.example", "127.0.0.1").
		MX("example.com", 10, "mx.example.com").A("mx.example.com", "127.0.0.1")
	dns := mxtest.Start(t, zone)
	var dead, live []string
	for i := range 12 {
		dead = append(dead, fmt.Sprintf("old%d@gone%d.example", i, i))
	}
	for i := range 20 {
		live = append(live, fmt.Sprintf("r%d@live.example", i))
	}
	db := filepath.Join(t.TempDir(), "mailout.db")
	r := mailout(t, nil, "send", "--db", db, "--campaign", "dirty", "--recipients", writeList(t, append(dead, live...)...),
		"--message", writeMessage(t, testMessage), "--route", "direct", "--dns", dns.Addr(), "--allow-loopback-mx",
		"--mx-port", port, "--helo", "sender.mailout.test", "--connections", "1", "--rate", "0", "--domain-rate", "0")
	if r.code == exitPaused {
		t.Fatalf("paused for the list's own dead domains:\n%s\n%s", r.stdout, r.stderr)
	}
	rows := reportRows(t, db, "dirty")
	for _, row := range rows {
		email, _ := row["email"].(string)
		want := "delivered"
		if strings.HasPrefix(email, "old") {
			want = "failed"
		}
		if row["state"] != want {
			t.Errorf("%s: %v, want %s", email, row["state"], want)
		}
	}
	wantOneCopyEach(t, srv, live)
}
