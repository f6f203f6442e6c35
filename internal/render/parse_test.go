package render

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// Parse errors name the file and the line, and refuse what a message
// template must not do.
func TestParseErrors(t *testing.T) {
	const head = "From: a@example.com\nSubject: s\n\n" // body starts on line 4
	tests := []struct {
		name     string
		src      Source
		opt      Options
		file     string
		line     int
		contains string
	}{
		{"env function", Source{Text: []byte(head + "x\n{{ env \"DATABASE_URL\" }}\n")}, Options{}, "message.txt", 5, `"env" not defined`},
		{"expandenv", Source{Text: []byte(head + "{{ expandenv \"$SMTP_PASS\" }}\n")}, Options{}, "message.txt", 4, `"expandenv" not defined`},
		{"network function", Source{Text: []byte(head + "{{getHostByName \"x\"}}")}, Options{}, "message.txt", 4, "not defined"},
		{"call builtin", Source{Text: []byte(head + "\n\n{{call .hook}}\n")}, Options{}, "message.txt", 6, "call"},
		{"huge range", Source{Text: []byte(head + "{{range 300000000}}{{end}}")}, Options{}, "message.txt", 4, "range"},
		{"range over a variable", Source{Text: []byte(head + "{{$n := 300000000}}{{range $n}}{{end}}")}, Options{}, "message.txt", 4, "range"},
		{"range over a field", Source{Text: []byte(head + "{{range .items}}x{{end}}")}, Options{}, "message.txt", 4, "range"},
		{"nested ranges", Source{Text: []byte(head + "{{range 1000}}{{range 1000}}x{{end}}{{end}}")}, Options{}, "message.txt", 4, "nested ranges"},
		{"deep nesting", Source{Text: []byte(head + strings.Repeat("{{if 1}}", 17) + strings.Repeat("{{end}}", 17))}, Options{}, "message.txt", 4, "nested deeper"},
		{"recursive define", Source{Text: []byte(head + `{{define "a"}}{{template "a"}}{{end}}{{template "a"}}`)}, Options{}, "message.txt", 0, "define"},
		{"template call", Source{Text: []byte(head + "\n{{template \"x\"}}")}, Options{}, "message.txt", 5, "template"},
		{"variable assignment", Source{Text: []byte(head + `{{$a := "x"}}{{range 60}}{{$a = printf "%s%s" $a $a}}{{end}}{{$a}}`)}, Options{}, "message.txt", 4, "assign"},
		{"variable assignment in a header", Source{Text: []byte("From: a@example.com\nSubject: {{$a := 1}}{{$a = 2}}\n\nx")}, Options{}, "message.txt", 2, "assign"},
		{"variable assignment in HTML", Source{Text: []byte(head), HTML: []byte("<p>\n{{$a := 1}}{{$a = 2}}</p>")}, Options{}, "message.html", 2, "assign"},
		{"too many steps", Source{Text: []byte(head + "{{range 1000}}{{range 10}}" + strings.Repeat("{{if 1}}{{end}}", 200) + "{{end}}{{end}}")}, Options{}, "message.txt", 4, "steps"},
		{"too many arguments in a range", Source{Text: []byte(head + "{{range 1000}}{{range 10}}{{if and" + strings.Repeat(" 1", 200) + "}}{{end}}{{end}}{{end}}")}, Options{}, "message.txt", 4, "steps"},
		{"printf width", Source{Text: []byte(head + `{{printf "%0999999999d" 1}}`)}, Options{}, "message.txt", 4, "width"},
		{"printf star", Source{Text: []byte(head + `{{printf "%*d" 100000000 1}}`)}, Options{}, "message.txt", 4, "width"},
		{"field without constant", Source{Text: []byte(head + `{{field .x}}`)}, Options{}, "message.txt", 4, "quoted column"},
		{"unclosed action", Source{Text: []byte(head + "ok\nok\n{{.x\n")}, Options{}, "message.txt", 7, "unclosed action"},
		{"bad function in header", Source{Text: []byte("From: a@example.com\nX-A: b\nSubject: {{ exec \"ls\" }}\n\nx")}, Options{}, "message.txt", 3, `"exec" not defined`},
		{"no From", Source{Text: []byte("Subject: s\n\nx")}, Options{}, "message.txt", 0, "From"},
		{"From with template", Source{Text: []byte("From: {{.email}}\n\nx")}, Options{}, "message.txt", 1, "template"},
		{"From with two addresses", Source{Text: []byte("From: a@example.com, b@example.com\n\nx")}, Options{}, "message.txt", 1, "exactly one"},
		{"not a header", Source{Text: []byte("From: a@example.com\nHello there\n\nx")}, Options{}, "message.txt", 2, "not a header"},
		{"continuation first", Source{Text: []byte(" From: a@example.com\n\nx")}, Options{}, "message.txt", 1, "start with a header"},
		{"Bcc", Source{Text: []byte("From: a@example.com\nBcc: x@example.com\n\nx")}, Options{}, "message.txt", 2, "Bcc"},
		{"Subject twice", Source{Text: []byte("From: a@example.com\nSubject: a\nSubject: b\n\nx")}, Options{}, "message.txt", 3, "twice"},
		{"fixed To invalid", Source{Text: []byte("From: a@example.com\nTo: not an address\n\nx")}, Options{}, "message.txt", 2, "To"},
		{"missing column", Source{Text: []byte(head + "Hi {{.first_name}}\n{{field \"Cty\"}}")}, Options{Columns: []string{"email", "first_name", "City"}}, "message.txt", 5, `"Cty"`},
		{"html bad function", Source{Text: []byte(head), HTMLName: "news.html", HTML: []byte("<p>\n{{env \"X\"}}</p>")}, Options{}, "news.html", 2, "not defined"},
		{"html branches in different contexts", Source{Text: []byte(head), HTML: []byte("<p>\n<a href=\"x\" {{if .x}}onclick=\"{{end}}\">")}, Options{}, "message.html", 2, "different contexts"},
		{"html ends inside a tag", Source{Text: []byte(head), HTML: []byte("<p>\n<a href=\"{{.x}}")}, Options{}, "message.html", 0, "non-text context"},
		{"named file", Source{TextName: "spring.txt", Text: []byte(head + "{{nope}}")}, Options{}, "spring.txt", 4, "not defined"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.src, tc.opt)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v (%T), want *Error", err, err)
			}
			if e.File != tc.file || e.Line != tc.line || !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("err = %q (file %q line %d), want %s:%d containing %q", err, e.File, e.Line, tc.file, tc.line, tc.contains)
			}
		})
	}
}

func TestParseAccepts(t *testing.T) {
	tests := []string{
		"From: a@example.com\n",                      // no body at all
		"From: a@example.com\r\nSubject: s\r\n\r\nx", // CRLF file
		"\uFEFFFrom: a@example.com\n\nx",             // BOM
		"From: a@example.com\nSubject: a long\n  folded subject\n\nx",
		"From: a@example.com\n\n{{range $i := 10}}{{$i}}{{end}}",
		"From: a@example.com\n\n{{/* a comment */}}{{- .x -}}",
		"From: a@example.com\n\n{{printf \"%5.2f%%\" 3.14159}}",
	}
	for _, src := range tests {
		if _, err := Parse(Source{Text: []byte(src)}, Options{Now: func() time.Time { return time.Time{} }}); err != nil {
			t.Errorf("%q: %v", src, err)
		}
	}
}

func TestFoldedHeaderUnfolded(t *testing.T) {
	tp := mustParse(t, Source{Text: []byte("From: a@example.com\nSubject: a long\n  folded {{.x}}\n\nx")}, Options{})
	h, _ := parseMessage(t, mustRender(t, tp, Recipient{Email: "b@example.com", Fields: map[string]string{"x": "subject"}}).Data)
	if got := h.Get("Subject"); got != "a long  folded subject" {
		t.Errorf("Subject %q", got)
	}
}
