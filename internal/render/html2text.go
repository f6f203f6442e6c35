package render

import (
	"bytes"
	"strconv"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// htmlToText appends a plain-text rendering of an HTML body to dst, for the
// text/plain alternative when only HTML was written: tags dropped, entities
// decoded, whitespace collapsed outside <pre>, blocks on their own lines,
// list items with "- ", link targets kept as "text (URL)", images as their
// alt text, script/style/head content skipped.
func htmlToText(dst *bytes.Buffer, src []byte) {
	c := &h2t{out: dst, start: dst.Len()}
	z := html.NewTokenizer(bytes.NewReader(src))
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			c.finish()
			return
		case html.TextToken:
			if c.skip == 0 {
				c.text(string(z.Text()))
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			var attrs map[string]string
			for hasAttr {
				var k, v []byte
				k, v, hasAttr = z.TagAttr()
				if attrs == nil {
					attrs = map[string]string{}
				}
				attrs[string(k)] = string(v)
			}
			c.open(atom.Lookup(name), attrs, tt == html.SelfClosingTagToken)
		case html.EndTagToken:
			name, _ := z.TagName()
			c.close(atom.Lookup(name))
		}
	}
}

type link struct {
	href  string
	start int // output offset of the link text
}

type h2t struct {
	out     *bytes.Buffer
	start   int // where this conversion began in out
	skip    int // inside script, style, head, title
	pre     int
	space   bool // a space is pending before the next word
	links   []link
	ordered []int // per open list: next number, or 0 for <ul>
}

func (c *h2t) atLineStart() bool {
	b := c.out.Bytes()[c.start:]
	return len(b) == 0 || b[len(b)-1] == '\n'
}

// newlines ends the current line and makes sure n line breaks precede the
// next text (n=2 leaves a blank line); nothing at the very start.
func (c *h2t) newlines(n int) {
	c.space = false
	b := c.out.Bytes()[c.start:]
	// Drop trailing spaces of the line being ended.
	trimmed := bytes.TrimRight(b, " \t")
	c.out.Truncate(c.start + len(trimmed))
	if len(trimmed) == 0 {
		return
	}
	have := len(trimmed) - len(bytes.TrimRight(trimmed, "\n"))
	for ; have < n; have++ {
		c.out.WriteByte('\n')
	}
}

func (c *h2t) text(s string) {
	if c.pre > 0 {
		c.out.WriteString(s)
		return
	}
	if s != "" && isHTMLSpace(s[0]) {
		c.space = true
	}
	words := strings.Fields(s)
	for i, w := range words {
		if (i > 0 || c.space) && !c.atLineStart() {
			c.out.WriteByte(' ')
		}
		c.out.WriteString(w)
		c.space = false
	}
	if len(words) > 0 && isHTMLSpace(s[len(s)-1]) {
		c.space = true
	}
}

func isHTMLSpace(b byte) bool {
	return b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == '\f'
}

func (c *h2t) open(a atom.Atom, attrs map[string]string, selfClosing bool) {
	switch a {
	case atom.Script, atom.Style, atom.Head, atom.Title, atom.Template, atom.Noscript:
		if !selfClosing {
			c.skip++
		}
	case atom.Br:
		c.newlines(1)
	case atom.P, atom.Div, atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6,
		atom.Table, atom.Blockquote, atom.Section, atom.Article, atom.Header,
		atom.Footer, atom.Hr, atom.Dl:
		c.newlines(2)
	case atom.Pre:
		c.newlines(2)
		c.pre++
	case atom.Tr, atom.Dt, atom.Dd:
		c.newlines(1)
	case atom.Td, atom.Th:
		c.space = true
	case atom.Ul:
		c.newlines(1)
		c.ordered = append(c.ordered, 0)
	case atom.Ol:
		c.newlines(1)
		c.ordered = append(c.ordered, 1)
	case atom.Li:
		c.newlines(1)
		if n := len(c.ordered); n > 0 && c.ordered[n-1] > 0 {
			c.out.WriteString(strconv.Itoa(c.ordered[n-1]) + ". ")
			c.ordered[n-1]++
		} else {
			c.out.WriteString("- ")
		}
	case atom.A:
		c.links = append(c.links, link{href: attrs["href"], start: c.out.Len()})
	case atom.Img:
		if alt := strings.TrimSpace(attrs["alt"]); alt != "" {
			c.text(" " + alt + " ")
		}
	}
}

func (c *h2t) close(a atom.Atom) {
	switch a {
	case atom.Script, atom.Style, atom.Head, atom.Title, atom.Template, atom.Noscript:
		if c.skip > 0 {
			c.skip--
		}
	case atom.P, atom.Div, atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6,
		atom.Table, atom.Blockquote, atom.Section, atom.Article, atom.Header,
		atom.Footer, atom.Dl:
		c.newlines(2)
	case atom.Pre:
		if c.pre > 0 {
			c.pre--
		}
		c.newlines(2)
	case atom.Ul, atom.Ol:
		if n := len(c.ordered); n > 0 {
			c.ordered = c.ordered[:n-1]
		}
		c.newlines(1)
	case atom.A:
		n := len(c.links)
		if n == 0 {
			return
		}
		l := c.links[n-1]
		c.links = c.links[:n-1]
		href := strings.TrimSpace(l.href)
		lower := strings.ToLower(href)
		if href == "" || strings.HasPrefix(href, "#") || strings.HasPrefix(lower, "javascript:") {
			return
		}
		shown := strings.TrimSpace(c.out.String()[min(l.start, c.out.Len()):])
		target := strings.TrimPrefix(href, "mailto:")
		if shown == href || shown == target {
			return
		}
		if shown == "" {
			c.text(href)
			return
		}
		c.out.WriteString(" (" + href + ")")
	}
}

func (c *h2t) finish() {
	b := bytes.TrimSpace(c.out.Bytes()[c.start:])
	trimmed := append([]byte(nil), b...)
	c.out.Truncate(c.start)
	c.out.Write(trimmed)
	if len(trimmed) > 0 {
		c.out.WriteByte('\n')
	}
}
