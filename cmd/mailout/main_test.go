package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// binary is the mailout command built once for the tests that need a real
// process (kill -9, signals).
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mailout-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "mailout")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is one in-process run of the command line.
type result struct {
	code           int
	stdout, stderr string
}

// mailout runs the command line in-process with the given database.
func mailout(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	getenv := func(k string) string { return env[k] }
	code := run(t.Context(), args, &out, &errb, getenv)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// writeList writes a CSV of recipients: emails, with first_name "Name<i>".
func writeList(t *testing.T, emails ...string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("email,first_name\n")
	for i, e := range emails {
		fmt.Fprintf(&b, "%s,Name%d\n", e, i)
	}
	p := filepath.Join(t.TempDir(), "list.csv")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func manyRecipients(n int, domain string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("rcpt%05d@%s", i, domain)
	}
	return out
}

const testMessage = "From: Shop <news@example.com>\nSubject: Hello {{.first_name}}\n\nDear {{.first_name}},\nyour address is {{.email}}.\n"

func writeMessage(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "message.txt")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// reportRows reads `mailout report NAME --format json`.
func reportRows(t *testing.T, db, name string) []map[string]any {
	t.Helper()
	r := mailout(t, nil, "report", name, "--db", db, "--format", "json")
	if r.code != 0 {
		t.Fatalf("report: %d %s", r.code, r.stderr)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatalf("report json: %v\n%s", err, r.stdout)
	}
	return rows
}

func byEmail(rows []map[string]any) map[string]map[string]any {
	m := map[string]map[string]any{}
	for _, r := range rows {
		m[r["email"].(string)] = r
	}
	return m
}

type mimeDecoder = mime.WordDecoder

func quotedPrintableReader(b []byte) io.Reader { return quotedprintable.NewReader(bytes.NewReader(b)) }
