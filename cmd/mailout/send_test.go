package main

import (
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestQuickStartSandbox(t *testing.T) {
	db := filepath.Join(t.TempDir(), "mailout.db")
	r := mailout(t, nil, "send", "--db", db, "--campaign", "spring",
		"--recipients", "../../examples/recipients.csv", "--message", "../../examples/message.txt")
	if r.code != exitOK {
		t.Fatalf("send exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	// The example list has one invalid row and one duplicate: both reported
	// with their line numbers, the ten good rows sent.
	if !strings.Contains(r.stderr, "recipients.csv:9:") || !strings.Contains(r.stderr, "recipients.csv:11:") {
		t.Errorf("bad rows not reported with line numbers:\n%s", r.stderr)
	}
	if !strings.Contains(r.stdout, "delivered   10") {
		t.Errorf("summary: %s", r.stdout)
	}
	out := filepath.Join(t.TempDir(), "eml")
	if r := mailout(t, nil, "export", "spring", out, "--db", db); r.code != 0 {
		t.Fatalf("export: %d %s", r.code, r.stderr)
	}
	files, _ := filepath.Glob(filepath.Join(out, "*.eml"))
	if len(files) != 10 {
		t.Fatalf("%d .eml files, want 10", len(files))
	}
	var sawJose bool
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m, err := mail.ReadMessage(strings.NewReader(string(data)))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if m.Header.Get("Message-Id") == "" || m.Header.Get("Date") == "" {
			t.Errorf("%s: no Message-ID or Date", f)
		}
		subj, err := new(mimeDecoder).DecodeHeader(m.Header.Get("Subject"))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(f, "jose.nunez") {
			sawJose = true
			if subj != "José, our spring sale starts today" {
				t.Errorf("personalised subject = %q", subj)
			}
		}
	}
	if !sawJose {
		t.Error("no message for jose.nunez@example.org")
	}
}

func TestTemplateErrorStopsBeforeAnythingIsStored(t *testing.T) {
	db := filepath.Join(t.TempDir(), "mailout.db")
	list := writeList(t, "a@example.org", "b@example.org")
	msg := writeMessage(t, "From: news@example.com\nSubject: hi\n\nHello\n{{.no_such_field}}\n")
	r := mailout(t, nil, "send", "--db", db, "--campaign", "broken", "--recipients", list, "--message", msg)
	if r.code != exitError {
		t.Fatalf("exit %d, want %d\n%s", r.code, exitError, r.stderr)
	}
	if !strings.Contains(r.stderr, "message.txt:5") || !strings.Contains(r.stderr, "no_such_field") {
		t.Errorf("error does not name the file, line and field:\n%s", r.stderr)
	}
	c := mailout(t, nil, "campaigns", "--db", db)
	if !strings.Contains(c.stdout, "No campaigns") {
		t.Errorf("a campaign was stored although nothing could be sent:\n%s", c.stdout)
	}
}
