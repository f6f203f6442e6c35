package main

import (
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"mailout/internal/doctor"
	"mailout/internal/mx/mxtest"
	"mailout/internal/smtptest"
)

// TestDirectStaleMXFailsOnlyItsRecipient: one recipient domain still
// publishes an MX record for a server that no longer hosts it (a stale MX,
// an abandoned domain): that server answers RCPT with "554 5.7.1 Relay
// access denied", as Postfix does for a domain it does not serve. On the
// direct route this is the recipient's problem, not the route's: the
// campaign delivers everyone else, fails that one recipient with advice
// that says why, and ends with exit status 0 — no pause, nothing to resume.
// Every lab MX presents a self-signed certificate, as many real MX hosts
// do; opportunistic TLS takes it (RFC 7435). `mailout doctor` on the
// campaign then finds no network fault and names the stale MX.
func TestDirectStaleMXFailsOnlyItsRecipient(t *testing.T) {
	const (
		goodMX  = "127.0.0.71"
		good2MX = "127.0.0.72"
		staleMX = "127.0.0.73"
	)
	opts := map[string]smtptest.Options{}
	for ip, host := range map[string]string{goodMX: "mx.good.test", good2MX: "mx.good2.test", staleMX: "mx.stale.test"} {
		srvTLS, _, _ := smtptest.NewTestCert(t, host)
		opts[ip] = smtptest.Options{Domain: host, TLS: srvTLS}
	}
	// The stale MX serves some other domain now, and refuses to relay for
	// stale.test.
	o := opts[staleMX]
	o.RelayDomains = []string{"someone-else.test"}
	opts[staleMX] = o
	lab := startMXLab(t, opts, goodMX, good2MX, staleMX)

	z := mxtest.NewZone().
		MX("good.test", 10, "mx.good.test").A("mx.good.test", goodMX).
		MX("good2.test", 10, "mx.good2.test").A("mx.good2.test", good2MX).
		MX("stale.test", 10, "mx.stale.test").A("mx.stale.test", staleMX)
	dnsSrv := mxtest.Start(t, z)

	emails := append(manyRecipients(5, "good.test"), "gone@stale.test")
	emails = append(emails, manyRecipients(3, "good2.test")...)
	db := filepath.Join(t.TempDir(), "mailout.db")
	r := mailout(t, nil, directArgs(db, "stale", writeList(t, emails...), writeMessage(t, testMessage),
		dnsSrv.Addr(), lab.port, "--profile", "fast", "--rate", "0", "--domain-rate", "0", "--json")...)
	if r.code != exitOK {
		t.Fatalf("exit %d, want %d (every recipient final)\n%s\n%s", r.code, exitOK, r.stdout, r.stderr)
	}

	var sum struct {
		Status    string         `json:"status"`
		Delivered int            `json:"delivered"`
		Failed    int            `json:"failed"`
		FailedBy  map[string]int `json:"failed_by_class"`
		Pending   int            `json:"pending"`
		Diagnosis json.RawMessage
	}
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil {
		t.Fatalf("summary: %v\n%s", err, r.stdout)
	}
	if sum.Delivered != 8 || sum.Failed != 1 || sum.Pending != 0 || sum.FailedBy["domain-not-hosted"] != 1 {
		t.Errorf("summary: status %s, %d delivered, %d failed %v, %d pending; want 8 delivered, 1 failed domain-not-hosted, 0 pending",
			sum.Status, sum.Delivered, sum.Failed, sum.FailedBy, sum.Pending)
	}
	if len(sum.Diagnosis) != 0 {
		t.Errorf("the campaign ran a diagnosis (it paused): %s", sum.Diagnosis)
	}

	rows := byEmail(reportRows(t, db, "stale"))
	for _, e := range emails {
		row := rows[e]
		if row == nil {
			t.Errorf("no report row for %s", e)
			continue
		}
		if e != "gone@stale.test" {
			if row["state"] != "delivered" {
				t.Errorf("%s: %v %v (%v), want delivered", e, row["state"], row["class"], row["text"])
			}
			continue
		}
		if row["state"] != "failed" || row["class"] != "domain-not-hosted" || row["code"] != 554.0 || row["host"] != "mx.stale.test" {
			t.Errorf("%s: %v %v %v at %v (%v); want failed domain-not-hosted 554 at mx.stale.test",
				e, row["state"], row["class"], row["code"], row["host"], row["text"])
		}
		if adv, _ := row["advice"].(string); !strings.Contains(adv, "MX record is probably stale") {
			t.Errorf("%s: advice %q does not say the MX record is probably stale", e, adv)
		}
	}
	es := mailout(t, nil, "report", "stale", "--db", db, "--format", "json", "--lang", "es")
	if !strings.Contains(es.stdout, "registro MX probablemente está desactualizado") {
		t.Errorf("Spanish report lacks the stale-MX advice:\n%s", es.stdout)
	}

	// The doctor, asked about the campaign's domains, finds no network
	// fault: the self-signed certificates are warnings, the stale MX is a
	// warning naming the cause, and the JSON keeps its stable codes.
	doc := mailout(t, nil, "doctor", "--db", db, "--campaign", "stale", "--dns", dnsSrv.Addr(),
		"--allow-loopback-mx", "--mx-port", strconv.Itoa(lab.port), "--json")
	rep, err := doctor.ParseReport([]byte(doc.stdout))
	if err != nil || doc.code != 0 || rep.Verdict.ID != doctor.VerdictOK {
		t.Fatalf("doctor: exit %d, %v, verdict %+v\n%s%s", doc.code, err, rep, doc.stdout, doc.stderr)
	}
	seen := map[string]bool{}
	for _, f := range rep.Findings {
		switch {
		case f.ID == "smtp.starttls":
			seen["starttls"] = true
			if f.Severity != doctor.Warn || f.Code != "unknown-authority" {
				t.Errorf("doctor %s %s: %s %s, want warn unknown-authority", f.ID, f.Subject, f.Severity, f.Code)
			}
		case f.ID == "smtp.rcpt" && strings.HasPrefix(f.Subject, "mx.stale.test"):
			seen["stale"] = true
			if f.Severity != doctor.Warn || f.Code != "554" || !strings.Contains(strings.Join(f.Evidence, "\n"), "domain-not-hosted") {
				t.Errorf("doctor %s %s: %+v, want warn 554 domain-not-hosted", f.ID, f.Subject, f)
			}
		case f.ID == "smtp.rcpt":
			if f.Severity != doctor.Pass || f.Code != "250" {
				t.Errorf("doctor %s %s: %s %s, want pass 250", f.ID, f.Subject, f.Severity, f.Code)
			}
		}
	}
	if !seen["starttls"] || !seen["stale"] {
		t.Errorf("doctor findings lack STARTTLS or the stale MX's RCPT check: %+v", rep.Findings)
	}

	// Each good recipient received exactly once, at its own MX; nothing at
	// the stale one.
	got := map[string]int{}
	for ip, s := range lab.servers {
		for _, m := range s.Messages() {
			for _, rc := range m.Rcpts {
				got[rc]++
				if ip == staleMX {
					t.Errorf("the stale MX accepted %s", rc)
				}
			}
		}
	}
	for _, e := range emails {
		want := 1
		if e == "gone@stale.test" {
			want = 0
		}
		if got[e] != want {
			t.Errorf("%s received %d times, want %d", e, got[e], want)
		}
	}
}
