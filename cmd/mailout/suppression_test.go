package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"mailout/internal/smtptest"
)

// rcptCounter is a relay that refuses gone@ as an unknown mailbox and
// counts the RCPT commands each address got.
type rcptCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *rcptCounter) count(rcpt string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[strings.ToLower(rcpt)]
}

func bouncingRelay(t *testing.T) (*smtptest.Server, *rcptCounter) {
	c := &rcptCounter{n: map[string]int{}}
	s := smtptest.Start(t, smtptest.Options{Faults: func(e smtptest.Event) *smtptest.Fault {
		if e.Step != "rcpt" {
			return nil
		}
		c.mu.Lock()
		c.n[strings.ToLower(e.Rcpt)]++
		c.mu.Unlock()
		if strings.HasPrefix(e.Rcpt, "gone@") {
			return &smtptest.Fault{Code: 550, Enhanced: "5.1.1", Text: "User unknown"}
		}
		return nil
	}})
	return s, c
}

func suppressionList(t *testing.T, db string) map[string]map[string]any {
	t.Helper()
	r := mailout(t, nil, "suppression", "list", "--db", db, "--format", "json")
	if r.code != exitOK {
		t.Fatalf("suppression list: %d %s", r.code, r.stderr)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatalf("suppression list is not JSON: %v\n%s", err, r.stdout)
	}
	out := map[string]map[string]any{}
	for _, row := range rows {
		out[row["address"].(string)] = row
	}
	return out
}

// A hard bounce is suppressed with its campaign and reply; retry and later
// campaigns do not send to it again and record it as suppressed.
func TestHardBounceIsSuppressedForRetryAndLaterCampaigns(t *testing.T) {
	s, rcpts := bouncingRelay(t)
	relay := "smtp+insecure://" + s.Addr
	db := filepath.Join(t.TempDir(), "mailout.db")
	list := writeList(t, "gone@example.org", "ok@example.org")
	r := mailout(t, nil, "send", "--db", db, "--campaign", "c1", "--recipients", list,
		"--message", writeMessage(t, testMessage), "--relay", relay, "--profile", "fast")
	if r.code != exitOK {
		t.Fatalf("send: %d %s", r.code, r.stderr)
	}
	entry := suppressionList(t, db)["gone@example.org"]
	if entry == nil || entry["reason"] != "hard-bounce" || entry["campaign"] != "c1" || entry["code"] != 550.0 ||
		entry["enhanced"] != "5.1.1" || entry["text"] != "User unknown" || entry["date"] == "" {
		t.Fatalf("suppression entry for the hard bounce: %v", entry)
	}
	if r := mailout(t, nil, "retry", "c1", "--db", db, "--relay", relay); r.code != exitOK {
		t.Fatalf("retry: %d %s", r.code, r.stderr)
	}
	if got := byEmail(reportRows(t, db, "c1"))["gone@example.org"]["state"]; got != "suppressed" {
		t.Errorf("after retry the bounced address is %v, want suppressed", got)
	}
	r = mailout(t, nil, "send", "--db", db, "--campaign", "c2", "--recipients", list,
		"--message", writeMessage(t, testMessage), "--relay", relay, "--profile", "fast")
	if r.code != exitOK {
		t.Fatalf("second campaign: %d %s", r.code, r.stderr)
	}
	if got := byEmail(reportRows(t, db, "c2"))["gone@example.org"]["state"]; got != "suppressed" {
		t.Errorf("in a later campaign the bounced address is %v, want suppressed", got)
	}
	if n := rcpts.count("gone@example.org"); n != 1 {
		t.Errorf("the bounced address got %d RCPT commands, want the first only", n)
	}
	if n := rcpts.count("ok@example.org"); n != 2 {
		t.Errorf("ok@example.org got %d RCPT commands, want one per campaign", n)
	}
}

// add, remove, export and import manage the list by canonical key; a domain
// entry suppresses the whole domain.
func TestSuppressionCommands(t *testing.T) {
	db := filepath.Join(t.TempDir(), "mailout.db")
	if r := mailout(t, nil, "suppression", "add", "--db", db, "--reason", "unsubscribed", "Bob@Example.ORG", "@Blocked.Example"); r.code != exitOK {
		t.Fatalf("add: %d %s", r.code, r.stderr)
	}
	if r := mailout(t, nil, "suppression", "add", "--db", db, "not an address"); r.code != exitUsage {
		t.Errorf("add of a bad address: exit %d, want %d", r.code, exitUsage)
	}
	got := suppressionList(t, db)
	if got["bob@example.org"]["reason"] != "unsubscribed" || got["@blocked.example"]["reason"] != "unsubscribed" || len(got) != 2 {
		t.Fatalf("list after add: %v", got)
	}
	// A sandbox campaign skips both.
	r := mailout(t, nil, "send", "--db", db, "--campaign", "s", "--recipients",
		writeList(t, "bob@example.org", "anyone@blocked.example", "carol@example.org"), "--message", writeMessage(t, testMessage))
	if r.code != exitOK {
		t.Fatalf("send: %d %s", r.code, r.stderr)
	}
	rows := byEmail(reportRows(t, db, "s"))
	for e, want := range map[string]string{"bob@example.org": "suppressed", "anyone@blocked.example": "suppressed", "carol@example.org": "delivered"} {
		if rows[e]["state"] != want {
			t.Errorf("%s: %v, want %s", e, rows[e]["state"], want)
		}
	}
	out := filepath.Join(t.TempDir(), "suppressed.csv")
	if r := mailout(t, nil, "suppression", "export", "--db", db, out); r.code != exitOK {
		t.Fatalf("export: %d %s", r.code, r.stderr)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "address,reason,source,date") || !strings.Contains(string(data), "\n@blocked.example,unsubscribed,manual,") {
		t.Fatalf("export:\n%s", data)
	}
	if r := mailout(t, nil, "suppression", "remove", "--db", db, "BOB@example.org", "@blocked.example"); r.code != exitOK {
		t.Fatalf("remove: %d %s", r.code, r.stderr)
	}
	if got := suppressionList(t, db); len(got) != 0 {
		t.Fatalf("list after remove: %v", got)
	}
	extra := filepath.Join(t.TempDir(), "more.csv")
	if err := os.WriteFile(extra, []byte("Email,Reason,Date\ndave@example.org,,2024-05-01\nnonsense,complaint,\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{out, extra} {
		if r := mailout(t, nil, "suppression", "import", "--db", db, f); r.code != exitOK {
			t.Fatalf("import %s: %d %s", f, r.code, r.stderr)
		} else if f == extra && !strings.Contains(r.stderr, "more.csv:line 3:") {
			t.Errorf("the bad row is not reported with its line:\n%s", r.stderr)
		}
	}
	got = suppressionList(t, db)
	if len(got) != 3 || got["@blocked.example"]["source"] != "manual" || got["dave@example.org"]["reason"] != "imported" ||
		got["dave@example.org"]["source"] != "more.csv" || !strings.HasPrefix(got["dave@example.org"]["date"].(string), "2024-0") {
		t.Fatalf("list after import: %v", got)
	}
}
