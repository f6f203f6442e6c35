package render

import (
	"bytes"
	"strings"
	"testing"
)

// benchSource builds a personalised message of about size bytes of text
// (plus an HTML version of the same length).
func benchSource(size int) Source {
	para := "Dear {{.first_name}} {{.last_name}}, thank you for shopping with us in {{field \"City\"}}. Our spring collection has arrived and we think you will like it.\n"
	n := max(1, size/len(para))
	text := "From: Example Shop <news@example.com>\nSubject: {{.first_name}}, our spring sale\nList-Unsubscribe: <https://example.com/u/{{.email}}>\n\n" + strings.Repeat(para, n)
	html := "<html><body>" + strings.Repeat("<p>"+strings.TrimSuffix(para, "\n")+"</p>\n", n) + "</body></html>"
	return Source{Text: []byte(text), HTML: []byte(html)}
}

func BenchmarkRender(b *testing.B) {
	for _, bc := range []struct {
		name string
		size int
	}{{"1KB", 1 << 10}, {"20KB", 20 << 10}} {
		b.Run(bc.name, func(b *testing.B) {
			tp, err := Parse(benchSource(bc.size), Options{})
			if err != nil {
				b.Fatal(err)
			}
			r := Recipient{Email: "ana@example.com", Fields: map[string]string{"first_name": "Ana", "last_name": "García", "City": "Málaga"}}
			var buf bytes.Buffer
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				m, err := tp.Render(r, "", &buf)
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(len(m.Data)))
			}
		})
	}
}

// BenchmarkRenderText renders a text-only newsletter of plain ASCII whose
// lines are longer than 78 characters (so quoted-printable), with a merge
// field in every fourth paragraph: the message bench/run.sh sends.
func BenchmarkRenderText(b *testing.B) {
	const para = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore\n" +
		"et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut.\n\n"
	for _, bc := range []struct {
		name string
		size int
	}{{"1KB", 1 << 10}, {"20KB", 20 << 10}} {
		b.Run(bc.name, func(b *testing.B) {
			var src strings.Builder
			src.WriteString("From: Shop <news@example.com>\nTo: {{.first_name}} <{{.email}}>\nSubject: {{.first_name}}, our offers\n\nDear {{.first_name}},\n\n")
			for i := 0; src.Len() < bc.size-250; i++ {
				if i%4 == 3 {
					src.WriteString("Your code is {{.code}}.\n\n")
				}
				src.WriteString(para)
			}
			tp, err := Parse(Source{Text: []byte(src.String())}, Options{})
			if err != nil {
				b.Fatal(err)
			}
			r := Recipient{Email: "ana@example.com", Fields: map[string]string{"first_name": "Ana", "code": "C0001234"}}
			var buf bytes.Buffer
			b.ReportAllocs()
			for b.Loop() {
				m, err := tp.Render(r, "", &buf)
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(len(m.Data)))
			}
		})
	}
}
