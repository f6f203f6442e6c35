package main

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"mailout/internal/account"
	"mailout/internal/store/sqlite"
)

// admin create makes the one administrator from a password in the
// environment, which no output shows; a second is refused, and so is a
// short password.
func TestAdminCreate(t *testing.T) {
	db := filepath.Join(t.TempDir(), "mailout.db")
	const pw = "a-good-long-passphrase"
	env := map[string]string{"ADMIN_PW": pw, "SHORT_PW": "short"}
	r := mailout(t, env, "admin", "create", "--db", db, "--email", "root@example.org", "--password-env", "SHORT_PW")
	if r.code != exitUsage || !strings.Contains(r.stderr, "at least 10 characters") {
		t.Fatalf("short password: exit %d, stderr %q; want usage error", r.code, r.stderr)
	}
	r = mailout(t, env, "admin", "create", "--db", db, "--email", "root@example.org", "--password-env", "ADMIN_PW")
	if r.code != exitOK || !strings.Contains(r.stdout, "root@example.org") {
		t.Fatalf("admin create: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, pw) {
		t.Fatal("the password was printed")
	}
	r = mailout(t, env, "admin", "create", "--db", db, "--email", "other@example.org", "--password-env", "ADMIN_PW")
	if r.code != exitUsage || !strings.Contains(r.stderr, "already exists") {
		t.Fatalf("second admin: exit %d, stderr %q", r.code, r.stderr)
	}
	r = mailout(t, nil, "admin", "create", "--db", db, "--email", "x@example.org", "--password-env", "UNSET")
	if r.code != exitUsage || !strings.Contains(r.stderr, "UNSET is empty or not set") {
		t.Fatalf("unset variable: exit %d, stderr %q", r.code, r.stderr)
	}

	// The account signs in with that password.
	st, err := sqlite.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc := account.New(st, account.Options{})
	if _, err := svc.Login(context.Background(), "root@example.org", pw, "127.0.0.1"); err != nil {
		t.Fatalf("Login with the password given to admin create: %v", err)
	}
}

// token create prints the token once; list shows its name and never the
// token; delete revokes it, and the API no longer accepts it.
func TestTokenCommands(t *testing.T) {
	db := filepath.Join(t.TempDir(), "mailout.db")
	r := mailout(t, nil, "token", "create", "--db", db, "--name", "deploy")
	if r.code != exitOK {
		t.Fatalf("token create: exit %d %s", r.code, r.stderr)
	}
	tok := strings.TrimSpace(r.stdout)
	if !strings.HasPrefix(tok, "mo_") || strings.Count(r.stdout, "\n") != 1 || !strings.Contains(r.stderr, "shown once") {
		t.Fatalf("token create printed %q / %q", r.stdout, r.stderr)
	}
	if r := mailout(t, nil, "token", "create", "--db", db, "--name", "deploy"); r.code != exitUsage || !strings.Contains(r.stderr, "already exists") {
		t.Fatalf("same name again: exit %d %q", r.code, r.stderr)
	}
	st, err := sqlite.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc := account.New(st, account.Options{})
	if _, err := svc.CheckToken(context.Background(), tok); err != nil {
		t.Fatalf("the printed token is not accepted: %v", err)
	}
	r = mailout(t, nil, "token", "list", "--db", db)
	if r.code != exitOK || !strings.Contains(r.stdout, "deploy") || strings.Contains(r.stdout, tok) || strings.Contains(r.stdout, tok[3:]) {
		t.Fatalf("token list: exit %d\n%s", r.code, r.stdout)
	}
	if strings.Contains(r.stdout, "never") {
		t.Errorf("token list after a use says never used:\n%s", r.stdout)
	}
	if r := mailout(t, nil, "token", "delete", "--db", db, "--name", "deploy"); r.code != exitOK {
		t.Fatalf("token delete: exit %d %s", r.code, r.stderr)
	}
	if _, err := svc.CheckToken(context.Background(), tok); !errors.Is(err, account.ErrNoToken) {
		t.Fatalf("deleted token: %v, want ErrNoToken", err)
	}
	if r := mailout(t, nil, "token", "delete", "--db", db, "--name", "deploy"); r.code != exitUsage || !strings.Contains(r.stderr, "no token called") {
		t.Fatalf("delete twice: exit %d %q", r.code, r.stderr)
	}
	if r := mailout(t, nil, "token", "list", "--db", filepath.Join(t.TempDir(), "none.db")); r.code != exitUsage {
		t.Errorf("token list of a missing database: exit %d, want usage error", r.code)
	}
}
