package main

import (
	"bytes"
	"context"
	"net/mail"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailout/internal/smtptest"
)

// startSend runs `mailout send` as a real process against a plain relay.
func startSend(t *testing.T, db, name, list, relay string, extra ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	args := append([]string{"send", "--db", db, "--campaign", name, "--recipients", list,
		"--message", writeMessage(t, testMessage), "--relay", relay}, extra...)
	cmd := exec.Command(binary, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, &out
}

// copies counts the messages each recipient got.
func copies(s *smtptest.Server) map[string]int {
	got := map[string]int{}
	for _, m := range s.Messages() {
		for _, rc := range m.Rcpts {
			got[rc]++
		}
	}
	return got
}

// wantOneCopyEach checks that every one of emails got the message exactly
// once at s.
func wantOneCopyEach(t *testing.T, s *smtptest.Server, emails []string) {
	t.Helper()
	got := copies(s)
	for _, e := range emails {
		if got[e] != 1 {
			t.Errorf("%s got %d copies, want exactly 1", e, got[e])
		}
	}
}

// TestKill9MidCampaignLosesNobody kills the sender with SIGKILL while it
// sends, resumes, and counts at the receiving server: every recipient got
// the message, and the copies beyond one are at most what can be in flight
// (the results not yet recorded: two record batches, plus the one message
// per connection whose reply was awaited; pipelined groups hand each result
// over as it comes). Paced (one message at a time) and unpaced (groups of
// up to 32 messages per session).
func TestKill9MidCampaignLosesNobody(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int
		rate string
	}{{"paced", 400, "400"}, {"pipelined groups", 4000, "0"}} {
		t.Run(tc.name, func(t *testing.T) { kill9(t, tc.n, tc.rate) })
	}
}

func kill9(t *testing.T, n int, rate string) {
	const (
		connections = 4
		recordBatch = 64 // scheduler default
	)
	s := smtptest.Start(t, smtptest.Options{})
	db := filepath.Join(t.TempDir(), "mailout.db")
	emails := manyRecipients(n, "example.org")
	list := writeList(t, emails...)
	relay := "smtp+insecure://" + s.Addr
	cmd, out := startSend(t, db, "crash", list, relay, "--connections", "4", "--rate", rate)

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := s.WaitMessages(ctx, min(n/4, 300)); err != nil {
		t.Fatalf("waiting for the first messages: %v\n%s", err, out)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	before := len(s.Messages())
	if before >= n {
		t.Fatalf("the campaign finished before the kill (%d messages); the test proves nothing", before)
	}

	r := mailout(t, nil, "resume", "crash", "--db", db, "--relay", relay, "--profile", "fast", "--rate", rate)
	if r.code != exitOK {
		t.Fatalf("resume exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	got := copies(s)
	dups := 0
	for _, e := range emails {
		switch c := got[e]; {
		case c == 0:
			t.Errorf("%s never got the message", e)
		case c > 2:
			t.Errorf("%s got %d copies", e, c)
		case c == 2:
			dups++
		}
	}
	// A resend carries the same Message-ID as the first copy, so the
	// receiver can tell it is a duplicate.
	ids := map[string]map[string]bool{}
	for _, m := range s.Messages() {
		msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
		if err != nil {
			t.Fatal(err)
		}
		for _, rc := range m.Rcpts {
			if ids[rc] == nil {
				ids[rc] = map[string]bool{}
			}
			ids[rc][msg.Header.Get("Message-Id")] = true
		}
	}
	for rc, set := range ids {
		if len(set) != 1 {
			t.Errorf("%s got %d different Message-IDs: %v", rc, len(set), set)
		}
	}
	if bound := 2*recordBatch + connections; dups > bound {
		t.Errorf("%d recipients got two copies; at most %d may (in flight at the kill)", dups, bound)
	}
	t.Logf("killed after %d messages; %d duplicates after resume", before, dups)
	// The report flags the recipients that may have got two copies.
	flagged := 0
	for _, row := range reportRows(t, db, "crash") {
		if row["state"] != "delivered" {
			t.Errorf("%v: not delivered", row["email"])
		}
		if row["possible_duplicate"] == true {
			flagged++
		}
	}
	if flagged < dups {
		t.Errorf("%d duplicates but only %d flagged as possible duplicates", dups, flagged)
	}
}

// TestSIGTERMPausesGracefully: in-flight messages finish and are recorded,
// the exit status says interrupted, and resume sends each remaining
// recipient exactly once.
func TestSIGTERMPausesGracefully(t *testing.T) {
	const n = 300
	s := smtptest.Start(t, smtptest.Options{})
	db := filepath.Join(t.TempDir(), "mailout.db")
	emails := manyRecipients(n, "example.net")
	list := writeList(t, emails...)
	relay := "smtp+insecure://" + s.Addr
	cmd, out := startSend(t, db, "term", list, relay, "--connections", "2", "--rate", "300")
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := s.WaitMessages(ctx, n/5); err != nil {
		t.Fatalf("waiting: %v\n%s", err, out)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != exitInterrupted {
		t.Fatalf("exit: %v, want status %d\n%s", err, exitInterrupted, out)
	}
	if !strings.Contains(out.String(), "mailout resume term") {
		t.Errorf("no resume hint:\n%s", out)
	}
	r := mailout(t, nil, "resume", "term", "--db", db, "--relay", relay)
	if r.code != exitOK {
		t.Fatalf("resume exit %d\n%s", r.code, r.stderr)
	}
	wantOneCopyEach(t, s, emails)
}

// TestSecondRunnerIsRefused: two processes on one campaign would both send
// every message; the second is refused while the first runs.
func TestSecondRunnerIsRefused(t *testing.T) {
	s := smtptest.Start(t, smtptest.Options{})
	db := filepath.Join(t.TempDir(), "mailout.db")
	list := writeList(t, manyRecipients(200, "example.org")...)
	relay := "smtp+insecure://" + s.Addr
	cmd, out := startSend(t, db, "twice", list, relay, "--connections", "1", "--rate", "50")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := s.WaitMessages(ctx, 5); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	r := mailout(t, nil, "resume", "twice", "--db", db, "--relay", relay)
	if r.code != exitError || !strings.Contains(r.stderr, "another mailout process") {
		t.Fatalf("second runner: exit %d %s", r.code, r.stderr)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
	// Once the first has stopped, resume takes over and finishes the list.
	if r := mailout(t, nil, "resume", "twice", "--db", db, "--relay", relay, "--profile", "fast", "--rate", "0"); r.code != exitOK {
		t.Fatalf("resume after the first stopped: %d %s", r.code, r.stderr)
	}
	wantOneCopyEach(t, s, manyRecipients(200, "example.org"))
}
