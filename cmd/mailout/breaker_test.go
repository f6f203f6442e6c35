package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"mailout/internal/mx/mxtest"
	"mailout/internal/peertest"
	"mailout/internal/smtptest"
)

// The self-diagnosing campaign, for real: port 25 is blocked by an
// nftables rule in a network namespace the test creates (only its loopback
// is up, so nothing leaves it). The campaign must pause with every
// recipient still to send and the doctor's diagnosis stored; once the block
// is lifted, resume delivers everyone exactly once. The lab and mailout run
// in a child test process inside the namespace.

const breakerChildEnv = "MAILOUT_BREAKER_CHILD"

func TestBreakerPausesCampaignWhenPort25IsBlocked(t *testing.T) {
	if os.Getenv(breakerChildEnv) != "" {
		t.Skip("inside the namespace")
	}
	ns := peertest.NewNetns(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// A gateway or ISP that drops port 25: SYNs are never answered.
	ns.Firewall(t, "breaker_test", "input", "tcp dport 25 drop")
	cmd := ns.Command(exe, "-test.run=^TestBreakerChild$", "-test.v")
	cmd.Env = append(os.Environ(), breakerChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: TestBreakerChild")) {
		t.Fatalf("child in %s: %v\n%s", ns.Name, err, out)
	}
}

// TestBreakerChild runs inside the namespace, with port 25 dropped.
func TestBreakerChild(t *testing.T) {
	if os.Getenv(breakerChildEnv) == "" {
		t.Skip("run by TestBreakerPausesCampaignWhenPort25IsBlocked inside a network namespace")
	}
	domains := []string{"a.test", "b.test", "c.test"}
	z := mxtest.NewZone()
	for _, d := range domains {
		z.MX(d, 10, "mx."+d).A("mx."+d, "127.0.0.1")
	}
	dns, err := mxtest.New("127.0.0.1:53", z)
	if err != nil {
		t.Fatal(err)
	}
	defer dns.Close()
	sink := smtptest.Start(t, smtptest.Options{Addr: "127.0.0.1:25"})
	var emails []string
	for i := range 30 {
		emails = append(emails, fmt.Sprintf("r%d@%s", i, domains[i%3]))
	}
	db := t.TempDir() + "/m.db"
	args := []string{"--db", db, "--campaign", "blocked", "--recipients", writeList(t, emails...), "--message", writeMessage(t, testMessage),
		"--route", "direct", "--dns", "127.0.0.1", "--allow-loopback-mx", "--helo", "sender.lab.test",
		"--connect-timeout", "1s", "--profile", "fast", "--rate", "0"}
	r := mailout(t, nil, append([]string{"send"}, args...)...)
	if r.code != exitPaused {
		t.Fatalf("send: exit %d, want %d (paused)\n%s\n%s", r.code, exitPaused, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "(port25-blocked)") || !strings.Contains(r.stdout, "Port 25 is blocked") {
		t.Errorf("the diagnosis does not say port 25 is blocked:\n%s", r.stdout)
	}
	for _, row := range reportRows(t, db, "blocked") {
		if row["state"] == "failed" || row["state"] == "delivered" {
			t.Errorf("%v: %v; every recipient must still be to send", row["email"], row["state"])
		}
	}
	// The diagnosis is stored with the campaign, in both languages.
	s := mailout(t, nil, "report", "blocked", "--db", db, "--summary-json")
	var sum struct {
		Status    string
		Diagnosis struct{ Verdict struct{ ID string } }
	}
	if err := json.Unmarshal([]byte(s.stdout), &sum); err != nil {
		t.Fatalf("%v\n%s", err, s.stdout)
	}
	if sum.Status != "paused" || sum.Diagnosis.Verdict.ID != "port25-blocked" {
		t.Fatalf("stored: status %q verdict %q", sum.Status, sum.Diagnosis.Verdict.ID)
	}
	es := mailout(t, nil, "report", "blocked", "--db", db, "--summary", "--lang", "es")
	if !strings.Contains(es.stdout, "El puerto 25 está bloqueado") {
		t.Errorf("Spanish diagnosis missing:\n%s", es.stdout)
	}

	// The user lifts the block; resume delivers everyone, once.
	cmd := exec.Command("nft", "delete", "table", "inet", "breaker_test")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v %s", err, out)
	}
	r = mailout(t, nil, "resume", "blocked", "--db", db)
	if r.code != exitOK {
		t.Fatalf("resume: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	wantOneCopyEach(t, sink, emails)
}
