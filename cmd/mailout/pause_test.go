package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mailout/internal/smtptest"
)

// A campaign being sent by one process is paused, and later cancelled,
// from another: the sending run finishes the message in flight, records
// it and stops; resume sends the rest, each recipient once.
func TestPauseAndCancelFromAnotherProcess(t *testing.T) {
	gate := make(chan struct{})
	atGate := make(chan struct{}, 1)
	var once sync.Once
	s := smtptest.Start(t, smtptest.Options{Faults: func(e smtptest.Event) *smtptest.Fault {
		// The second message waits at its final reply until the test
		// lets it go: the campaign is paused while it is in flight.
		if e.Step == "body" && e.Count == 2 {
			once.Do(func() { atGate <- struct{}{} })
			<-gate
		}
		return nil
	}})
	db := filepath.Join(t.TempDir(), "mailout.db")
	var emails []string
	for i := range 10 {
		emails = append(emails, "r"+string(rune('a'+i))+"@example.org")
	}
	sent := make(chan result, 1)
	sendLog := &watchedWriter{changed: make(chan struct{})}
	go func() {
		sent <- mailoutLogTo(t, sendLog, "send", "--db", db, "--campaign", "news", "--recipients", writeList(t, emails...),
			"--message", writeMessage(t, testMessage), "--relay", "smtp+insecure://"+s.Addr,
			"--profile", "fast", "--connections", "1", "--per-connection", "0", "--rate", "0")
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	select {
	case <-atGate:
	case r := <-sent:
		t.Fatalf("send ended before the pause: exit %d\n%s", r.code, r.stderr)
	case <-ctx.Done():
		t.Fatal("the second message never reached the server")
	}

	p := mailout(t, nil, "pause", "news", "--db", db)
	if p.code != exitOK || !strings.Contains(p.stdout, `Campaign "news" paused`) {
		t.Fatalf("pause: %d\n%s%s", p.code, p.stdout, p.stderr)
	}
	// The run reads its stored status every second: once it says it saw
	// the pause, the message in flight may finish.
	if err := sendLog.waitFor(ctx, "paused from another process"); err != nil {
		t.Fatalf("the sending run did not notice the pause: %v\n%s", err, sendLog.String())
	}
	close(gate)
	var r result
	select {
	case r = <-sent:
	case <-ctx.Done():
		t.Fatal("the sending run did not stop after the pause")
	}
	if r.code != exitPaused || !strings.Contains(sendLog.String(), "paused by the user") {
		t.Fatalf("send after pause: exit %d\n%s", r.code, sendLog.String())
	}
	rows := reportRows(t, db, "news")
	delivered := 0
	for _, row := range rows {
		switch row["state"] {
		case "delivered":
			delivered++
		case "pending":
		default:
			t.Errorf("%s: %v after the pause, want delivered or pending", row["email"], row["state"])
		}
	}
	// Two messages had started when the pause came, and a third: with
	// PIPELINING its MAIL, RCPT and DATA went out behind the second's "."
	// (RFC 2920 §3.1), so it is finished too. None after it was started.
	if delivered != 3 || len(s.Messages()) != 3 {
		t.Errorf("after the pause %d delivered and %d received, want the 3 started before it", delivered, len(s.Messages()))
	}
	if c := mailout(t, nil, "campaigns", "--db", db); !strings.Contains(c.stdout, "paused (paused by the user)") {
		t.Errorf("campaigns: %s", c.stdout)
	}

	if r := mailout(t, nil, "resume", "news", "--db", db, "--relay", "smtp+insecure://"+s.Addr); r.code != exitOK {
		t.Fatalf("resume: %d %s", r.code, r.stderr)
	}
	for e, n := range copies(s) {
		if n != 1 {
			t.Errorf("%s received %d times", e, n)
		}
	}
	if got := len(copies(s)); got != len(emails) {
		t.Errorf("%d recipients received the message, want %d", got, len(emails))
	}

	// A campaign that is done cannot be stopped: the command says so.
	if c := mailout(t, nil, "cancel", "news", "--db", db); c.code != exitError || !strings.Contains(c.stderr, "nothing to stop") {
		t.Errorf("cancel of a done campaign: %d %s", c.code, c.stderr)
	}
}

// watchedWriter is a stderr whose text a test can wait on while the
// command runs.
type watchedWriter struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func (w *watchedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	close(w.changed)
	w.changed = make(chan struct{})
	return n, err
}

func (w *watchedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// waitFor waits until the text written so far contains s.
func (w *watchedWriter) waitFor(ctx context.Context, s string) error {
	for {
		w.mu.Lock()
		found, ch := strings.Contains(w.buf.String(), s), w.changed
		w.mu.Unlock()
		if found {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// mailoutLogTo runs the command line in-process like mailout, with its
// stderr written to stderr as it comes.
func mailoutLogTo(t *testing.T, stderr *watchedWriter, args ...string) result {
	t.Helper()
	var out bytes.Buffer
	code := run(t.Context(), args, &out, stderr, func(string) string { return "" })
	return result{code: code, stdout: out.String(), stderr: stderr.String()}
}
