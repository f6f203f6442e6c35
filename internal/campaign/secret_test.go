package campaign

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"mailout/internal/queue"
	"mailout/internal/recipient"
	"mailout/internal/route"
	"mailout/internal/smtptest"
	"mailout/internal/store"
)

// A relay account whose password is kept in the app's settings: the
// campaign stores the account's name, never the password, and a later
// process resumes it with the password looked up again by that name.
func TestStoredCampaignResumesWithSettingPassword(t *testing.T) {
	const password = "s3cret-from-settings"
	srv := smtptest.Start(t, smtptest.Options{Auth: map[string]string{"mailout": password}, RequireAuth: true})
	secrets := func(name string) (string, error) {
		if name == "main" {
			return password, nil
		}
		return "", errors.New("no such relay account")
	}
	env := Env{Secret: secrets}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "mailout.db")
	svc, err := Open(ctx, path, true, Options{Env: env})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := RouteConfig{Relays: []string{"smtp+insecure://mailout@" + srv.Addr}, RelayPasswordSettings: []string{"main"},
		HELO: "sender.mailout.test"}.Check(route.Sandbox, env)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	draft, err := NewCampaign{Name: "spring", Routing: rt, MaxAge: 3600e9, RetryMin: 60e9,
		Message: &store.Message{Template: []byte(testMessage), TemplateName: "message.txt"}, Profile: oneAtATime}.Check(env)
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := svc.Create(ctx, draft, recipient.Rows(ctx, strings.NewReader(fiveRecipients), recipient.Options{}, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(c.RouteConfig), password) || !strings.Contains(string(c.RouteConfig), `"main"`) {
		t.Fatalf("stored settings %s: want the account's name and not its password", c.RouteConfig)
	}
	svc.Close()

	// Another process, without the settings: it says so.
	bare, err := Open(ctx, path, false, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bare.Resume(ctx, c.ID, RunOptions{Profile: oneAtATime}); !errors.Is(err, ErrNoSecret) {
		t.Fatalf("Resume without the settings = %v, want ErrNoSecret", err)
	}
	bare.Close()

	// The web app's process, with the settings: every message goes out,
	// signed in with the stored password.
	svc, err = Open(ctx, path, false, Options{Env: env})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	if _, err := svc.Resume(ctx, c.ID, RunOptions{Profile: oneAtATime}); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	counts, err := svc.Store().Counts(ctx, c.ID)
	if err != nil || counts.ByState[queue.Delivered] != 5 {
		t.Fatalf("counts after resume = %+v, %v; want 5 delivered", counts, err)
	}
	for _, m := range srv.Messages() {
		if m.AuthUser != "mailout" {
			t.Errorf("message to %v sent as %q, want authenticated as mailout", m.Rcpts, m.AuthUser)
		}
	}
}
