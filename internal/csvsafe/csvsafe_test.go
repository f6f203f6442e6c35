package csvsafe

import "testing"

func TestCellAndUnquote(t *testing.T) {
	for _, tc := range []struct{ in, out string }{
		{"", ""},
		{"Ana", "Ana"},
		{`=HYPERLINK("http://evil.example","click")`, `'=HYPERLINK("http://evil.example","click")`},
		{"+34 600 000 000", "'+34 600 000 000"},
		{"-5", "'-5"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\tx", "'\tx"},
		{"\rx", "'\rx"},
		{"'plain", "'plain"},
		{"'", "'"},
		{"'=quoted before", "''=quoted before"},
		{"''-x", "'''-x"},
		{"a=b", "a=b"},
	} {
		if got := Cell(tc.in); got != tc.out {
			t.Errorf("Cell(%q) = %q, want %q", tc.in, got, tc.out)
		}
		if got := Unquote(tc.out); got != tc.in {
			t.Errorf("Unquote(%q) = %q, want %q", tc.out, got, tc.in)
		}
	}
}

func FuzzRoundTrip(f *testing.F) {
	for _, s := range []string{"", "=1", "'=1", "''", "'", "-", "a'=b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := Cell(s)
		if got := Unquote(c); got != s {
			t.Fatalf("Unquote(Cell(%q)) = %q", s, got)
		}
		if c != "" && c[0] != '\'' && quoted(c) {
			t.Fatalf("Cell(%q) = %q starts a formula", s, c)
		}
	})
}
