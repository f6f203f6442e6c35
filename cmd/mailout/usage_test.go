package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mailout/internal/smtptest"
)

// A mistyped --db must not answer from a new, empty database: the commands
// that read an existing deployment say the file does not exist, and leave
// nothing behind.
func TestReadCommandsRefuseAMissingDatabase(t *testing.T) {
	dir := t.TempDir()
	typo := filepath.Join(dir, "mailuot.db")
	for _, args := range [][]string{
		{"campaigns"},
		{"report", "spring"},
		{"resume", "spring"},
		{"retry", "spring"},
		{"export", "spring", filepath.Join(dir, "out")},
		{"lists", "show"},
		{"lists", "export", "news"},
		{"lists", "delete", "news"},
		{"lists", "import", "news", writeList(t, "a@example.org")},
		{"send", "--list", "news", "--message", writeMessage(t, testMessage)},
	} {
		r := mailout(t, nil, append(args, "--db", typo)...)
		if r.code != exitUsage || !strings.Contains(r.stderr, typo+" does not exist") {
			t.Errorf("%s: exit %d, stderr %q; want exit %d naming the missing database", args[0], r.code, r.stderr, exitUsage)
		}
		if _, err := os.Stat(typo); err == nil {
			t.Fatalf("%s created %s", args[0], typo)
		}
	}
}

// Exit status 2 is for mistakes in the command line, found through cobra's
// hooks; a failure at run time is 1.
func TestExitStatusTwoOnlyForUsageMistakes(t *testing.T) {
	db := filepath.Join(t.TempDir(), "mailout.db")
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"unknown command", []string{"sned"}, exitUsage},
		{"unknown flag", []string{"campaigns", "--verbose"}, exitUsage},
		{"missing argument", []string{"report", "--db", db}, exitUsage},
		{"extra argument", []string{"campaigns", "extra"}, exitUsage},
		{"required flags", []string{"send", "--db", db}, exitUsage},
		{"no command", []string{}, exitOK},
	} {
		r := mailout(t, nil, tc.args...)
		if r.code != tc.want {
			t.Errorf("%s: exit %d (%s), want %d", tc.name, r.code, r.stderr, tc.want)
		}
	}

	// A database that is not one is a failure at run time, not a usage
	// mistake.
	bad := filepath.Join(t.TempDir(), "notadb.db")
	if err := os.WriteFile(bad, []byte(strings.Repeat("not a database\n", 200)), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := mailout(t, nil, "campaigns", "--db", bad); r.code != exitError {
		t.Errorf("corrupt database: exit %d (%s), want %d", r.code, r.stderr, exitError)
	}
}

// A password sent without TLS is said to go in clear; without a password,
// or with TLS, there is nothing to warn about.
func TestInsecureRelayWithPasswordWarns(t *testing.T) {
	s := smtptest.Start(t, smtptest.Options{Auth: map[string]string{"shop": "s3cret-pw"}})
	list := writeList(t, "ana@example.org")
	msg := writeMessage(t, testMessage)
	for _, tc := range []struct {
		relay string
		warn  bool
	}{
		{"smtp+insecure://shop:s3cret-pw@" + s.Addr, true},
		{"smtp+insecure://" + s.Addr, false},
	} {
		db := filepath.Join(t.TempDir(), "mailout.db")
		r := mailout(t, nil, "send", "--db", db, "--recipients", list, "--message", msg, "--relay", tc.relay)
		if r.code != exitOK {
			t.Fatalf("%s: exit %d %s", tc.relay, r.code, r.stderr)
		}
		if got := strings.Contains(r.stderr, "in clear text"); got != tc.warn {
			t.Errorf("%s: warning shown %v, want %v\n%s", tc.relay, got, tc.warn, r.stderr)
		}
		if strings.Contains(r.stderr+r.stdout, "s3cret-pw") {
			t.Errorf("the password was printed:\n%s", r.stderr)
		}
	}
}
