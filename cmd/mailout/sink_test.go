package main

import (
	"bufio"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestSinkPicksFaultsByLocalPart(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	cmd := exec.Command(binary, "sink", "--listen", addr, "--dir", dir)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := bufio.NewScanner(stderr)
	if !lines.Scan() || !strings.Contains(lines.Text(), "listening on "+addr) {
		t.Fatalf("sink did not start: %q", lines.Text())
	}

	db := filepath.Join(t.TempDir(), "m.db")
	r := mailout(t, nil, "send", "--db", db, "--campaign", "try", "--recipients",
		writeList(t, "ok@example.org", "unknown@example.org", "reject@example.org"),
		"--message", writeMessage(t, testMessage), "--relay", "smtp+insecure://"+addr)
	if r.code != exitOK {
		t.Fatalf("send: %d %s", r.code, r.stderr)
	}
	rows := byEmail(reportRows(t, db, "try"))
	for e, class := range map[string]string{"ok@example.org": "delivered", "unknown@example.org": "recipient-unknown", "reject@example.org": "content-rejected"} {
		if rows[e]["class"] != class {
			t.Errorf("%s: %v, want %s", e, rows[e]["class"], class)
		}
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	var rest strings.Builder
	for lines.Scan() {
		rest.WriteString(lines.Text())
	}
	_ = cmd.Wait()
	if !strings.Contains(rest.String(), "1 messages accepted") {
		t.Errorf("sink summary: %q", rest.String())
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	if len(files) != 1 {
		t.Errorf("%d .eml files kept, want 1", len(files))
	}
}
