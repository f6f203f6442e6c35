package recipient

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// Rows gives accepted and rejected rows in file order, goes on after a
// rejected row, and ends with the file-level problem that stops it.
func TestRowsYieldsRowsAndRowErrorsInOrder(t *testing.T) {
	in := "email,name\na@example.com,A\nnot-an-address,B\nA@EXAMPLE.COM,C\nb@example.com,D\n"
	var (
		st  Stats
		got []string
	)
	for r, err := range Rows(context.Background(), strings.NewReader(in), Options{}, &st) {
		var re RowError
		switch {
		case errors.As(err, &re):
			got = append(got, fmt.Sprintf("bad %d", re.Line))
		case err != nil:
			t.Fatalf("unexpected end: %v", err)
		default:
			got = append(got, fmt.Sprintf("ok %d %s %s", r.Line, r.Address, r.Fields["name"]))
		}
	}
	want := "ok 2 a@example.com A|bad 3|bad 4|ok 5 b@example.com D"
	if s := strings.Join(got, "|"); s != want {
		t.Errorf("rows %q, want %q", s, want)
	}
	if st != (Stats{Rows: 4, Imported: 2, Invalid: 1, Duplicates: 1}) {
		t.Errorf("stats %+v", st)
	}

	var last error
	for _, err := range Rows(context.Background(), strings.NewReader("name\nx\n"), Options{}, nil) {
		last = err
	}
	var fe *FileError
	if !errors.As(last, &fe) {
		t.Errorf("a list without an email column ends with %v, want a *FileError", last)
	}
}

// A caller that stops iterating stops the reading: an endless list read
// by an import that gives up after three rows returns at once.
func TestRowsStopsWhenTheCallerStops(t *testing.T) {
	src := &rowSource{}
	var st Stats
	n := 0
	for r, err := range Rows(context.Background(), src, Options{}, &st) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 3 {
			if r.Address.String() != "u2@example.com" {
				t.Errorf("third row %s", r.Address)
			}
			break
		}
	}
	if st.Imported != 3 || src.read > 1<<20 {
		t.Errorf("imported %d, read %d bytes after the caller stopped at 3 rows", st.Imported, src.read)
	}
}

// rowSource is a list that never ends: a header, then u0@, u1@, ...
type rowSource struct {
	buf  []byte
	next int
	read int
}

func (s *rowSource) Read(p []byte) (int, error) {
	if s.next == 0 && len(s.buf) == 0 {
		s.buf = []byte("email\n")
	}
	for len(s.buf) < len(p) {
		s.buf = fmt.Appendf(s.buf, "u%d@example.com\n", s.next)
		s.next++
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	s.read += n
	return n, nil
}
