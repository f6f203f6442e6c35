package main

import (
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"mailout/internal/doctor"
	"mailout/internal/mx/mxtest"
	"mailout/internal/peertest"
)

// TestDoctorRelayCLI: `mailout doctor --relay` against the real Postfix,
// with the password from the environment, in English and Spanish, text and
// JSON; exit 0 when the route works, 1 otherwise; the password never shows.
func TestDoctorRelayCLI(t *testing.T) {
	p := peertest.Postfix(t)
	env := map[string]string{"PW": p.Pass, "BAD": "wrong-secret"}
	relay := "smtp://" + p.User + "@" + p.Submission
	tests := []struct {
		name     string
		args     []string
		code     int
		contains []string
	}{
		{"working", []string{"--relay", relay, "--relay-password-env", "PW", "--relay-ca", p.CAFile},
			0, []string{"(ok)", "[PASS] login (AUTH)", "Send a small test campaign first"}},
		{"wrong password, Spanish", []string{"--relay", relay, "--relay-password-env", "BAD", "--relay-ca", p.CAFile, "--lang", "es"},
			1, []string{"(relay-auth-failed)", "usuario o contraseña incorrectos", "[FALLA] autenticación (AUTH)"}},
		{"relay denied", []string{"--relay", "smtp+insecure://" + p.Plain}, 1,
			[]string{"(relay-denied)", "554 5.7.1", "Relay access denied", "won't relay for you"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mailout(t, env, append([]string{"doctor", "--helo", "doctor.mailout.test"}, tt.args...)...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\n%s%s", r.code, tt.code, r.stdout, r.stderr)
			}
			for _, s := range tt.contains {
				if !strings.Contains(r.stdout, s) {
					t.Errorf("output lacks %q:\n%s", s, r.stdout)
				}
			}
			if strings.Contains(r.stdout+r.stderr, p.Pass) || strings.Contains(r.stdout+r.stderr, "wrong-secret") {
				t.Error("the password is printed")
			}
		})
	}
	t.Run("json", func(t *testing.T) {
		r := mailout(t, env, "doctor", "--relay", relay, "--relay-password-env", "BAD", "--relay-ca", p.CAFile, "--json")
		rep, err := doctor.ParseReport([]byte(r.stdout))
		if err != nil || r.code != 1 || rep.Verdict.ID != doctor.VerdictAuthFailed || rep.Verdict.Advice["es"] == "" {
			t.Errorf("exit %d, %v, %+v\n%s", r.code, err, rep, r.stdout)
		}
	})
}

// TestDoctorDirectCLI: the direct route on loopback through the hidden lab
// flags, domains from --domain and from a stored campaign (--campaign).
func TestDoctorDirectCLI(t *testing.T) {
	z := mxtest.NewZone().MX("lab.test", 10, "mx.lab.test").A("mx.lab.test", "127.0.0.1").
		MX("shop.test", 10, "mx.shop.test").A("mx.shop.test", "127.0.0.1")
	d := mxtest.Start(t, z)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	l.Close() // nothing listens: port 25 refused
	lab := []string{"--dns", d.Addr(), "--allow-loopback-mx", "--mx-port", port, "--json"}

	r := mailout(t, nil, append([]string{"doctor", "--domain", "lab.test"}, lab...)...)
	rep, err := doctor.ParseReport([]byte(r.stdout))
	if err != nil || r.code != 1 || rep.Verdict.ID != doctor.VerdictPort25Refused {
		t.Fatalf("exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}

	db := filepath.Join(t.TempDir(), "m.db")
	send := mailout(t, nil, "send", "--db", db, "--campaign", "spring", "--recipients", writeList(t, "ann@shop.test", "bob@shop.test"),
		"--message", writeMessage(t, testMessage))
	if send.code != 0 {
		t.Fatalf("send: %d %s", send.code, send.stderr)
	}
	r = mailout(t, nil, append([]string{"doctor", "--db", db, "--campaign", "spring"}, lab...)...)
	var got struct {
		Findings []doctor.Finding `json:"findings"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("%v\n%s%s", err, r.stdout, r.stderr)
	}
	var mxDomains []string
	for _, f := range got.Findings {
		if f.ID == "dns.mx" {
			mxDomains = append(mxDomains, f.Subject)
		}
	}
	if strings.Join(mxDomains, ",") != "shop.test" {
		t.Errorf("MX checked for %v, want the campaign's domain shop.test", mxDomains)
	}
	if r := mailout(t, nil, "doctor", "--db", db, "--campaign", "nope"); r.code != exitUsage {
		t.Errorf("unknown campaign: exit %d", r.code)
	}
	if r := mailout(t, nil, "doctor", "--route", "relay"); r.code != exitUsage {
		t.Errorf("--route relay without --relay: exit %d", r.code)
	}
}

// TestDoctorAccountCLI: `mailout doctor --account` finds the relay through
// SRV records of a test DNS server and prints the --relay URL.
func TestDoctorAccountCLI(t *testing.T) {
	p := peertest.Postfix(t)
	_, subPort, _ := net.SplitHostPort(p.Submission)
	z := mxtest.NewZone().RR("_submission._tcp.lab.test. 60 IN SRV 0 1 "+subPort+" submit.lab.test.").A("submit.lab.test", "127.0.0.1")
	d := mxtest.Start(t, z)
	l, err := net.Listen("tcp", "127.0.0.1:0") // no autoconfig server: connections refused
	if err != nil {
		t.Fatal(err)
	}
	web := l.Addr().String()
	l.Close()
	r := mailout(t, nil, "doctor", "--account", "alice@lab.test", "--dns", d.Addr(), "--lab-http", web, "--discover-ports", "1")
	want := "--relay 'smtp://alice%40lab.test@submit.lab.test:" + subPort + "?password-env=MAILOUT_RELAY_PASSWORD'"
	if r.code != 0 || !strings.Contains(r.stdout, want) {
		t.Errorf("exit %d, want %s\n%s%s", r.code, want, r.stdout, r.stderr)
	}
}
