package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mailout/internal/dkim"
	"mailout/internal/doctor"
	"mailout/internal/mx/mxtest"
)

// writeDKIMKey writes a new Ed25519 key and returns its file and the
// signer for example.com, selector s1.
func writeDKIMKey(t *testing.T) (string, *dkim.Signer) {
	t.Helper()
	key, err := dkim.GenerateKey("ed25519", 0)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "dkim.pem")
	if err := os.WriteFile(file, key, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := dkim.New("example.com", "s1", key, dkim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return file, s
}

// TestDoctorSenderCLI: `mailout doctor --sender` against a test DNS server
// serving SPF, DKIM and DMARC; exit 0 when nothing fails, 1 otherwise, 2 on
// wrong flags; text in English and Spanish, and JSON.
func TestDoctorSenderCLI(t *testing.T) {
	keyFile, signer := writeDKIMKey(t)
	otherKey, _ := writeDKIMKey(t)
	name, value := signer.DNSRecord()
	z := mxtest.NewZone().A("smtp.relay.test", "127.0.0.10").
		RR(fmt.Sprintf("example.com. 300 IN TXT %q", "v=spf1 ip4:127.0.0.10 -all")).
		RR(fmt.Sprintf("%s. 300 IN TXT %q", name, value)).
		RR(fmt.Sprintf("_dmarc.example.com. 300 IN TXT %q", "v=DMARC1; p=reject; rua=mailto:d@example.com"))
	d := mxtest.Start(t, z)
	relay := []string{"doctor", "--sender", "news@example.com", "--relay", "smtp://me:cli-secret@smtp.relay.test:587", "--dns", d.Addr()}

	r := mailout(t, nil, append(relay, "--dkim-key", keyFile, "--dkim-selector", "s1")...)
	if r.code != 0 || !strings.Contains(r.stdout, "(sender-ok)") || !strings.Contains(r.stdout, "List-Unsubscribe") {
		t.Fatalf("good sender: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	r = mailout(t, nil, append(relay, "--dkim-key", otherKey, "--dkim-selector", "s1", "--lang", "es")...)
	if r.code != 1 || !strings.Contains(r.stdout, "(dkim-key-mismatch)") || !strings.Contains(r.stdout, "la clave DKIM publicada es otra") {
		t.Fatalf("key mismatch: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, "cli-secret") {
		t.Error("the password is printed")
	}

	// Direct route from 127.0.0.10: no PTR record.
	r = mailout(t, nil, "doctor", "--sender", "news@example.com", "--route", "direct", "--dns", d.Addr(),
		"--source-ip", "127.0.0.10", "--helo", "smtp.relay.test", "--dkim-key", keyFile, "--dkim-selector", "s1", "--json")
	rep, err := doctor.ParseReport([]byte(r.stdout))
	if err != nil || r.code != 1 || rep.Verdict.ID != doctor.VerdictFCrDNSMissing || rep.From != "news@example.com" {
		t.Fatalf("direct: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}

	for _, args := range [][]string{
		{"doctor", "--dkim-key", keyFile},
		{"doctor", "--source-ip", "127.0.0.10"},
		{"doctor", "--sender", "not-an-address", "--dns", d.Addr()},
		{"doctor", "--sender", "news@example.com", "--source-ip", "nope", "--dns", d.Addr()},
		{"doctor", "--sender", "news@example.com", "--dkim-key", filepath.Join(t.TempDir(), "none.pem"), "--dns", d.Addr()},
	} {
		if r := mailout(t, nil, args...); r.code != exitUsage {
			t.Errorf("%v: exit %d, want %d\n%s", args, r.code, exitUsage, r.stderr)
		}
	}
}
