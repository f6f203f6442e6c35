package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailout/internal/peertest"
	"mailout/internal/secret"
	"mailout/internal/setting"
	"mailout/internal/store/sqlite"
)

// serve reads the bounce mailbox of its settings on its own: the real
// Postfix of the test set-up bounces a message to an unknown user into the
// real Dovecot mailbox, and serve, with that mailbox in its settings (its
// password sealed), turns the DSN into a hard result and a suppression
// entry without mailout bounces fetch. Its log has the read's summary and
// never the password.
func TestServeFetchesBouncesOnItsOwn(t *testing.T) {
	p := peertest.Postfix(t)
	b := peertest.Bounce(t)
	p.Clean(t)
	b.Clean(t)
	db := filepath.Join(t.TempDir(), "mailout.db")
	r := mailout(t, map[string]string{"PEER_PASS": p.Pass}, "send", "--db", db, "--campaign", "late",
		"--recipients", writeList(t, b.Unknown), "--message", writeMessage(t, testMessage),
		"--relay", fmt.Sprintf("smtp://%s@%s?password-env=PEER_PASS", p.User, p.Submission),
		"--relay-ca", p.CAFile, "--return-path", "bounces@"+b.Domain, "--rate", "0")
	if r.code != exitOK {
		t.Fatalf("send exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := b.WaitMessages(ctx, 1); err != nil {
		t.Fatal(err)
	}

	raw := secret.Generate()
	key, err := secret.NewKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	err = setting.Save(ctx, st, key, &setting.Settings{Bounces: &setting.BounceMailbox{
		URL: "imap://" + b.User + "@" + b.IMAP, Password: b.Pass, CAFile: b.CAFile}})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(binary, "serve", "--listen", "127.0.0.1:0", "--db", db, "--log-level", "info")
	cmd.Env = append(os.Environ(), secret.EnvVar+"="+secret.Encode(raw))
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
	if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
		t.Fatalf("serve printed no address: %v; stderr: %s", err, stderr.String())
	}
	if err := stderr.waitFor(ctx, "bounce mailbox read"); err != nil {
		t.Fatalf("serve did not read the mailbox: %v; stderr: %s", err, stderr.String())
	}
	log := stderr.String()
	if !strings.Contains(log, "read=1") || !strings.Contains(log, "bounced=1") || !strings.Contains(log, "suppressed=1") {
		t.Errorf("the log's summary: %s", log)
	}
	if strings.Contains(log, b.Pass) {
		t.Fatalf("the log shows the mailbox password: %s", log)
	}
	row := byEmail(reportRows(t, db, "late"))[b.Unknown]
	if row["state"] != "failed" || row["class"] != "recipient-unknown" || row["bounced_at"] == nil {
		t.Errorf("%s: %v %v bounced_at %v; want failed recipient-unknown, bounced after delivery", b.Unknown, row["state"], row["class"], row["bounced_at"])
	}
	sup := mailout(t, nil, "suppression", "list", "--db", db, "--format", "csv")
	if !strings.Contains(sup.stdout, b.Unknown+",hard-bounce") {
		t.Errorf("%s not suppressed:\n%s", b.Unknown, sup.stdout)
	}
}
