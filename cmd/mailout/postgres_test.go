package main

import (
	"context"
	"net/url"
	"os"
	"strings"
	"testing"

	"mailout/internal/account"
	"mailout/internal/peertest"
	"mailout/internal/store/postgres"
)

// pgDB is a --db URL of an empty schema of the PostgreSQL peer, and the
// URL's password, which no output may show.
func pgDB(t *testing.T) (dsn, password string) {
	t.Helper()
	dsn = peertest.Postgres(t).Schema(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	password, _ = u.User.Password()
	if password == "" {
		t.Fatal("the PostgreSQL peer's URL has no password; the tests that it is never shown prove nothing")
	}
	return dsn, password
}

// noPassword fails the test when the password shows in any output.
func noPassword(t *testing.T, password string, r result) {
	t.Helper()
	if strings.Contains(r.stdout+r.stderr, password) {
		t.Fatalf("the database password is shown:\n%s\n%s", r.stdout, r.stderr)
	}
}

// lists and admin work on a PostgreSQL database named by --db
// postgres://…, as on a SQLite file, and never show its password.
func TestPostgresListsAndAdmin(t *testing.T) {
	db, pw := pgDB(t)
	run := func(env map[string]string, args ...string) result {
		t.Helper()
		r := mailout(t, env, append(args, "--db", db)...)
		noPassword(t, pw, r)
		return r
	}
	if r := run(nil, "lists", "show"); r.code != exitOK || !strings.Contains(r.stdout, "No lists in postgres://") {
		t.Fatalf("lists show of a new database: %d %s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(nil, "lists", "create", "news"); r.code != exitOK {
		t.Fatalf("lists create: %d %s", r.code, r.stderr)
	}
	if r := run(nil, "lists", "create", "news"); r.code != exitUsage || !strings.Contains(r.stderr, `a list named "news" exists already`) {
		t.Errorf("lists create of a taken name: %d %s", r.code, r.stderr)
	}
	first := writeFile(t, "first.csv", []byte("first_name,email\nAna,ana@example.org\nX,not-an-address\nBo,bo@example.org\n"))
	if r := run(nil, "lists", "import", "news", first); r.code != exitOK ||
		!strings.Contains(r.stderr, `List "news": 2 added, 0 updated from first.csv, 1 rows rejected`) {
		t.Fatalf("lists import: %d %s", r.code, r.stderr)
	}
	second := writeFile(t, "second.csv", []byte("email,first_name,city\nBO@example.org,Bob,Oslo\ncy@example.org,Cy,Rome\n"))
	if r := run(nil, "lists", "import", "news", second); r.code != exitOK || !strings.Contains(r.stderr, "1 added, 1 updated") {
		t.Fatalf("second lists import: %d %s", r.code, r.stderr)
	}
	if r := run(nil, "lists", "show"); r.code != exitOK || !strings.Contains(strings.Join(strings.Fields(r.stdout), " "), "news 3 3") {
		t.Errorf("lists show: %d %s", r.code, r.stdout)
	}
	if r := run(nil, "lists", "import", "nosuch", first); r.code != exitUsage || !strings.Contains(r.stderr, `no list named "nosuch" in postgres://`) {
		t.Errorf("import into no list: %d %s", r.code, r.stderr)
	}

	const adminPW = "a-good-long-passphrase"
	env := map[string]string{"ADMIN_PW": adminPW}
	r := run(env, "admin", "create", "--email", "root@example.org", "--password-env", "ADMIN_PW")
	if r.code != exitOK || !strings.Contains(r.stdout, "administrator root@example.org created in postgres://") {
		t.Fatalf("admin create: %d %s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(env, "admin", "create", "--email", "ROOT@example.org", "--password-env", "ADMIN_PW"); r.code != exitUsage || !strings.Contains(r.stderr, "already exists") {
		t.Errorf("second admin: %d %s", r.code, r.stderr)
	}
	// The account signs in with that password, from the same database.
	st, err := postgres.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := account.New(st, account.Options{}).Login(context.Background(), "root@example.org", adminPW, "127.0.0.1"); err != nil {
		t.Fatalf("Login with the password given to admin create: %v", err)
	}
}

// A PostgreSQL server that cannot be reached is a clear error naming the
// host, saying what to check, without the password, and no file is
// created for the URL.
func TestPostgresUnreachable(t *testing.T) {
	t.Chdir(t.TempDir())
	const db = "postgres://mailout:hunter2-secret@127.0.0.1:1/mailout?connect_timeout=5"
	for _, args := range [][]string{
		{"lists", "show"},
		{"campaigns"},
		{"admin", "create", "--email", "root@example.org", "--password-env", "ADMIN_PW"},
		{"suppression", "add", "x@example.org"},
	} {
		r := mailout(t, map[string]string{"ADMIN_PW": "a-good-long-passphrase"}, append(args, "--db", db)...)
		noPassword(t, "hunter2", r)
		if r.code != exitError || !strings.Contains(r.stderr, "cannot connect to the PostgreSQL database postgres://mailout:xxxxx@127.0.0.1:1/mailout") ||
			!strings.Contains(r.stderr, "Is PostgreSQL running") {
			t.Errorf("%s with an unreachable database: exit %d\n%s", args, r.code, r.stderr)
		}
	}
	if ents, _ := os.ReadDir("."); len(ents) != 0 {
		t.Errorf("files made for a URL: %v", ents)
	}
}

// serve keeps its secret key beside a SQLite file; a PostgreSQL database
// has no such place, so serve asks for MAILOUT_SECRET_KEY or
// --secret-key-file instead of writing a file named after the URL.
func TestPostgresServeNeedsSecretKey(t *testing.T) {
	t.Chdir(t.TempDir())
	db, pw := pgDB(t)
	r := mailout(t, nil, "serve", "--db", db, "--listen", "127.0.0.1:0")
	noPassword(t, pw, r)
	if r.code != exitUsage || !strings.Contains(r.stderr, "MAILOUT_SECRET_KEY") || !strings.Contains(r.stderr, "--secret-key-file") {
		t.Errorf("serve on PostgreSQL without a key: exit %d\n%s", r.code, r.stderr)
	}
	if ents, _ := os.ReadDir("."); len(ents) != 0 {
		t.Errorf("files made for a URL: %v", ents)
	}
}
