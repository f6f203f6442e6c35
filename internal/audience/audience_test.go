package audience

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"iter"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"mailout/internal/recipient"
	"mailout/internal/store"
	"mailout/internal/store/sqlite"
)

func openService(t *testing.T) (*Service, store.Store) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "mailout.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return New(st), st
}

func create(t *testing.T, s *Service, name string) *store.List {
	t.Helper()
	l, err := s.Create(context.Background(), name)
	if err != nil {
		t.Fatalf("Create(%q): %v", name, err)
	}
	return l
}

func importCSV(t *testing.T, s *Service, list int64, csv string) *ImportResult {
	t.Helper()
	res, err := s.Import(context.Background(), list, strings.NewReader(csv), "import:test.csv", recipient.Options{})
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	return res
}

func all(t *testing.T, s *Service, list int64) []store.Subscriber {
	t.Helper()
	ss, err := s.Subscribers(context.Background(), list, store.SubscriberFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return ss
}

func rejected(res *ImportResult) []string {
	var out []string
	for _, e := range res.Rejected {
		out = append(out, fmt.Sprintf("%d: %s", e.Line, e.Reason))
	}
	return out
}

// An import stores the good rows, lists the bad ones with their line and
// reason, and a second import updates the addresses the list has.
func TestImportAddsUpdatesAndRejectsRows(t *testing.T) {
	ctx := context.Background()
	s, _ := openService(t)
	l := create(t, s, "members")
	res := importCSV(t, s, l.ID, "email,first_name\nana@example.org,Ana\nnot-an-address,X\nbo@example.org,Bo\nana@example.org,Again\n")
	if res.Added != 2 || res.Updated != 0 {
		t.Errorf("first import: %d added, %d updated; want 2, 0", res.Added, res.Updated)
	}
	if got := rejected(res); !slices.Equal(got, []string{"3: invalid address: missing @: an address looks like name@example.com", "5: duplicate of line 2"}) {
		t.Errorf("rejected rows %q", got)
	}
	res = importCSV(t, s, l.ID, "first_name,email,city\nAnita,ANA@example.org,Oslo\nCy,cy@example.org,Rome\n")
	if res.Added != 1 || res.Updated != 1 || len(res.Rejected) != 0 {
		t.Errorf("second import: %+v; want 1 added, 1 updated", res)
	}
	ss := all(t, s, l.ID)
	if len(ss) != 3 || ss[0].Email != "ANA@example.org" || ss[0].Fields["first_name"] != "Anita" || ss[0].Fields["city"] != "Oslo" {
		t.Errorf("subscribers after the update: %+v", ss)
	}
	got, err := s.Get(ctx, l.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Columns, []string{"email", "first_name", "city"}) || got.Subscribers != 3 {
		t.Errorf("list %+v: want columns [email first_name city] and 3 subscribers", got)
	}
	if _, err := s.Import(ctx, l.ID+99, strings.NewReader("email\na@example.org\n"), "x", recipient.Options{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("import into no list: %v, want store.ErrNotFound", err)
	}
}

// A problem with the file as a whole stores nothing, not even the rows
// before it, and comes back typed.
func TestImportFileErrorStoresNothing(t *testing.T) {
	ctx := context.Background()
	s, _ := openService(t)
	l := create(t, s, "capped")
	importCSV(t, s, l.ID, "email,name\nkeep@example.org,Old\n")
	_, err := s.Import(ctx, l.ID, strings.NewReader("email,name\nkeep@example.org,New\nb@example.org,B\nc@example.org,C\n"),
		"import:big.csv", recipient.Options{MaxRows: 2})
	var fe *recipient.FileError
	if !errors.As(err, &fe) || !errors.Is(err, recipient.ErrTooManyRows) {
		t.Fatalf("over the row cap: %v, want a *recipient.FileError wrapping ErrTooManyRows", err)
	}
	_, err = s.Import(ctx, l.ID, strings.NewReader("email,n\xffme\nz@example.org,Z\n"), "import:latin1.csv", recipient.Options{})
	if !errors.As(err, &fe) {
		t.Fatalf("a header that is not UTF-8: %v, want a *recipient.FileError", err)
	}
	ss := all(t, s, l.ID)
	if len(ss) != 1 || ss[0].Fields["name"] != "Old" {
		t.Errorf("after failed imports: %+v, want keep@ alone and unchanged", ss)
	}
}

// An exported list imported into a new list gives the same list: columns
// in order, addresses and every field, whatever the cells hold, from the
// spreadsheet-safe export and from the raw one. The safe export has no
// cell a spreadsheet would run as a formula.
func TestExportThenImportGivesTheSameList(t *testing.T) {
	ctx := context.Background()
	s, _ := openService(t)
	l := create(t, s, "original")
	in := "Name;\"Correo\";city;\"notes; a;b;c;d\"\n" +
		"\"Pérez, Ana\";ana@example.org;Málaga;\"said \"\"hi\"\"\nand left\"\n" +
		"=SUM(A1);\"\"\"bo q\"\"@example.org\";;\t tabbed\n" +
		"Zoë;zoe@bücher.example;Köln;x\n" +
		"\"=HYPERLINK(\"\"http://evil.example\"\",\"\"click\"\")\";=eve@example.org;+34 600;@x\n" +
		"'=already quoted;-dash@example.org;'plain;-1\n"
	if res := importCSV(t, s, l.ID, in); res.Added != 5 || len(res.Rejected) != 0 {
		t.Fatalf("import: %+v", res)
	}
	for _, raw := range []bool{false, true} {
		var out bytes.Buffer
		if err := s.Export(ctx, l.ID, &out, raw); err != nil {
			t.Fatal(err)
		}
		if !raw {
			rows, err := csv.NewReader(bytes.NewReader(out.Bytes())).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			for _, row := range rows[1:] {
				for _, cell := range row {
					if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
						t.Errorf("the export holds %q, a formula to a spreadsheet", cell)
					}
				}
			}
		}
		copyList := create(t, s, fmt.Sprintf("copy-raw-%v", raw))
		if res := importCSV(t, s, copyList.ID, out.String()); res.Added != 5 || len(res.Rejected) != 0 {
			t.Fatalf("re-import of the export (raw %v): %+v\n%s", raw, res, out.String())
		}
		a, b := all(t, s, l.ID), all(t, s, copyList.ID)
		for i := range a {
			if a[i].Email != b[i].Email || a[i].Key != b[i].Key || !maps.Equal(a[i].Fields, b[i].Fields) {
				t.Errorf("raw %v, subscriber %d: exported and re-imported %+v, was %+v", raw, i, b[i], a[i])
			}
		}
		la, _ := s.Get(ctx, l.ID)
		lb, _ := s.Get(ctx, copyList.ID)
		if want := []string{"Name", "Correo", "city", "notes; a;b;c;d"}; !slices.Equal(la.Columns, want) || !slices.Equal(lb.Columns, want) {
			t.Errorf("columns %q and %q, want %q", la.Columns, lb.Columns, want)
		}
	}
}

// Update and Add check what a person typed by the CSV import's rules: an
// address the import refuses, a control character, another subscriber's
// address are refused, typed; a good edit changes the address column too.
func TestUpdateAndAddCheckAsTheImportDoes(t *testing.T) {
	ctx := context.Background()
	s, _ := openService(t)
	l := create(t, s, "edit")
	importCSV(t, s, l.ID, "name,E-mail\nAna,ana@example.org\nBo,bo@example.org\n")
	ss := all(t, s, l.ID)
	ana := ss[0]

	var ie *InvalidError
	if _, err := s.Update(ctx, l.ID, ana.ID, "ana@@example.org", map[string]string{"name": "Ana"}); !errors.As(err, &ie) || !strings.HasPrefix(ie.Reason, "invalid address: ") {
		t.Errorf("Update with a bad address: %v, want an *InvalidError about the address", err)
	}
	if _, err := s.Update(ctx, l.ID, ana.ID, "ana@example.org", map[string]string{"name": "A\x00na"}); !errors.As(err, &ie) || !strings.Contains(ie.Reason, "control character U+0000") {
		t.Errorf("Update with a NUL in a field: %v, want an *InvalidError", err)
	}
	if _, err := s.Update(ctx, l.ID, ana.ID, "Bo@Example.org", map[string]string{"name": "Ana"}); !errors.Is(err, store.ErrExists) {
		t.Errorf("Update onto another subscriber's address: %v, want store.ErrExists", err)
	}
	if _, err := s.Update(ctx, l.ID, ana.ID, "  ", nil); !errors.As(err, &ie) || ie.Reason != "missing email" {
		t.Errorf("Update without an address: %v, want an *InvalidError", err)
	}
	got, err := s.Update(ctx, l.ID, ana.ID, " Ana.P@Bücher.example ", map[string]string{"name": " Ana P ", "phone": "123"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"name": "Ana P", "E-mail": "Ana.P@Bücher.example", "phone": "123"}
	if got.Email != "Ana.P@xn--bcher-kva.example" || got.Key != "ana.p@xn--bcher-kva.example" || !maps.Equal(got.Fields, want) {
		t.Errorf("after Update: %+v, want fields %v", got, want)
	}
	if stored, _ := s.Subscriber(ctx, l.ID, ana.ID); stored == nil || !maps.Equal(stored.Fields, want) {
		t.Errorf("stored after Update: %+v", stored)
	}

	added, err := s.Add(ctx, l.ID, "cy@example.org", map[string]string{"name": "Cy"}, "form")
	if err != nil || !added {
		t.Fatalf("Add of a new address: %v, %v", added, err)
	}
	added, err = s.Add(ctx, l.ID, "CY@example.org", map[string]string{"name": "Cyril"}, "form")
	if err != nil || added {
		t.Fatalf("Add of a known address: added %v, %v; want an update", added, err)
	}
	if _, err := s.Add(ctx, l.ID, "nope", nil, "form"); !errors.As(err, &ie) {
		t.Errorf("Add of a bad address: %v, want an *InvalidError", err)
	}
	ss = all(t, s, l.ID)
	if len(ss) != 3 || ss[2].Fields["name"] != "Cyril" || ss[2].Source != "form" || ss[2].Fields["E-mail"] != "CY@example.org" {
		t.Errorf("after Add: %+v", ss)
	}

	empty := create(t, s, "empty")
	if _, err := s.Add(ctx, empty.ID, "dee@example.org", map[string]string{"name": "Dee"}, "form"); err != nil {
		t.Fatal(err)
	}
	if e, _ := s.Get(ctx, empty.ID); !slices.Equal(e.Columns, []string{"email", "name"}) {
		t.Errorf("columns of a list made by Add: %q, want [email name]", e.Columns)
	}
}

// Suppressed lists the subscribers a campaign will not send to, with the
// entry, by address or by domain.
func TestSuppressedSubscribers(t *testing.T) {
	ctx := context.Background()
	s, st := openService(t)
	l := create(t, s, "news")
	importCSV(t, s, l.ID, "email\nana@example.org\nbo@spam.example\ncy@example.org\n")
	for _, e := range []store.Suppression{{Key: "cy@example.org", Reason: "unsubscribed"}, {Key: "@spam.example", Reason: "complaint"}} {
		if err := st.Suppress(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	err := s.Suppressed(ctx, l.ID, func(sub *store.Subscriber, e *store.Suppression) error {
		got = append(got, sub.Email+" "+e.Reason)
		return nil
	})
	if err != nil || !slices.Equal(got, []string{"bo@spam.example complaint", "cy@example.org unsubscribed"}) {
		t.Errorf("Suppressed: %q, %v", got, err)
	}
}

// Rows reads a list longer than one chunk whole, in order, as the
// campaign import writes to the same database; Line is the position.
func TestRowsFeedsACampaignImportOfAListLongerThanAChunk(t *testing.T) {
	ctx := context.Background()
	s, st := openService(t)
	l := create(t, s, "long")
	const n = 2*rowsChunk + 345
	var b strings.Builder
	b.WriteString("email,n\n")
	for i := range n {
		fmt.Fprintf(&b, "r%d@example.org,%d\n", i, i)
	}
	if res := importCSV(t, s, l.ID, b.String()); res.Added != n {
		t.Fatalf("imported %d, want %d", res.Added, n)
	}
	line := 0
	next, stop := iter.Pull2(s.Rows(ctx, l.ID))
	defer stop()
	c := &store.Campaign{Name: "long", Route: "sandbox"}
	err := st.ImportCampaign(ctx, c, func() (*store.NewRecipient, error) {
		r, err, ok := next()
		if !ok {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		line++
		if r.Line != line || r.Fields["n"] != fmt.Sprint(line-1) {
			return nil, fmt.Errorf("row %d: line %d, fields %v", line, r.Line, r.Fields)
		}
		return newRecipient(r), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := st.Counts(ctx, c.ID)
	if err != nil || cs.Total != n {
		t.Fatalf("campaign of %d recipients, %v; want %d", cs.Total, err, n)
	}
}
