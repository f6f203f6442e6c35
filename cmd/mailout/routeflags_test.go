package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// send and doctor take the same route flags and check them with one
// function: a value one refuses, the other refuses the same way, before
// anything is stored or any connection is made.
func TestSendAndDoctorCheckRouteFlagsAlike(t *testing.T) {
	list := writeList(t, "ana@example.org")
	msg := writeMessage(t, testMessage)
	relay := "smtp+insecure://127.0.0.1:1"
	for _, tc := range []struct {
		name string
		args []string
		flag string
	}{
		{"EHLO name with spaces", []string{"--relay", relay, "--helo", "mail example com"}, "--helo"},
		{"unknown route", []string{"--route", "carrier-pigeon"}, "--route"},
		{"relay CA file missing", []string{"--relay", relay, "--relay-ca", filepath.Join(t.TempDir(), "nope.pem")}, "--relay-ca"},
		{"DNS server not an address", []string{"--route", "direct", "--dns", "dns.example"}, "--dns"},
		{"relay route without relay", []string{"--route", "relay"}, "--relay"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "mailout.db")
			send := mailout(t, nil, append([]string{"send", "--db", db, "--recipients", list, "--message", msg}, tc.args...)...)
			doc := mailout(t, nil, append([]string{"doctor"}, tc.args...)...)
			for cmd, r := range map[string]result{"send": send, "doctor": doc} {
				if r.code != exitUsage || !strings.Contains(r.stderr, tc.flag) {
					t.Errorf("%s: exit %d, stderr %q; want a usage error naming %s", cmd, r.code, r.stderr, tc.flag)
				}
			}
			if _, err := os.Stat(db); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("a refused send left a database behind: %v", err)
			}
		})
	}
}
