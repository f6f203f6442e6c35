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
