package recipient

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	"mailout/internal/addr"
)

type result struct {
	good  []Recipient
	bad   []RowError
	stats Stats
	err   error
}

func read(t *testing.T, input string, opt Options) result {
	t.Helper()
	var res result
	res.stats, res.err = Read(context.Background(), strings.NewReader(input), opt,
		func(r Recipient) error { res.good = append(res.good, r); return nil },
		func(e RowError) { res.bad = append(res.bad, e) })
	if s := res.stats; s.Rows != s.Imported+s.Invalid+s.Duplicates {
		t.Errorf("stats %+v do not add up", s)
	}
	return res
}

// lines returns "line:address" for the good rows, to compare in one go.
func (r result) lines() []string {
	var out []string
	for _, g := range r.good {
		out = append(out, fmt.Sprintf("%d:%s", g.Line, g.Address))
	}
	return out
}

func TestReadBasic(t *testing.T) {
	in := "email,first_name, Last Name ,City\n" +
		"ana@example.com,Ana,Pérez,Málaga\n" +
		"  Bob@Example.ORG , Bob ,Smith,\"Paris, France\"\n"
	res := read(t, in, Options{})
	if res.err != nil {
		t.Fatal(res.err)
	}
	if len(res.good) != 2 || len(res.bad) != 0 {
		t.Fatalf("got %d good, %v bad; want 2, none", len(res.good), res.bad)
	}
	want := map[string]string{"email": "Bob@Example.ORG", "first_name": "Bob", "Last Name": "Smith", "City": "Paris, France"}
	if got := res.good[1].Fields; !reflect.DeepEqual(got, want) {
		t.Errorf("Fields = %q, want %q", got, want)
	}
	if got := res.good[1].Address.String(); got != "Bob@example.org" {
		t.Errorf("Address = %q, want Bob@example.org", got)
	}
	if got := res.lines(); !reflect.DeepEqual(got, []string{"2:ana@example.com", "3:Bob@example.org"}) {
		t.Errorf("lines = %q", got)
	}
	if want := (Stats{Rows: 2, Imported: 2}); res.stats != want {
		t.Errorf("stats = %+v, want %+v", res.stats, want)
	}
}

// TestRowErrors covers every RowError reason; none of them stops the import.
func TestRowErrors(t *testing.T) {
	tests := []struct {
		name, row, reason, value string
	}{
		{"invalid address", "bob@localhost,x,y", "invalid address: domain needs a dot", "bob@localhost"},
		{"display name", "Bob <bob@example.com>,x,y", "invalid address: display-name form", "Bob <bob@example.com>"},
		{"missing email", " ,x,y", "missing email", ""},
		{"too few fields", "c@example.com,x", "wrong number of fields: 2, expected 3", "c@example.com"},
		{"too many fields", "c@example.com,x,y,z", "wrong number of fields: 4, expected 3", "c@example.com"},
		{"windows-1252", "c@example.com,Jos\xe9,y", "not UTF-8: save the file as UTF-8", "c@example.com"},
		{"NUL in field", "c@example.com,a\x00b,y", `control character U+0000 in column "name"`, "c@example.com"},
		{"escape in field", "c@example.com,\x1b[31m,y", `control character U+001B in column "name"`, "c@example.com"},
		{"C1 control", "c@example.com,a\u0085,y", `control character U+0085 in column "name"`, "c@example.com"},
		{"lone CR in quoted field", "c@example.com,\"a\rb\",y", `control character U+000D in column "name"`, "c@example.com"},
		{"CRLF injection in address", "\"c@example.com\r\nRCPT TO:<x@example.net>\",x,y", "invalid address: contains a line break", "c@example.com\uFFFDRCPT TO:<x@example.net>"},
		{"quoted local part not CSV-quoted", "\"c d\"@example.com,x,y", "bad quotes: extraneous or missing \" in quoted-field: a cell with quotes", ""},
		{"bare quote", "c@example.com,a\"b,y", "bad quotes: bare \" in non-quoted-field", ""},
		{"duplicate", "A@EXAMPLE.COM,x,y", "duplicate of line 2", "A@EXAMPLE.COM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := "email,name,other\na@example.com,first,row\n" + tt.row + "\nz@example.com,last,row\n"
			res := read(t, in, Options{})
			if res.err != nil {
				t.Fatal(res.err)
			}
			want := []RowError{{Line: 3, Reason: tt.reason, Value: tt.value}}
			if len(res.bad) != 1 || res.bad[0].Line != 3 || !strings.HasPrefix(res.bad[0].Reason, tt.reason) || res.bad[0].Value != tt.value {
				t.Errorf("bad = %q, want %q", res.bad, want)
			}
			var got []string
			for _, g := range res.good {
				got = append(got, g.Address.String())
			}
			if !reflect.DeepEqual(got, []string{"a@example.com", "z@example.com"}) {
				t.Errorf("good = %q, want the rows before and after imported", got)
			}
		})
	}
}

func TestDelimiters(t *testing.T) {
	tests := []struct {
		name string
		in   string
		opt  Options
	}{
		{"comma", "email,name\na@example.com,Ann\n", Options{}},
		{"semicolon", "email;name\na@example.com;Ann\n", Options{}},
		{"tab", "email\tname\na@example.com\tAnn\n", Options{}},
		{"semicolon with commas in a quoted header", "\"nick, name\";email;x\nAnn;a@example.com;1\n", Options{}},
		{"explicit", "email|name\na@example.com|Ann\n", Options{Delimiter: '|'}},
		{"CRLF", "email;name\r\na@example.com;Ann\r\n", Options{}},
		{"BOM", "\xef\xbb\xbfemail,name\na@example.com,Ann\n", Options{}},
		{"BOM semicolon CRLF no final newline", "\xef\xbb\xbfEMAIL;name\r\na@example.com;Ann", Options{}},
		{"header aliases", "Name,E-Mail\nAnn,a@example.com\n", Options{}},
		{"spanish header", "nombre;Correo Electrónico\nAnn;a@example.com\n", Options{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := read(t, tt.in, tt.opt)
			if res.err != nil {
				t.Fatal(res.err)
			}
			if len(res.bad) != 0 || len(res.good) != 1 {
				t.Fatalf("good %q, bad %q; want one good row", res.lines(), res.bad)
			}
			g := res.good[0]
			if g.Address.String() != "a@example.com" || g.Line != 2 {
				t.Errorf("got line %d %q, want line 2 a@example.com", g.Line, g.Address)
			}
			for name, v := range g.Fields {
				if strings.ContainsAny(name, "\ufeff\r") || strings.ContainsAny(v, "\r") {
					t.Errorf("field %q = %q carries a BOM or CR", name, v)
				}
			}
		})
	}
}

func TestLineNumbers(t *testing.T) {
	in := "email,note\r\n" + // 1
		"a@example.com,\"two\r\nlines\"\r\n" + // 2-3
		"\r\n" + // 4 empty
		",\r\n" + // 5 only delimiters
		"b@example.com,\"three\n\nlines\"\n" + // 6-8
		"bad@,x\n" + // 9
		"c@example.com,ok\n" // 10
	res := read(t, in, Options{})
	if res.err != nil {
		t.Fatal(res.err)
	}
	if got, want := res.lines(), []string{"2:a@example.com", "6:b@example.com", "10:c@example.com"}; !reflect.DeepEqual(got, want) {
		t.Errorf("good = %q, want %q", got, want)
	}
	if len(res.bad) != 1 || res.bad[0].Line != 9 {
		t.Errorf("bad = %q, want one at line 9", res.bad)
	}
	if got := res.good[0].Fields["note"]; got != "two\nlines" {
		t.Errorf("multi-line field = %q, want CRLF turned into LF", got)
	}
	if want := (Stats{Rows: 4, Imported: 3, Invalid: 1}); res.stats != want {
		t.Errorf("stats = %+v, want %+v (empty rows not counted)", res.stats, want)
	}
}

// TestDedupe: case and IDN forms are one address;
// +tags and dots are not stripped.
func TestDedupe(t *testing.T) {
	in := "email\n" +
		"bob@bücher.example\n" + // 2
		"bob@xn--bcher-kva.example\n" + // 3 dup of 2
		"Bob@EXAMPLE.com\n" + // 4
		"bob@example.com\n" + // 5 dup of 4
		"\"\"\"bob\"\"@example.com\"\n" + // 6 dup of 4: "bob"@example.com, CSV-quoted
		"bob+tag@example.com\n" + // 7
		"b.ob@example.com\n" // 8
	res := read(t, in, Options{})
	if res.err != nil {
		t.Fatal(res.err)
	}
	want := []RowError{
		{Line: 3, Reason: "duplicate of line 2", Value: "bob@xn--bcher-kva.example"},
		{Line: 5, Reason: "duplicate of line 4", Value: "bob@example.com"},
		{Line: 6, Reason: "duplicate of line 4", Value: "\"bob\"@example.com"},
	}
	if !reflect.DeepEqual(res.bad, want) {
		t.Errorf("bad = %q, want %q", res.bad, want)
	}
	if want := (Stats{Rows: 7, Imported: 4, Duplicates: 3}); res.stats != want {
		t.Errorf("stats = %+v, want %+v", res.stats, want)
	}
}

func TestFileErrors(t *testing.T) {
	tests := []struct {
		name, in, reason string
		opt              Options
		is               error
	}{
		{name: "empty", in: "", reason: "the file is empty"},
		{name: "only blank lines", in: "\n\n\r\n", reason: "the file is empty"},
		{name: "no email column", in: "name,city\nAnn,Rome\n", reason: "no email column"},
		{name: "no header", in: "a@example.com,Ann\nb@example.com,Bob\n", reason: "looks like data, not a header"},
		{name: "duplicate header", in: "email,Name,name\n", reason: `columns 2 and 3 are both named "name"`},
		{name: "two email columns", in: "email,mail\n", reason: "two address columns"},
		{name: "unnamed column", in: "email,,city\n", reason: "column 2 has no name"},
		{name: "UTF-16", in: "\xff\xfee\x00m\x00", reason: "UTF-16"},
		{name: "header not UTF-8", in: "email,ciudad\xf1\n", reason: "header line is not UTF-8"},
		{name: "binary", in: "email,\x00\x01\x02\n", reason: "control character U+0000 in the header"},
		{name: "old Mac line endings", in: "email,name\ra@example.com,Ann\r", reason: "old Mac line endings"},
		{name: "bad header quotes", in: "\"email,name\n", reason: "bad quotes in the header line"},
		{name: "quote as delimiter", in: "email\n", opt: Options{Delimiter: '"'}, reason: "cannot be a delimiter"},
		{name: "row cap", in: "email\na@example.com\nb@example.com\nc@example.com\n", opt: Options{MaxRows: 2}, reason: "more than 2 rows", is: ErrTooManyRows},
		{name: "byte cap", in: "email\na@example.com\nb@example.com\n", opt: Options{MaxBytes: 20}, reason: "more than 20 bytes", is: ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := read(t, tt.in, tt.opt)
			var fe *FileError
			if !errors.As(res.err, &fe) {
				t.Fatalf("err = %v, want a *FileError", res.err)
			}
			if !strings.Contains(fe.Reason, tt.reason) {
				t.Errorf("reason = %q, want it to contain %q", fe.Reason, tt.reason)
			}
			if tt.is != nil && !errors.Is(res.err, tt.is) {
				t.Errorf("err = %v, want errors.Is %v", res.err, tt.is)
			}
		})
	}
}

func TestCapsAtTheLimit(t *testing.T) {
	in := "email\na@example.com\nb@example.com\n"
	res := read(t, in, Options{MaxRows: 2, MaxBytes: int64(len(in))})
	if res.err != nil || res.stats.Imported != 2 {
		t.Fatalf("a file exactly at both caps: %+v, %v; want 2 imported", res.stats, res.err)
	}
	res = read(t, in+"c@example.com\n", Options{MaxRows: 2})
	if !errors.Is(res.err, ErrTooManyRows) || res.stats.Imported != 2 {
		t.Errorf("over the row cap: %+v, %v; want 2 imported then ErrTooManyRows", res.stats, res.err)
	}
}

func TestCallbackErrorStops(t *testing.T) {
	stop := errors.New("disk full")
	n := 0
	st, err := Read(context.Background(), strings.NewReader("email\na@example.com\nb@example.com\n"), Options{},
		func(Recipient) error { n++; return stop }, func(RowError) {})
	if !errors.Is(err, stop) || n != 1 || st.Imported != 1 {
		t.Errorf("Read = %+v, %v after %d calls; want the callback error after 1", st, err, n)
	}
}

func TestContextCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Read(ctx, strings.NewReader("email\na@example.com\n"), Options{},
		func(Recipient) error { t.Error("row delivered after cancel"); return nil }, func(RowError) {})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

// TestExampleFile keeps examples/recipients.csv showing what the README says.
func TestExampleFile(t *testing.T) {
	b, err := os.ReadFile("../../examples/recipients.csv")
	if err != nil {
		t.Fatal(err)
	}
	res := read(t, string(b), Options{})
	if res.err != nil {
		t.Fatal(res.err)
	}
	if res.stats.Invalid != 1 || res.stats.Duplicates != 1 || res.stats.Imported < 10 {
		t.Errorf("stats = %+v, bad = %q; want ≥10 imported, 1 invalid, 1 duplicate", res.stats, res.bad)
	}
	for _, g := range res.good {
		switch g.Address.Domain {
		case "example.com", "example.org", "example.net":
		default:
			t.Errorf("line %d: %s is not a reserved example domain", g.Line, g.Address)
		}
	}
}

func FuzzRead(f *testing.F) {
	for _, s := range []string{
		"email,name\na@example.com,Ann\n",
		"\xef\xbb\xbfemail;name\r\n\"b@example.com\";\"x\ny\"\r\n",
		"email\tCity\nbob@bücher.example\tMünchen\nbob@xn--bcher-kva.example\tx\n",
		"email\n\"john doe\"@example.com\n\"info@\"@example.com\n",
		"email,a\n\"x@example.com\r\nRCPT TO:<y@example.net>\",1\n",
		"name,email\nAnn\n,\n\"unterminated\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		st, _ := Read(context.Background(), strings.NewReader(s), Options{MaxRows: 1000, MaxRecordBytes: 64, MaxFieldBytes: 16},
			func(r Recipient) error {
				again, err := addr.Parse(r.Address.String())
				if err != nil || again != r.Address {
					t.Fatalf("line %d: %q re-parses as %+v, %v", r.Line, r.Address, again, err)
				}
				if r.Line < 2 {
					t.Fatalf("recipient on line %d, before the header ends", r.Line)
				}
				return nil
			},
			func(e RowError) {
				if e.Reason == "" || e.Line < 1 {
					t.Fatalf("row error without line or reason: %+v", e)
				}
			})
		if st.Rows != st.Imported+st.Invalid+st.Duplicates {
			t.Fatalf("stats %+v do not add up", st)
		}
	})
}

// endless is an input that never ends: head, then fill forever, counting
// what was read from it.
type endless struct {
	head string
	fill byte
	read int64
}

func (e *endless) Read(p []byte) (int, error) {
	n := copy(p, e.head)
	e.head = e.head[n:]
	for i := n; i < len(p); i++ {
		p[i] = e.fill
	}
	e.read += int64(len(p))
	return len(p), nil
}

// A row that never ends (/dev/zero given as the list, a quote never
// closed over endless lines) stops Read at the row cap with the line the
// row starts on, after reading at most the cap and a buffer or two.
func TestRowCapStopsEndlessInput(t *testing.T) {
	const limit = 1 << 20
	for _, tc := range []struct {
		name string
		in   *endless
		line int
	}{
		{"zero bytes", &endless{fill: 0}, 1},
		{"endless header line", &endless{head: "email,", fill: 'x'}, 1},
		{"quote never closed", &endless{head: "email,note\na@example.com,ok\n\nb@example.com,\"", fill: '\n'}, 4},
		{"unquoted endless row", &endless{head: "email,note\r\na@example.com,\"two\r\nlines\"\r\nb@example.com,", fill: 'y'}, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := 0
			_, err := Read(context.Background(), tc.in, Options{MaxRecordBytes: limit},
				func(Recipient) error { n++; return nil }, nil)
			var fe *FileError
			if !errors.As(err, &fe) || !errors.Is(err, ErrRecordTooLarge) {
				t.Fatalf("err = %v, want a *FileError wrapping ErrRecordTooLarge", err)
			}
			if fe.Line != tc.line || !strings.Contains(fe.Reason, fmt.Sprint(limit)) {
				t.Errorf("err = %v (line %d), want line %d and the cap %d named", err, fe.Line, tc.line, limit)
			}
			if tc.in.read > limit+3*readBuffer {
				t.Errorf("read %d bytes, want at most the cap and the buffers", tc.in.read)
			}
		})
	}
}

func TestRowCap(t *testing.T) {
	row := func(n int) string { // a row of exactly n bytes, newline included
		const p = "b@example.com,"
		return p + strings.Repeat("x", n-len(p)-1) + "\n"
	}
	head := "email,note\na@example.com,first\n"
	res := read(t, head+row(100)+"c@example.com,last\n", Options{MaxRecordBytes: 100})
	if res.err != nil || res.stats.Imported != 3 {
		t.Fatalf("a row of exactly the cap: %+v, %v; want 3 imported", res.stats, res.err)
	}
	res = read(t, head+row(101)+"c@example.com,last\n", Options{MaxRecordBytes: 100})
	var fe *FileError
	if !errors.As(res.err, &fe) || !errors.Is(res.err, ErrRecordTooLarge) || fe.Line != 3 {
		t.Fatalf("a row one byte over the cap: %v; want ErrRecordTooLarge on line 3", res.err)
	}
	if res.stats.Imported != 1 {
		t.Errorf("imported %d before the long row, want 1", res.stats.Imported)
	}
}

// A field over the cap rejects its row, named by line and column; the
// other rows import.
func TestFieldCap(t *testing.T) {
	in := "email,note\na@example.com,0123456789abcd\nb@example.com,\"0123456789abcd\n\"\nc@example.com,ok\n"
	res := read(t, in, Options{MaxFieldBytes: 14})
	if res.err != nil {
		t.Fatal(res.err)
	}
	if got := res.lines(); !reflect.DeepEqual(got, []string{"2:a@example.com", "5:c@example.com"}) {
		t.Errorf("good = %q, want lines 2 and 5", got)
	}
	if len(res.bad) != 1 || res.bad[0].Line != 3 || !errors.Is(res.bad[0], ErrFieldTooLarge) ||
		!strings.Contains(res.bad[0].Reason, `column "note" is 15 bytes long`) || !strings.Contains(res.bad[0].Reason, "cap of 14 bytes") {
		t.Errorf("bad = %q, want line 3 rejected for column \"note\" over the 14-byte cap", res.bad)
	}
	res = read(t, "email,"+strings.Repeat("n", 15)+"\n", Options{MaxFieldBytes: 14})
	var fe *FileError
	if !errors.As(res.err, &fe) || !errors.Is(res.err, ErrFieldTooLarge) || fe.Line != 1 {
		t.Errorf("a header name over the cap: %v; want ErrFieldTooLarge on line 1", res.err)
	}
}

// Every row carries the header's names in file order, as written
// (trimmed), so that a list keeps the column order of its file.
func TestRowsCarryTheColumnOrder(t *testing.T) {
	res := read(t, "Name; Correo ;city\nAna;ana@example.com;Oslo\nBo;bo@example.com;Rome\n", Options{})
	if res.err != nil || len(res.good) != 2 {
		t.Fatalf("%d rows, %v", len(res.good), res.err)
	}
	for _, r := range res.good {
		if want := []string{"Name", "Correo", "city"}; !reflect.DeepEqual(r.Columns, want) {
			t.Errorf("line %d: Columns = %q, want %q", r.Line, r.Columns, want)
		}
	}
	for name, want := range map[string]bool{"email": true, " E-Mail ": true, "Correo electrónico": true, "name": false, "emails": false} {
		if got := IsEmailColumn(name); got != want {
			t.Errorf("IsEmailColumn(%q) = %v, want %v", name, got, want)
		}
	}
}

// A file from a spreadsheet-safe export (a single quote in front of each
// cell a spreadsheet would run as a formula) reads back as it was; a
// quote before anything else is part of the value.
func TestSpreadsheetSafeCellsReadBack(t *testing.T) {
	in := "email,first_name,note\n" +
		"'=ana@example.com,\"'=HYPERLINK(\"\"\"\")\",'-5\n" +
		"bo@example.com,'Bo,''@x\n"
	res := read(t, in, Options{})
	if res.err != nil || len(res.good) != 2 || len(res.bad) != 0 {
		t.Fatalf("read: %v, %d good, bad %v", res.err, len(res.good), res.bad)
	}
	if got := res.good[0].Address.String(); got != "=ana@example.com" {
		t.Errorf("address %q, want =ana@example.com", got)
	}
	for i, want := range []map[string]string{
		{"email": "=ana@example.com", "first_name": `=HYPERLINK("")`, "note": "-5"},
		{"email": "bo@example.com", "first_name": "'Bo", "note": "'@x"},
	} {
		if got := res.good[i].Fields; !reflect.DeepEqual(got, want) {
			t.Errorf("row %d: fields %q, want %q", i, got, want)
		}
	}
}
