package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	msgdkim "github.com/emersion/go-msgauth/dkim"

	"mailout/internal/mx/mxtest"
	"mailout/internal/smtptest"
)

// keygen makes a key with `mailout dkim keygen` and returns its file and
// the TXT record it printed.
func keygen(t *testing.T, algo string) (string, string) {
	t.Helper()
	key := filepath.Join(t.TempDir(), "dkim.pem")
	r := mailout(t, nil, "dkim", "keygen", "--domain", "example.com", "--selector", "s1", "--algo", algo, "--out", key)
	if r.code != exitOK {
		t.Fatalf("keygen: %d %s", r.code, r.stderr)
	}
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v; want 0600", err, fi.Mode())
	}
	if !strings.Contains(r.stdout, "s1._domainkey.example.com") {
		t.Fatalf("keygen output does not name the record: %s", r.stdout)
	}
	// The zone line holds the value as quoted character-strings.
	var value strings.Builder
	for _, m := range regexp.MustCompile(`"([^"]*)"`).FindAllStringSubmatch(r.stdout, -1) {
		value.WriteString(m[1])
	}
	if !strings.HasPrefix(value.String(), "v=DKIM1;") {
		t.Fatalf("no record value in keygen output: %s", r.stdout)
	}
	// A second keygen to the same file would orphan the published record.
	if r := mailout(t, nil, "dkim", "keygen", "--domain", "example.com", "--out", key); r.code != exitUsage {
		t.Errorf("keygen over an existing key: exit %d, want %d", r.code, exitUsage)
	}
	return key, value.String()
}

// Every message of a signed campaign verifies at the receiver with the
// record keygen printed, and the key never shows in any output.
func TestSendSignsWithDKIM(t *testing.T) {
	for _, algo := range []string{"rsa", "ed25519"} {
		t.Run(algo, func(t *testing.T) {
			key, record := keygen(t, algo)
			s := smtptest.Start(t, smtptest.Options{})
			db := filepath.Join(t.TempDir(), "mailout.db")
			emails := manyRecipients(20, "example.org")
			r := mailout(t, nil, "send", "--db", db, "--recipients", writeList(t, emails...),
				"--message", writeMessage(t, testMessage), "--relay", "smtp+insecure://"+s.Addr,
				"--dkim-key", key, "--dkim-selector", "s1", "--profile", "fast")
			if r.code != exitOK {
				t.Fatalf("send: %d %s", r.code, r.stderr)
			}
			pem, _ := os.ReadFile(key)
			secret := strings.Split(string(pem), "\n")[1]
			if strings.Contains(r.stdout+r.stderr, secret) {
				t.Error("output shows the private key")
			}
			msgs := s.Messages()
			if len(msgs) != len(emails) {
				t.Fatalf("%d messages received, want %d", len(msgs), len(emails))
			}
			for _, m := range msgs {
				vs, err := msgdkim.VerifyWithOptions(bytes.NewReader(m.Data), &msgdkim.VerifyOptions{
					LookupTXT: func(name string) ([]string, error) {
						if name == "s1._domainkey.example.com" {
							return []string{record}, nil
						}
						return nil, fmt.Errorf("no TXT at %s", name)
					}})
				if err != nil || len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != "example.com" {
					t.Fatalf("message to %v: verify err %v, verifications %+v", m.Rcpts, err, vs)
				}
			}
		})
	}
}

// A key that cannot be used stops the send before anything is stored.
func TestSendRefusesBadDKIMKey(t *testing.T) {
	db := filepath.Join(t.TempDir(), "mailout.db")
	bad := filepath.Join(t.TempDir(), "bad.pem")
	if err := os.WriteFile(bad, []byte("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{bad, filepath.Join(t.TempDir(), "missing.pem")} {
		r := mailout(t, nil, "send", "--db", db, "--recipients", writeList(t, "a@example.org"),
			"--message", writeMessage(t, testMessage), "--dkim-key", key)
		if r.code != exitUsage || !strings.Contains(r.stderr, "DKIM") || !strings.Contains(r.stderr, key) {
			t.Errorf("key %s: exit %d, %s; want a usage error naming DKIM and the file", key, r.code, r.stderr)
		}
		if strings.Contains(r.stderr, "not a key") {
			t.Error("the error shows the key file's content")
		}
	}
	if r := mailout(t, nil, "campaigns", "--db", db); !strings.Contains(r.stdout, "No campaigns") && !strings.Contains(r.stderr, "does not exist") {
		t.Errorf("a campaign was stored: %s", r.stdout)
	}
}

// dkim check asks the given DNS server: published and matching passes; a
// missing record and another key's record fail with the record to publish.
func TestDKIMCheck(t *testing.T) {
	key, record := keygen(t, "rsa")
	_, otherRecord := keygen(t, "rsa")
	zone := mxtest.NewZone()
	dnsSrv := mxtest.Start(t, zone)
	check := func() result {
		return mailout(t, nil, "dkim", "check", "--key", key, "--domain", "example.com", "--selector", "s1", "--dns", dnsSrv.Addr())
	}
	r := check()
	if r.code != exitError || !strings.Contains(r.stderr, "s1._domainkey.example.com") || !strings.Contains(r.stderr, record[:40]) {
		t.Errorf("no record: exit %d %s; want an error naming the record to publish", r.code, r.stderr)
	}
	zone.RR(`s1._domainkey.example.com. 300 IN TXT "` + otherRecord + `"`)
	if r := check(); r.code != exitError || !strings.Contains(r.stderr, "belongs to another private key") {
		t.Errorf("another key's record: exit %d %s", r.code, r.stderr)
	}
	zone.Remove("s1._domainkey.example.com").RR(`s1._domainkey.example.com. 300 IN TXT "` + record + `"`)
	if r := check(); r.code != exitOK || !strings.HasPrefix(r.stdout, "OK") {
		t.Errorf("published: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
}
