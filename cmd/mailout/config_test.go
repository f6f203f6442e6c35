package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOptionsFromFileEnvironmentAndFlags(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "m.db")
	conf := filepath.Join(dir, "mailout.conf")
	if err := os.WriteFile(conf, []byte("# lab\ncampaign = fromfile\nprofile = fast\ndb = "+db+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	list := writeList(t, "a@example.org")
	msg := writeMessage(t, testMessage)
	send := func(env map[string]string, extra ...string) result {
		t.Helper()
		return mailout(t, env, append([]string{"send", "--recipients", list, "--message", msg}, extra...)...)
	}
	if r := send(nil, "--config", conf); r.code != exitOK || !strings.Contains(r.stdout, `"fromfile"`) {
		t.Fatalf("file: %d %s %s", r.code, r.stdout, r.stderr)
	}
	// The environment wins over the file, the command line over both.
	if r := send(map[string]string{"MAILOUT_CONFIG": conf, "MAILOUT_CAMPAIGN": "fromenv"}); r.code != exitOK || !strings.Contains(r.stdout, `"fromenv"`) {
		t.Fatalf("env: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := send(map[string]string{"MAILOUT_CAMPAIGN": "fromenv"}, "--config", conf, "--campaign", "fromflag"); r.code != exitOK || !strings.Contains(r.stdout, `"fromflag"`) {
		t.Fatalf("flag: %d %s %s", r.code, r.stdout, r.stderr)
	}
	list2 := mailout(t, nil, "campaigns", "--db", db)
	for _, n := range []string{"fromfile", "fromenv", "fromflag"} {
		if !strings.Contains(list2.stdout, n) {
			t.Errorf("campaign %s not in %s:\n%s", n, db, list2.stdout)
		}
	}
	// A typo in the file is an error, not silently ignored.
	if err := os.WriteFile(conf, []byte("alow-loopback-mx = true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := send(nil, "--config", conf); r.code != exitUsage || !strings.Contains(r.stderr, `unknown option "alow-loopback-mx"`) {
		t.Fatalf("typo: %d %s", r.code, r.stderr)
	}
}
