package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailout/internal/campaign"
	"mailout/internal/queue"
	"mailout/internal/recipient"
	"mailout/internal/route"
	"mailout/internal/smtptest"
	"mailout/internal/store"
	"mailout/internal/throttle"
)

// mailout serve creates the database, prints its address, answers there,
// resumes a campaign whose process died, and on SIGTERM pauses it after
// the message in flight is recorded: nothing is lost, and it exits 0.
func TestServeResumesInterruptedCampaignsAndPausesThemOnSIGTERM(t *testing.T) {
	inFlight, release := make(chan struct{}), make(chan struct{})
	srv := smtptest.Start(t, smtptest.Options{Faults: func(ev smtptest.Event) *smtptest.Fault {
		if ev.Step == "body" && ev.Count == 2 {
			close(inFlight)
			<-release
		}
		return nil
	}})
	db := filepath.Join(t.TempDir(), "mailout.db")
	ctx := context.Background()
	// A campaign stored as running that no process sends: its process died.
	svc, err := campaign.Open(ctx, db, true, campaign.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := campaign.RouteConfig{Relays: []string{"smtp+insecure://" + srv.Addr}, HELO: "sender.mailout.test"}.Check(route.Sandbox, campaign.Env{})
	if err != nil {
		t.Fatal(err)
	}
	draft, err := campaign.NewCampaign{Name: "spring", Routing: rt, MaxAge: time.Hour, RetryMin: time.Minute,
		Message: &store.Message{Template: []byte("From: a@example.com\nSubject: Hi\n\nHello\n")},
		Profile: throttle.Profile{Name: "test", Connections: 1, Rate: 1000}}.Check(campaign.Env{})
	if err != nil {
		t.Fatal(err)
	}
	list := "email\na@example.org\nb@example.org\nc@example.org\nd@example.org\n"
	c, _, err := svc.Create(ctx, draft, recipient.Rows(ctx, strings.NewReader(list), recipient.Options{}, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	svc.Close()

	cmd := exec.Command(binary, "serve", "--listen", "127.0.0.1:0", "--db", db)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &watchedWriter{changed: make(chan struct{})}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("no address printed: %v; stderr: %s", err, stderr.String())
	}
	url := strings.TrimSpace(strings.TrimPrefix(line, "mailout serve: "))
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("printed %q, want the app's URL", line)
	}
	res, err := http.Get(url + "healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || string(body) != "ok\n" || res.Header.Get("Content-Security-Policy") == "" {
		t.Errorf("healthz: %s %q", res.Status, body)
	}

	<-inFlight // serve resumed the campaign: its second message is at the server
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// serve says it is stopping once the runs were told to pause: from
	// then on no message starts, and the one in flight may finish.
	waitCtx, cancelWait := context.WithTimeout(ctx, 30*time.Second)
	defer cancelWait()
	if err := stderr.waitFor(waitCtx, "mailout serve: stopping"); err != nil {
		t.Fatalf("serve did not say it is stopping: %v; stderr: %s", err, stderr.String())
	}
	close(release)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve after SIGTERM: %v; stderr: %s", err, stderr.String())
	}
	svc, err = campaign.Open(ctx, db, false, campaign.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	stored, err := svc.Store().Campaign(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	n, err := svc.Store().Counts(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Status != store.CampaignPaused || n.ByState[queue.Delivered] != len(srv.Messages()) || n.ByState[queue.Sending] != 0 ||
		n.ByState[queue.Delivered] < 2 || n.ByState[queue.Pending] == 0 {
		t.Errorf("after SIGTERM: status %s, stored %v, server got %d; want paused with every message sent recorded and the rest pending",
			stored.Status, n.ByState, len(srv.Messages()))
	}
}
