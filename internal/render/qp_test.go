package render

import (
	"bytes"
	"mime/quotedprintable"
	"strings"
	"testing"
)

// qpReference is what the standard library's encoder makes of body.
func qpReference(t testing.TB, body []byte) string {
	t.Helper()
	var b bytes.Buffer
	w := quotedprintable.NewWriter(&b)
	if _, err := w.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestWriteQP(t *testing.T) {
	long := strings.Repeat("a", 75)
	tests := []struct{ name, in, want string }{
		{"empty", "", ""},
		{"plain", "hello\r\n", "hello\r\n"},
		{"equals", "a=b\r\n", "a=3Db\r\n"},
		{"utf-8", "M\xc3\xa1laga\r\n", "M=C3=A1laga\r\n"},
		{"trailing space", "end \r\n", "end=20\r\n"},
		{"trailing tab at end of body", "end\t", "end=09"},
		{"inner space", "a b\r\n", "a b\r\n"},
		{"75 fit", long + "\r\n", long + "\r\n"},
		{"76 soft break", long + "b\r\n", long + "=\r\nb\r\n"},
		{"encoded at the edge", strings.Repeat("a", 73) + "=\r\n", strings.Repeat("a", 73) + "=\r\n=3D\r\n"},
		{"space before soft break stays", strings.Repeat("a", 74) + " b\r\n", strings.Repeat("a", 74) + " =\r\nb\r\n"},
		{"control", "a\x00b\r\n", "a=00b\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := writeQP(&capWriter{buf: &buf, limit: 1 << 20}, []byte(tt.in)); err != nil {
				t.Fatal(err)
			}
			if buf.String() != tt.want {
				t.Errorf("writeQP(%q) = %q, want %q", tt.in, buf.String(), tt.want)
			}
			if ref := qpReference(t, []byte(tt.in)); ref != tt.want {
				t.Errorf("mime/quotedprintable gives %q, the table says %q", ref, tt.want)
			}
		})
	}
}

// FuzzWriteQP: on any body with normalised line ends (what writeTextPart
// gives it), writeQP writes exactly what mime/quotedprintable writes.
func FuzzWriteQP(f *testing.F) {
	for _, s := range []string{"", "a=b", "x \n", strings.Repeat("ab ", 40), strings.Repeat("é", 50) + "\n", "\t\r\n\t", strings.Repeat("a", 74) + "\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var norm bytes.Buffer
		normalizeCRLF(&norm, raw)
		var got bytes.Buffer
		if err := writeQP(&capWriter{buf: &got, limit: 1 << 30}, norm.Bytes()); err != nil {
			t.Fatal(err)
		}
		if want := qpReference(t, norm.Bytes()); got.String() != want {
			t.Fatalf("writeQP(%q) = %q, mime/quotedprintable gives %q", norm.Bytes(), got.String(), want)
		}
	})
}

// FuzzNormalizeCRLF: the fast path (no CR) and the general one agree with
// the rule "every CRLF, lone CR and lone LF becomes CRLF".
func FuzzNormalizeCRLF(f *testing.F) {
	for _, s := range []string{"", "a\nb", "a\r\nb\r", "\r\r\n\n", "x"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var got bytes.Buffer
		normalizeCRLF(&got, raw)
		want := strings.ReplaceAll(strings.ReplaceAll(strings.ReplaceAll(string(raw), "\r\n", "\n"), "\r", "\n"), "\n", "\r\n")
		if got.String() != want {
			t.Fatalf("normalizeCRLF(%q) = %q, want %q", raw, got.String(), want)
		}
	})
}

// literalRunEnd agrees with qpLiteral for every byte value at every place
// of a word, and after a first odd byte (where the SWAR tests may raise
// false alarms).
func TestLiteralRunEnd(t *testing.T) {
	slow := func(b []byte, i int) int {
		for i < len(b) && qpLiteral(b[i]) {
			i++
		}
		return i
	}
	for c := range 256 {
		for p := range 20 {
			for _, first := range []byte{'a', 0xff, '\t', '='} {
				b := []byte("abcdefghij klmnopqrstuvwxyz")
				b[0] = first
				b[p] = byte(c)
				for start := range 3 {
					if got, want := literalRunEnd(b, start), slow(b, start); got != want {
						t.Fatalf("byte %#x at %d, first %#x, from %d: %d, want %d", c, p, first, start, got, want)
					}
				}
			}
		}
	}
}
