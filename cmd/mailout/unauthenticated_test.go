package main

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"mailout/internal/mx/mxtest"
	"mailout/internal/smtptest"
)

// Receivers refuse the message: the sending domain fails DMARC (550
// 5.7.26). The campaign pauses, once, instead of failing the list,
// says that the sender's DNS is at fault, checks it (no SPF record here)
// and keeps everyone to send; once the records are put right, resume
// delivers each recipient once, and nobody was put on the suppression
// list.
func TestUnauthenticatedSenderPausesAndResumeDelivers(t *testing.T) {
	var reject atomic.Bool
	reject.Store(true)
	srv := smtptest.Start(t, smtptest.Options{Faults: func(ev smtptest.Event) *smtptest.Fault {
		if ev.Step == "body" && reject.Load() {
			return &smtptest.Fault{Code: 550, Enhanced: "5.7.26",
				Text: "Unauthenticated email from example.com is not accepted due to domain's DMARC policy."}
		}
		return nil
	}})
	// The receivers' MX records, and the sender's DNS: a DMARC policy of
	// reject, and no SPF record.
	_, port, _ := net.SplitHostPort(srv.Addr)
	dns := mxtest.Start(t, mxtest.NewZone().
		MX("a.example", 10, "mx.a.example").A("mx.a.example", "127.0.0.1").
		MX("b.example", 10, "mx.b.example").A("mx.b.example", "127.0.0.1").
		RR(fmt.Sprintf("_dmarc.example.com. 300 IN TXT %q", "v=DMARC1; p=reject; rua=mailto:d@example.com")))
	route := []string{"--route", "direct", "--dns", dns.Addr(), "--allow-loopback-mx", "--mx-port", port, "--helo", "sender.mailout.test",
		"--profile", "fast", "--rate", "0", "--domain-rate", "0"}
	db := filepath.Join(t.TempDir(), "mailout.db")
	var emails []string
	for i := range 40 {
		emails = append(emails, fmt.Sprintf("r%d@%s", i, []string{"a.example", "b.example"}[i%2]))
	}
	args := []string{"--db", db, "--campaign", "dmarc", "--recipients", writeList(t, emails...),
		"--message", writeMessage(t, testMessage), "--retry-min", "1s"}
	r := mailout(t, nil, append(append([]string{"send"}, args...), route...)...)
	if r.code != exitPaused {
		t.Fatalf("send: exit %d, want %d (paused)\n%s\n%s", r.code, exitPaused, r.stdout, r.stderr)
	}
	out := r.stdout + r.stderr
	for _, want := range []string{"sender-unauthenticated", "(spf-missing)"} {
		if !strings.Contains(out, want) {
			t.Errorf("the pause does not say %q:\n%s", want, out)
		}
	}
	for _, row := range reportRows(t, db, "dmarc") {
		if row["state"] == "failed" || row["state"] == "suppressed" {
			t.Errorf("%v: %v; the sender's DNS is at fault, not the recipient", row["email"], row["state"])
		}
	}
	if s := mailout(t, nil, "suppression", "list", "--db", db); strings.Contains(s.stdout, "@a.example") || strings.Contains(s.stdout, "@b.example") {
		t.Errorf("refused recipients were suppressed:\n%s", s.stdout)
	}

	// Resumed before the records are fixed: the user was told, the run
	// does not pause for it again; the refused recipients are deferred,
	// none failed.
	r = mailout(t, nil, "resume", "dmarc", "--db", db, "--wait", "0")
	if r.code != exitDeferred {
		t.Fatalf("resume while still refused: exit %d, want %d (deferred)\n%s\n%s", r.code, exitDeferred, r.stdout, r.stderr)
	}
	for _, row := range reportRows(t, db, "dmarc") {
		if row["state"] != "deferred" {
			t.Errorf("%v: %v after the second refusal, want deferred", row["email"], row["state"])
		}
	}

	// The user publishes the records; resume sends to everyone once, as
	// their retries come due.
	reject.Store(false)
	r = mailout(t, nil, "resume", "dmarc", "--db", db)
	if r.code != exitOK {
		t.Fatalf("resume: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	wantOneCopyEach(t, srv, emails)
}
