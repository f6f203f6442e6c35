package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"mailout/internal/outcome"
	"mailout/internal/queue"
	"mailout/internal/store"
)

func TestCSVNeutralisesFormulas(t *testing.T) {
	var b bytes.Buffer
	w, err := NewWriter(&b, FormatCSV, false)
	if err != nil {
		t.Fatal(err)
	}
	evil := []string{"=HYPERLINK(\"http://x\",\"y\")", "+1", "-2", "@SUM(A1)", "\tx", "\rx"}
	for _, e := range evil {
		d := &store.Delivery{Line: 2, Email: "a@example.org", State: queue.Failed, Class: "permanent", Text: e}
		if err := w.Write(NewRow(d, "relay", "en")); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(evil)+1 || strings.Join(recs[0], ",") != strings.Join(Columns, ",") {
		t.Fatalf("header or row count wrong: %v", recs)
	}
	for i, r := range recs[1:] {
		text := r[6]
		if text == "" || strings.ContainsAny(text[:1], "=+-@\t\r") {
			t.Errorf("row %d: cell %q would run as a formula", i, text)
		}
	}
	// --raw keeps the text exactly.
	b.Reset()
	w, _ = NewWriter(&b, FormatCSV, true)
	_ = w.Write(NewRow(&store.Delivery{Email: "a@example.org", State: queue.Failed, Text: "=1+1"}, "relay", "en"))
	_ = w.Close()
	if !strings.Contains(b.String(), ",=1+1,") {
		t.Errorf("raw export changed the cell: %s", b.String())
	}
}

func TestRowsCarryAdviceForFailures(t *testing.T) {
	d := &store.Delivery{Email: "a@example.org", State: queue.Failed, Class: "recipient-unknown", Code: 550, Enhanced: "5.1.1"}
	if r := NewRow(d, "relay", "es"); r.Advice == "" || r.Advice == NewRow(d, "relay", "en").Advice {
		t.Fatalf("advice en/es: %q", r.Advice)
	}
	ok := &store.Delivery{Email: "b@example.org", State: queue.Delivered, Class: "delivered"}
	if r := NewRow(ok, "relay", "en"); r.Advice != "" {
		t.Errorf("advice on a delivered row: %q", r.Advice)
	}
}

func TestSummaryJSON(t *testing.T) {
	now := time.Now()
	c := &store.Campaign{Name: "c", Status: store.CampaignRunning, CreatedAt: now, MaxAge: time.Hour}
	n := &store.Counts{Total: 5, ByState: map[queue.State]int{queue.Delivered: 2, queue.Failed: 1, queue.Deferred: 2},
		ByClass: map[outcome.Class]int{"recipient-unknown": 1}, NextDue: now.Add(time.Minute)}
	var b bytes.Buffer
	if err := NewSummary(c, n).WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got["delivered"] != 2.0 || got["deferred"] != 2.0 || got["failed_by_class"].(map[string]any)["recipient-unknown"] != 1.0 || got["next_retry"] == nil {
		t.Fatalf("summary %v", got)
	}
}

func TestDomainsTally(t *testing.T) {
	tallies := []store.DomainTally{
		{Domain: "a.test", State: queue.Delivered, Host: "mx2.a.test", N: 1},
		{Domain: "a.test", State: queue.Failed, Class: "recipient-unknown", Host: "mx2.a.test", N: 1},
		{Domain: "a.test", State: queue.Delivered, Host: "mx1.a.test", N: 1},
		{Domain: "a.test", State: queue.Pending, N: 2},
		{Domain: "b.test", State: queue.Deferred, Class: "greylisted", Host: "mx.b.test", N: 1},
	}
	rows := Domains(tallies)
	if len(rows) != 2 || rows[0].Domain != "a.test" || rows[0].Total != 5 || rows[0].Delivered != 2 || rows[0].Failed != 1 ||
		rows[0].Pending != 2 || rows[0].Classes["recipient-unknown"] != 1 || strings.Join(rows[0].Hosts, ",") != "mx1.a.test,mx2.a.test" {
		t.Fatalf("rows %+v", rows)
	}
	if rows[1].Deferred != 1 {
		t.Fatalf("b.test %+v", rows[1])
	}
	var b bytes.Buffer
	if err := WriteDomains(&b, rows, 1); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "mx1.a.test mx2.a.test") || !strings.Contains(b.String(), "1 more domains") {
		t.Fatalf("table:\n%s", b.String())
	}
}

// A domain served by many mail servers lists the ones that took the most
// of its messages.
func TestDomainsListsTheBusiestHosts(t *testing.T) {
	var tallies []store.DomainTally
	for i := range 6 {
		tallies = append(tallies, store.DomainTally{Domain: "big.test", State: queue.Delivered,
			Host: fmt.Sprintf("mx%d.big.test", i), N: 10 * (i + 1)})
	}
	rows := Domains(tallies)
	if got, want := strings.Join(rows[0].Hosts, ","), "mx2.big.test,mx3.big.test,mx4.big.test,mx5.big.test"; got != want {
		t.Errorf("hosts %s, want %s", got, want)
	}
	if rows[0].Total != 210 {
		t.Errorf("total %d, want 210", rows[0].Total)
	}
}
