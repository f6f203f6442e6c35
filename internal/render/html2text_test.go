package render

import (
	"bytes"
	"testing"
)

func TestHTMLToText(t *testing.T) {
	tests := []struct{ name, html, want string }{
		{"paragraphs", "<p>One</p><p>Two\n   words</p>", "One\n\nTwo words\n"},
		{"entities", "<p>Caf&eacute; &amp; cr&#232;me &lt;b&gt; &nbsp;&euro;5 &ldquo;q&rdquo;</p>", "Café & crème <b> €5 “q”\n"},
		{"link keeps URL", `<p>Visit <a href="https://example.com/x?a=1&amp;b=2">our shop</a> now</p>`, "Visit our shop (https://example.com/x?a=1&b=2) now\n"},
		{"link text equal to URL", `<a href="https://example.com/">https://example.com/</a>`, "https://example.com/\n"},
		{"mailto link", `<a href="mailto:help@example.com">help@example.com</a>`, "help@example.com\n"},
		{"anchor and js links dropped", `<a href="#top">Top</a> <a href="javascript:x()">Run</a>`, "Top Run\n"},
		{"image link", `<a href="https://example.com/"><img src="logo.png"></a>`, "https://example.com/\n"},
		{"img alt", `<p>Logo: <img src="l.png" alt="Example Shop"> ok</p>`, "Logo: Example Shop ok\n"},
		{"script style head skipped", "<html><head><title>T</title><style>p{color:red}</style></head><body><script>alert(1)</script><p>Body</p></body></html>", "Body\n"},
		{"br and lists", "Line1<br>Line2<ul><li>a</li><li>b</li></ul><ol><li>x</li><li>y</li></ol>", "Line1\nLine2\n- a\n- b\n1. x\n2. y\n"},
		{"headings and hr", "<h1>Title</h1>text<hr>after", "Title\n\ntext\n\nafter\n"},
		{"pre kept", "<pre>a  b\n  c</pre>", "a  b\n  c\n"},
		{"table cells", "<table><tr><td>a</td><td>b</td></tr><tr><td>c</td><td>d</td></tr></table>", "a b\nc d\n"},
		{"empty", "", ""},
		{"broken html", "<p>unclosed <b>bold <a href='https://e.example/'>x", "unclosed bold x\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			b.WriteString("prefix|")
			htmlToText(&b, []byte(tc.html))
			if got := b.String(); got != "prefix|"+tc.want {
				t.Errorf("got %q, want %q", got, "prefix|"+tc.want)
			}
		})
	}
}
