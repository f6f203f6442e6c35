package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"mailout/internal/smtptest"
)

const relayPass = "Rel4y-Secret-9"

// provider starts a submission server like a provider's: STARTTLS, AUTH
// required, faults picked by the recipient's local part.
func provider(t *testing.T) (*smtptest.Server, string) {
	t.Helper()
	tc, _, fp := smtptest.NewTestCert(t)
	s := smtptest.Start(t, smtptest.Options{TLS: tc, Auth: map[string]string{"shop": relayPass},
		RequireAuth: true, LocalPartFaults: true})
	return s, fp
}

func relayURL(s *smtptest.Server, fp, pass string) string {
	return fmt.Sprintf("smtp://shop:%s@%s?fingerprint=sha256:%s", pass, s.Addr, fp)
}

func TestRelayCampaignOutcomes(t *testing.T) {
	s, fp := provider(t)
	db := filepath.Join(t.TempDir(), "mailout.db")
	list := writeList(t, "ok1@example.org", "unknown@example.org", "greylist@example.net", "ok2@example.com", "reject@example.org")
	r := mailout(t, nil, "send", "--db", db, "--campaign", "c1", "--recipients", list,
		"--message", writeMessage(t, testMessage), "--relay", relayURL(s, fp, relayPass),
		"--retry-min", "50ms", "--wait", "1m", "--json")
	if r.code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, relayPass) {
		t.Fatal("the relay password was printed")
	}
	rows := byEmail(reportRows(t, db, "c1"))
	check := func(email, state, class string, code float64) {
		t.Helper()
		row := rows[email]
		if row == nil {
			t.Fatalf("no report row for %s", email)
		}
		if row["state"] != state || (class != "" && row["class"] != class) {
			t.Errorf("%s: state %v class %v; want %s %s", email, row["state"], row["class"], state, class)
		}
		if code != 0 && row["code"] != code {
			t.Errorf("%s: code %v, want %v", email, row["code"], code)
		}
		if state == "failed" && row["advice"] == "" {
			t.Errorf("%s: failed without advice", email)
		}
	}
	check("ok1@example.org", "delivered", "delivered", 0)
	check("ok2@example.com", "delivered", "delivered", 0)
	check("greylist@example.net", "delivered", "delivered", 0)
	check("unknown@example.org", "failed", "recipient-unknown", 550)
	check("reject@example.org", "failed", "content-rejected", 554)
	if a := rows["greylist@example.net"]["attempts"]; a != 2.0 {
		t.Errorf("greylisted recipient: %v attempts, want 2 (refused, then accepted on retry)", a)
	}
	// The server got each accepted message once, personalised.
	got := map[string]int{}
	for _, m := range s.Messages() {
		for _, rc := range m.Rcpts {
			got[rc]++
			if !strings.Contains(string(m.Data), "your address is "+rc+".") {
				t.Errorf("message to %s not personalised:\n%s", rc, m.Data)
			}
		}
	}
	for _, e := range []string{"ok1@example.org", "ok2@example.com", "greylist@example.net"} {
		if got[e] != 1 {
			t.Errorf("%s received %d copies, want 1", e, got[e])
		}
	}
	// CSV report: formula cells neutralised, advice present.
	csv := mailout(t, nil, "report", "c1", "--db", db, "--format", "csv")
	if csv.code != 0 || !strings.Contains(csv.stdout, "recipient-unknown") {
		t.Fatalf("csv report: %d %s", csv.code, csv.stdout)
	}
}

func TestWrongPasswordPausesCampaignAndResumeDelivers(t *testing.T) {
	s, fp := provider(t)
	db := filepath.Join(t.TempDir(), "mailout.db")
	emails := manyRecipients(30, "example.org")
	list := writeList(t, emails...)
	r := mailout(t, nil, "send", "--db", db, "--campaign", "c2", "--recipients", list,
		"--message", writeMessage(t, testMessage), "--relay", relayURL(s, fp, "wrong-password"))
	if r.code != exitPaused {
		t.Fatalf("exit %d, want %d (paused)\n%s\n%s", r.code, exitPaused, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "auth-failed") || !strings.Contains(r.stdout, "paused") {
		t.Errorf("pause reason not shown:\nstdout: %s\nstderr: %s", r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, "wrong-password") {
		t.Fatal("the password was printed")
	}
	for _, row := range reportRows(t, db, "c2") {
		if row["state"] == "failed" {
			t.Fatalf("a recipient was marked failed for the account's fault: %v", row)
		}
	}
	// The user fixes the password and resumes: everyone gets one message.
	r = mailout(t, map[string]string{"RELAY_PASS": relayPass}, "resume", "c2", "--db", db,
		"--relay", fmt.Sprintf("smtp://shop@%s?fingerprint=sha256:%s&password-env=RELAY_PASS", s.Addr, fp))
	if r.code != exitOK {
		t.Fatalf("resume exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	got := map[string]int{}
	for _, m := range s.Messages() {
		for _, rc := range m.Rcpts {
			got[rc]++
		}
	}
	for _, e := range emails {
		if got[e] != 1 {
			t.Errorf("%s got %d messages, want 1", e, got[e])
		}
	}
}

func TestResumeNeedsRelayWhenPasswordWasInURL(t *testing.T) {
	s, fp := provider(t)
	db := filepath.Join(t.TempDir(), "mailout.db")
	list := writeList(t, "greylist@example.org")
	r := mailout(t, nil, "send", "--db", db, "--campaign", "c3", "--recipients", list,
		"--message", writeMessage(t, testMessage), "--relay", relayURL(s, fp, relayPass), "--wait", "0")
	if r.code != exitDeferred {
		t.Fatalf("exit %d, want deferred (%d)\n%s", r.code, exitDeferred, r.stderr)
	}
	if !strings.Contains(r.stderr, "mailout resume c3") {
		t.Errorf("no resume hint: %s", r.stderr)
	}
	r = mailout(t, nil, "resume", "c3", "--db", db)
	if r.code != exitUsage || !strings.Contains(r.stderr, "--relay") {
		t.Fatalf("resume without the password: exit %d %s", r.code, r.stderr)
	}
}

func TestRetryResendsFailedRecipientsOfTheGivenClass(t *testing.T) {
	var reject atomic.Bool
	reject.Store(true)
	s := smtptest.Start(t, smtptest.Options{Faults: func(e smtptest.Event) *smtptest.Fault {
		switch {
		case e.Step == "body" && reject.Load():
			return &smtptest.Fault{Code: 554, Enhanced: "5.7.1", Text: "Message rejected as spam"}
		case e.Step == "rcpt" && strings.HasPrefix(e.Rcpt, "gone"):
			return &smtptest.Fault{Code: 550, Enhanced: "5.1.1", Text: "User unknown"}
		}
		return nil
	}})
	db := filepath.Join(t.TempDir(), "mailout.db")
	emails := []string{"spam1@example.org", "spam2@example.org", "gone@example.org"}
	relay := "smtp+insecure://" + s.Addr
	r := mailout(t, nil, "send", "--db", db, "--campaign", "r", "--recipients", writeList(t, emails...),
		"--message", writeMessage(t, testMessage), "--relay", relay, "--profile", "fast")
	if r.code != exitOK {
		t.Fatalf("send: %d %s", r.code, r.stderr)
	}
	// The cause is fixed (the content was cleaned up with the provider):
	// only the content-rejected recipients are sent again.
	reject.Store(false)
	r = mailout(t, nil, "retry", "r", "--db", db, "--class", "content-rejected", "--relay", relay)
	if r.code != exitOK || !strings.Contains(r.stderr, "2 failed recipients queued again") {
		t.Fatalf("retry: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	rows := byEmail(reportRows(t, db, "r"))
	for e, want := range map[string]string{"spam1@example.org": "delivered", "spam2@example.org": "delivered", "gone@example.org": "failed"} {
		if rows[e]["state"] != want {
			t.Errorf("%s: %v, want %s", e, rows[e]["state"], want)
		}
	}
	if r := mailout(t, nil, "retry", "r", "--db", db, "--class", "no-such-class"); r.code != exitUsage {
		t.Errorf("unknown class: exit %d", r.code)
	}
	got := copies(s)
	if got["spam1@example.org"] != 1 || got["spam2@example.org"] != 1 || got["gone@example.org"] != 0 {
		t.Errorf("accepted copies: %v", got)
	}
}
