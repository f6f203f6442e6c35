package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailout/internal/account"
	"mailout/internal/peertest"
	"mailout/internal/secret"
	"mailout/internal/smtptest"
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

// send, campaigns, report, export and suppression on a PostgreSQL
// database, end to end through the sandbox route.
func TestPostgresSendReport(t *testing.T) {
	db, pw := pgDB(t)
	run := func(args ...string) result {
		t.Helper()
		r := mailout(t, nil, append(args, "--db", db)...)
		noPassword(t, pw, r)
		return r
	}
	if r := run("suppression", "add", "cy@example.org"); r.code != exitOK {
		t.Fatalf("suppression add: %d %s", r.code, r.stderr)
	}
	list := writeList(t, "ana@example.org", "bo@example.org", "cy@example.org")
	r := run("send", "--campaign", "spring", "--route", "sandbox", "--recipients", list, "--message", writeMessage(t, testMessage))
	if r.code != exitOK {
		t.Fatalf("send: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	rows := byEmail(reportRows(t, db, "spring"))
	for email, state := range map[string]string{"ana@example.org": "delivered", "bo@example.org": "delivered", "cy@example.org": "suppressed"} {
		if rows[email]["state"] != state {
			t.Errorf("%s: %v, want %s", email, rows[email]["state"], state)
		}
	}
	if r := run("campaigns"); r.code != exitOK || !strings.Contains(r.stdout, "spring") {
		t.Errorf("campaigns: %d %s%s", r.code, r.stdout, r.stderr)
	}
	if r := run("report", "spring"); r.code != exitOK || !strings.Contains(r.stdout, "ana@example.org") {
		t.Errorf("report: %d %s%s", r.code, r.stdout, r.stderr)
	}
	dir := t.TempDir()
	if r := run("export", "spring", dir); r.code != exitOK {
		t.Fatalf("export: %d %s", r.code, r.stderr)
	}
	emls, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	if len(emls) != 2 {
		t.Fatalf("export wrote %v, want the 2 messages kept", emls)
	}
	b, err := os.ReadFile(emls[0])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("Subject: Hello Name")) {
		t.Errorf("exported message:\n%s", b)
	}
	if r := run("report", "nosuch"); r.code != exitUsage || !strings.Contains(r.stderr, "no campaign named \"nosuch\" in postgres://") {
		t.Errorf("report of no campaign: %d %s", r.code, r.stderr)
	}
}

// One process sends a campaign at a time on PostgreSQL too: while
// `mailout send` (a real process) is sending, resume from another process
// is refused with the same error as on SQLite, and campaigns shows it
// being sent, not interrupted; once the first run ends the second may
// run.
func TestPostgresCampaignLock(t *testing.T) {
	db, pw := pgDB(t)
	atServer, release := make(chan struct{}), make(chan struct{})
	s := smtptest.Start(t, smtptest.Options{Faults: func(ev smtptest.Event) *smtptest.Fault {
		if ev.Step == "mail" && ev.Count == 1 {
			close(atServer)
			<-release
		}
		return nil
	}})
	relay := "smtp+insecure://" + s.Addr
	list := writeList(t, "ana@example.org", "bo@example.org")
	cmd, out := startSend(t, db, "spring", list, relay, "--connections", "1")
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()
	select {
	case <-atServer:
	case <-time.After(60 * time.Second):
		t.Fatalf("the first send never reached the server:\n%s", out)
	}

	r := mailout(t, nil, "resume", "spring", "--db", db, "--relay", relay)
	noPassword(t, pw, r)
	if r.code != exitError || !strings.Contains(r.stderr, "the campaign is being sent by another mailout process") {
		t.Errorf("resume while another process sends: exit %d\n%s", r.code, r.stderr)
	}
	if r := mailout(t, nil, "campaigns", "--db", db); r.code != exitOK || strings.Contains(r.stdout, "interrupted") || !strings.Contains(r.stdout, "spring") {
		t.Errorf("campaigns while it is sent: %d\n%s", r.code, r.stdout)
	}

	close(release)
	released = true
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the first send: %v\n%s", err, out)
	}
	if strings.Contains(out.String(), pw) {
		t.Fatalf("send shows the database password:\n%s", out)
	}
	if got := copies(s); got["ana@example.org"] != 1 || got["bo@example.org"] != 1 {
		t.Errorf("messages at the server: %v, want one each", got)
	}
	if r := mailout(t, nil, "resume", "spring", "--db", db, "--relay", relay); r.code != exitOK {
		t.Errorf("resume after the first run ended: exit %d\n%s", r.code, r.stderr)
	}
}

// serve runs on a PostgreSQL database with the secret key from the
// environment, and shows the database password neither on its output nor
// in its pages.
func TestPostgresServe(t *testing.T) {
	t.Chdir(t.TempDir())
	db, pw := pgDB(t)
	cmd := exec.Command(binary, "serve", "--listen", "127.0.0.1:0", "--db", db)
	cmd.Env = append(os.Environ(), secret.EnvVar+"="+secret.Encode(secret.Generate()))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &watchedWriter{changed: make(chan struct{})}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("no address printed: %v; stderr: %s", err, stderr.String())
	}
	base := strings.TrimSpace(strings.TrimPrefix(line, "mailout serve: "))
	for _, path := range []string{"healthz", "", "login", "setup"} {
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode >= 500 || bytes.Contains(body, []byte(pw)) {
			t.Errorf("GET /%s: %s, password shown: %v", path, res.Status, bytes.Contains(body, []byte(pw)))
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve after SIGTERM: %v; stderr: %s", err, stderr.String())
	}
	if strings.Contains(line+stderr.String(), pw) {
		t.Fatalf("serve shows the database password:\n%s%s", line, stderr.String())
	}
	if ents, _ := os.ReadDir("."); len(ents) != 0 {
		t.Errorf("files made for a URL: %v", ents)
	}
}
