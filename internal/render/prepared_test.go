package render

import (
	"bytes"
	"strings"
	"testing"
)

// renderBoth renders body (a text body in which "$" stands for the merge
// field v) for v twice: from the prepared form and from the whole body,
// and reports both messages and whether the template had a prepared form.
func renderBoth(t *testing.T, body, v, html string) (prepared, whole []byte, ok bool) {
	t.Helper()
	src := Source{Text: []byte("From: a@example.com\nSubject: s\n\n" + strings.ReplaceAll(body, "$", "{{.v}}"))}
	if html != "" {
		src.HTML = []byte(html)
	}
	parse := func() *Template {
		tp, err := Parse(src, Options{Now: fixedNow, MaxSize: 1 << 20})
		if err != nil {
			return nil
		}
		// The same boundaries for both.
		tp.randRead = func(b []byte) (int, error) {
			for i := range b {
				b[i] = byte(i)
			}
			return len(b), nil
		}
		return tp
	}
	a, b := parse(), parse()
	if a == nil || a.textPrep == nil {
		return nil, nil, false
	}
	b.textPrep = nil
	r := Recipient{Email: "r@example.com", Fields: map[string]string{"v": v}}
	ma, errA := a.Render(r, "id@example.com", nil)
	mb, errB := b.Render(r, "id@example.com", nil)
	if (errA == nil) != (errB == nil) {
		t.Fatalf("prepared: %v, whole: %v", errA, errB)
	}
	if errA != nil {
		return nil, nil, false
	}
	return ma.Data, mb.Data, true
}

// The prepared body is the same message, byte for byte, as encoding the
// whole body: 7bit and quoted-printable, long lines, trailing white space
// at the edges of a merge field, 8-bit text, line breaks in field values,
// the boundary prefix, an empty last line.
func TestPreparedTextSameBytes(t *testing.T) {
	long := strings.Repeat("Lorem ipsum dolor sit amet, ", 6)
	for _, tc := range []struct{ name, body, v string }{
		{"7bit", "Dear $,\n\nline one\nline two\n", "Ann"},
		{"long lines go quoted-printable", "Dear $,\n\n" + long + "\n" + long + "\nBye $\n", "Bob"},
		{"8-bit in the fixed lines", "Hola $,\n\nGrüße, señor\nadiós\n", "Zoë"},
		{"8-bit only in the field", "Hi $,\n\nplain\nplain\n", "Zoë"},
		{"trailing space before the field", "Hi \n\nx \ny\t\n$ \n", " "},
		{"field with line breaks", "A $\nb\nc\n$", "x\r\ny\rz\n"},
		{"field that is a boundary prefix", "A\nb\nc\n$\n", "--=_x"},
		{"boundary prefix in the fixed lines", "A $\n--=_x\nc\n", "v"},
		{"no final line break", "A $\nb\nc\nend $", "v"},
		{"empty field at the end", "A\nb\nc\n$", ""},
		{"equals signs", "a=b $\nc=d\ne=f\n", "=="},
		{"invalid UTF-8 in the field", "A $\nb\nc\n", "\xff\xfe"},
		{"a field alone on lines", "$\n$\nfixed\nfixed\n$\n", "v"},
	} {
		for _, html := range []string{"", "<p>{{.v}}</p>"} {
			prep, whole, ok := renderBoth(t, tc.body, tc.v, html)
			if !ok {
				t.Fatalf("%s: no prepared form", tc.name)
			}
			if !bytes.Equal(prep, whole) {
				t.Errorf("%s (html %v): prepared body differs\nprepared: %q\nwhole:    %q", tc.name, html != "", prep, whole)
			}
		}
	}
}

func FuzzPreparedTextSameBytes(f *testing.F) {
	f.Add("Dear $,\n\nline one\nline two\n", "Ann")
	f.Add("Hi \n\nx \ny\t\n$ \n", " ")
	f.Add("A $\nb\nc\nend $", "x\r\ny")
	f.Add("Grüße $\n"+strings.Repeat("é", 100)+"\nz\n", "\xff")
	f.Fuzz(func(t *testing.T, body, v string) {
		prep, whole, ok := renderBoth(t, body, v, "")
		if ok && !bytes.Equal(prep, whole) {
			t.Fatalf("prepared body differs\nprepared: %q\nwhole:    %q", prep, whole)
		}
	})
}
