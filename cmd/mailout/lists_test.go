package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A list is made, filled from CSV files (bad rows reported by line, known
// addresses updated), shown, exported in its column order, sent to with
// send --list (a suppressed subscriber is not sent to) and deleted, the
// campaign keeping its recipients.
func TestListsFromImportToCampaign(t *testing.T) {
	db := filepath.Join(t.TempDir(), "mailout.db")
	if r := mailout(t, nil, "lists", "create", "news", "--db", db); r.code != exitOK {
		t.Fatalf("lists create: %d %s", r.code, r.stderr)
	}
	if r := mailout(t, nil, "lists", "create", "news", "--db", db); r.code != exitUsage || !strings.Contains(r.stderr, `a list named "news" exists already`) {
		t.Errorf("lists create of a taken name: %d %s", r.code, r.stderr)
	}

	first := writeFile(t, "first.csv", []byte("first_name,email\nAna,ana@example.org\nX,not-an-address\nBo,bo@example.org\n"))
	r := mailout(t, nil, "lists", "import", "news", first, "--db", db)
	if r.code != exitOK || !strings.Contains(r.stderr, "first.csv:3: invalid address: missing @") ||
		!strings.Contains(r.stderr, `List "news": 2 added, 0 updated from first.csv, 1 rows rejected`) {
		t.Fatalf("lists import: %d %s", r.code, r.stderr)
	}
	second := writeFile(t, "second.csv", []byte("email,first_name,city\nBO@example.org,Bob,Oslo\ncy@example.org,Cy,Rome\n"))
	if r := mailout(t, nil, "lists", "import", "news", second, "--db", db); r.code != exitOK || !strings.Contains(r.stderr, "1 added, 1 updated") {
		t.Fatalf("second lists import: %d %s", r.code, r.stderr)
	}
	big := writeFile(t, "big.csv", []byte("email\nd@example.org\ne@example.org\n"))
	if r := mailout(t, nil, "lists", "import", "news", big, "--db", db, "--max-rows", "1"); r.code != exitError ||
		!strings.Contains(r.stderr, "nothing was imported") || !strings.Contains(r.stderr, "raise it with --max-rows") {
		t.Errorf("lists import over the row cap: %d %s", r.code, r.stderr)
	}

	r = mailout(t, nil, "lists", "show", "--db", db)
	if r.code != exitOK || !strings.Contains(r.stdout, "NAME") || !strings.Contains(strings.Join(strings.Fields(r.stdout), " "), "news 3 3") {
		t.Errorf("lists show: %d %s", r.code, r.stdout)
	}
	out := filepath.Join(t.TempDir(), "out.csv")
	if r := mailout(t, nil, "lists", "export", "news", "-o", out, "--db", db); r.code != exitOK {
		t.Fatalf("lists export: %d %s", r.code, r.stderr)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want := `"first_name","email","city"` + "\nAna,ana@example.org,\nBob,BO@example.org,Oslo\nCy,cy@example.org,Rome\n"
	if string(got) != want {
		t.Errorf("lists export wrote\n%s\nwant\n%s", got, want)
	}

	if r := mailout(t, nil, "suppression", "add", "cy@example.org", "--db", db); r.code != exitOK {
		t.Fatalf("suppression add: %d %s", r.code, r.stderr)
	}
	r = mailout(t, nil, "send", "--db", db, "--list", "news", "--campaign", "spring", "--message", writeMessage(t, testMessage))
	if r.code != exitOK || !strings.Contains(r.stderr, `3 recipients imported from list "news"`) {
		t.Fatalf("send --list: %d %s", r.code, r.stderr)
	}
	rows := byEmail(reportRows(t, db, "spring"))
	for email, state := range map[string]string{"ana@example.org": "delivered", "BO@example.org": "delivered", "cy@example.org": "suppressed"} {
		if rows[email]["state"] != state {
			t.Errorf("%s: %v, want %s", email, rows[email]["state"], state)
		}
	}

	if r := mailout(t, nil, "lists", "delete", "news", "--db", db); r.code != exitOK {
		t.Fatalf("lists delete: %d %s", r.code, r.stderr)
	}
	if r := mailout(t, nil, "lists", "show", "--db", db); !strings.Contains(r.stdout, "No lists") {
		t.Errorf("lists show after delete: %s", r.stdout)
	}
	if rows := reportRows(t, db, "spring"); len(rows) != 3 {
		t.Errorf("the campaign has %d recipients after its list was deleted, want 3", len(rows))
	}
}

// send takes its recipients from exactly one of --recipients and --list;
// a list that does not exist, like a missing argument, is a usage error.
func TestSendNeedsExactlyOneListSource(t *testing.T) {
	db := filepath.Join(t.TempDir(), "mailout.db")
	msg := writeMessage(t, testMessage)
	if r := mailout(t, nil, "lists", "create", "news", "--db", db); r.code != exitOK {
		t.Fatalf("lists create: %d %s", r.code, r.stderr)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"neither", nil, "exactly one of --recipients FILE.csv and --list NAME"},
		{"both", []string{"--list", "news", "--recipients", writeList(t, "a@example.org")}, "exactly one of"},
		{"no such list", []string{"--list", "nope"}, `no list named "nope"`},
		{"lists import into no list", nil, ""},
	} {
		args := append([]string{"send", "--db", db, "--message", msg}, tc.args...)
		if tc.name == "lists import into no list" {
			args = []string{"lists", "import", "nope", writeList(t, "a@example.org"), "--db", db}
			tc.want = `no list named "nope"`
		}
		r := mailout(t, nil, args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s: exit %d, %s; want %d and %q", tc.name, r.code, r.stderr, exitUsage, tc.want)
		}
	}
	if r := mailout(t, nil, "campaigns", "--db", db); !strings.Contains(r.stdout, "No campaigns") {
		t.Errorf("a refused send stored a campaign: %s", r.stdout)
	}
}

// A cell a spreadsheet would run as a formula (here from a sign-up form's
// name field) is exported with a single quote in front, which the import
// takes off: the copy holds what the list held. --raw writes it as stored.
func TestListsExportQuotesFormulas(t *testing.T) {
	db := filepath.Join(t.TempDir(), "mailout.db")
	for _, name := range []string{"news", "copy"} {
		if r := mailout(t, nil, "lists", "create", name, "--db", db); r.code != exitOK {
			t.Fatalf("lists create: %d %s", r.code, r.stderr)
		}
	}
	in := writeFile(t, "in.csv", []byte("email,first_name\n=ana@example.org,\"=HYPERLINK(\"\"http://evil.example\"\",\"\"prize\"\")\"\nbo@example.org,Bo\n"))
	if r := mailout(t, nil, "lists", "import", "news", in, "--db", db); r.code != exitOK {
		t.Fatalf("lists import: %d %s", r.code, r.stderr)
	}
	safe := mailout(t, nil, "lists", "export", "news", "--db", db)
	raw := mailout(t, nil, "lists", "export", "news", "--raw", "--db", db)
	if safe.code != exitOK || raw.code != exitOK {
		t.Fatalf("lists export: %d %s / %d %s", safe.code, safe.stderr, raw.code, raw.stderr)
	}
	wantRaw := "\"email\",\"first_name\"\n=ana@example.org,\"=HYPERLINK(\"\"http://evil.example\"\",\"\"prize\"\")\"\nbo@example.org,Bo\n"
	if raw.stdout != wantRaw {
		t.Errorf("lists export --raw wrote\n%s\nwant\n%s", raw.stdout, wantRaw)
	}
	wantSafe := "\"email\",\"first_name\"\n'=ana@example.org,\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"prize\"\")\"\nbo@example.org,Bo\n"
	if safe.stdout != wantSafe {
		t.Errorf("lists export wrote\n%s\nwant\n%s", safe.stdout, wantSafe)
	}
	if r := mailout(t, nil, "lists", "import", "copy", writeFile(t, "safe.csv", []byte(safe.stdout)), "--db", db); r.code != exitOK {
		t.Fatalf("import of the export: %d %s", r.code, r.stderr)
	}
	if again := mailout(t, nil, "lists", "export", "copy", "--raw", "--db", db); again.stdout != wantRaw {
		t.Errorf("the export imported again holds\n%s\nwant\n%s", again.stdout, wantRaw)
	}
}
