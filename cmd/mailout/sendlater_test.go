package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSendAtSchedulesWithoutSending: send --at stores the campaign with its
// start time and sends nothing; resume before that time sends nothing
// either; the campaigns list says when it starts.
func TestSendAtSchedulesWithoutSending(t *testing.T) {
	s, fp := provider(t)
	db := filepath.Join(t.TempDir(), "mailout.db")
	list := writeList(t, "ok1@example.org", "ok2@example.org")
	at := time.Now().Add(2 * time.Hour).Truncate(time.Second)
	relay := relayURL(s, fp, relayPass)
	r := mailout(t, nil, "send", "--db", db, "--campaign", "later", "--recipients", list,
		"--message", writeMessage(t, testMessage), "--relay", relay, "--at", at.Format(time.RFC3339))
	if r.code != exitOK {
		t.Fatalf("send --at: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	out := r.stdout + r.stderr
	when := at.Local().Format(time.DateTime)
	for _, want := range []string{"scheduled for " + when, "mailout serve", "mailout resume later"} {
		if !strings.Contains(out, want) {
			t.Errorf("send --at output lacks %q:\n%s", want, out)
		}
	}
	if n := len(s.Messages()); n != 0 {
		t.Fatalf("send --at sent %d messages, want none before %s", n, when)
	}

	r = mailout(t, nil, "resume", "later", "--db", db, "--relay", relay)
	if r.code != exitDeferred {
		t.Errorf("resume before the start time: exit %d, want %d (deferred)\n%s\n%s", r.code, exitDeferred, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout+r.stderr, "scheduled for "+when) {
		t.Errorf("resume before the start time does not say when it starts:\n%s\n%s", r.stdout, r.stderr)
	}
	if n := len(s.Messages()); n != 0 {
		t.Fatalf("resume before the start time sent %d messages, want none", n)
	}

	r = mailout(t, nil, "campaigns", "--db", db)
	if r.code != exitOK || !strings.Contains(r.stdout, "scheduled for "+when) {
		t.Errorf("campaigns: exit %d, want a line saying \"scheduled for %s\":\n%s\n%s", r.code, when, r.stdout, r.stderr)
	}
}

func TestSendAtInThePastIsAUsageError(t *testing.T) {
	db := filepath.Join(t.TempDir(), "mailout.db")
	for _, at := range []string{time.Now().Add(-time.Hour).Format(time.RFC3339), "2001-01-01 09:00", "tomorrow"} {
		r := mailout(t, nil, "send", "--db", db, "--recipients", writeList(t, "a@example.org"),
			"--message", writeMessage(t, testMessage), "--at", at)
		if r.code != exitUsage {
			t.Errorf("send --at %q: exit %d, want %d (usage)\n%s", at, r.code, exitUsage, r.stderr)
		}
	}
}
