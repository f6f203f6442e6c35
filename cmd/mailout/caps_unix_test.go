//go:build unix

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// within runs the command line in-process and fails the test when it has
// not returned after limit: a refused input must not hang.
func within(t *testing.T, limit time.Duration, args ...string) result {
	t.Helper()
	done := make(chan result, 1)
	go func() { done <- mailout(t, nil, args...) }()
	select {
	case r := <-done:
		return r
	case <-time.After(limit):
		t.Fatalf("mailout %s: still running after %v", strings.Join(args, " "), limit)
		return result{}
	}
}

// /dev/zero given as the list is one row that never ends: the row cap stops
// it at line 1 after reading about a megabyte, quickly.
func TestRecipientsFromDevZero(t *testing.T) {
	db := filepath.Join(t.TempDir(), "mailout.db")
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r := within(t, 30*time.Second, "send", "--db", db, "--recipients", "/dev/zero", "--message", writeMessage(t, testMessage))
	runtime.ReadMemStats(&after)
	wantRefused(t, r, "/dev/zero:1: a row longer than 1048576 bytes", "--max-row-bytes")
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<20 {
		t.Errorf("reading /dev/zero allocated %d MiB, want a few", n>>20)
	}
	nothingStored(t, db)
}

// A named pipe given as an attachment (or as the message) is refused at
// once: opening it must not wait for a writer.
func TestNamedPipeRefused(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "report.pdf")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	list := writeList(t, "a@example.org")
	for _, args := range [][]string{
		{"--message", writeMessage(t, testMessage), "--attach", fifo},
		{"--message", fifo},
		{"--message", "/dev/zero"},
	} {
		db := filepath.Join(t.TempDir(), "mailout.db")
		r := within(t, 10*time.Second, append([]string{"send", "--db", db, "--recipients", list}, args...)...)
		wantRefused(t, r, args[len(args)-1]+": is a ", "not a regular file")
		nothingStored(t, db)
	}
}

// runLimited runs the mailout binary with its address space capped, as a
// small machine would: a template that takes memory without bound kills
// it ("out of memory", exit 2) instead of failing cleanly.
func runLimited(t *testing.T, args ...string) (int, string) {
	t.Helper()
	const limitKiB = 2 << 20 // 2 GiB of address space: the Go runtime needs some
	cmd := exec.Command("/bin/sh", append([]string{"-c", fmt.Sprintf(`ulimit -v %d && exec "$0" "$@"`, limitKiB), binary}, args...)...)
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatal(err)
		}
		code = ee.ExitCode()
	}
	return code, string(out)
}

// Templates that would take memory without bound: the one that kept
// killing the process at every resume (a variable doubled in a range) is
// refused when read; a chain of declarations that doubles without any
// loop fails the first recipient at the pre-flight render, within the cap.
// Either way nothing is stored and the process ends normally.
func TestRunawayTemplatesEndCleanly(t *testing.T) {
	list := writeList(t, "a@example.org", "b@example.org")
	var chain strings.Builder
	chain.WriteString("From: news@example.com\nSubject: hi\n\n{{$v0 := .first_name}}")
	for i := 1; i <= 50; i++ {
		fmt.Fprintf(&chain, `{{$v%d := printf "%%s%%s" $v%d $v%d}}`, i, i-1, i-1)
	}
	chain.WriteString("{{len $v50}}\n")
	for _, tc := range []struct {
		name, msg string
		want      []string
	}{
		{"assignment in a range", "From: news@example.com\nSubject: hi\n\n{{$a := \"x\"}}{{range 60}}{{$a = printf \"%s%s\" $a $a}}{{end}}{{$a}}\n",
			[]string{"message.txt:4: assigning to a variable ($a = …) is not allowed"}},
		{"chain of declarations", chain.String(),
			[]string{"does not render for the first recipient", "message.txt:4:", "would build more than 26214400 bytes", "the cap on one message"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "mailout.db")
			code, out := runLimited(t, "send", "--db", db, "--recipients", list, "--message", writeMessage(t, tc.msg))
			if code != exitError {
				t.Fatalf("exit %d, want %d\n%s", code, exitError, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output does not say %q:\n%s", w, out)
				}
			}
			if _, err := os.Stat(db); err == nil {
				nothingStored(t, db)
			}
		})
	}
}
