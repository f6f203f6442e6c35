package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// An EHLO name that cannot go on the wire is refused at once, before any
// recipient is imported or any server contacted.
func TestSendRefusesUnusableHELO(t *testing.T) {
	db := filepath.Join(t.TempDir(), "m.db")
	list := writeList(t, "a@example.org")
	msg := writeMessage(t, "From: news@example.com\nSubject: hi\n\nHello\n")
	r := mailout(t, nil, "send", "--db", db, "--recipients", list, "--message", msg,
		"--relay", "smtp+insecure://127.0.0.1:1", "--helo", "mail example com")
	if r.code != exitUsage || !strings.Contains(r.stderr, "--helo") {
		t.Fatalf("exit %d, stderr %q; want a usage error naming --helo", r.code, r.stderr)
	}
}
