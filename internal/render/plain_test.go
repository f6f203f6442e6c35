package render

import (
	"bytes"
	"fmt"
	"testing"
	"text/template"
)

// A plain template renders exactly as text/template renders it; anything
// that is not plain keeps text/template.
func TestPlainTemplates(t *testing.T) {
	for _, tc := range []struct {
		src   string
		plain bool
	}{
		{"Dear {{.first_name}},\nline 2 {{.city}}.\n", true},
		{`Hi {{field "First Name"}} <{{.email}}>`, true},
		{"no fields at all", true},
		{"", true},
		{"{{/* a comment */}}x{{.code}}", true},
		{"{{- .first_name -}}   trimmed", true},
		{`{{.first_name | upper}}`, false},
		{`{{if .city}}in {{.city}}{{end}}`, false},
		{`{{default "friend" .first_name}}`, false},
		{`{{printf "%s!" .first_name}}`, false},
		{`{{index . "first_name"}}`, false},
	} {
		tt, err := parseText("m.txt", 1, tc.src, newRefSet())
		if err != nil {
			t.Fatalf("%q: %v", tc.src, err)
		}
		p := compilePlain(tt)
		if (p != nil) != tc.plain {
			t.Errorf("%q: plain = %v, want %v", tc.src, p != nil, tc.plain)
		}
		if p != nil {
			checkSameOutput(t, tc.src, tt, p)
		}
	}
}

func checkSameOutput(t *testing.T, src string, tt *template.Template, p plainTemplate) {
	t.Helper()
	data := map[string]string{"first_name": "Ana", "First Name": "Ana María", "city": "", "email": "a@x.org", "code": "<b>&</b>"}
	var want, got bytes.Buffer
	if err := tt.Execute(&want, data); err != nil {
		t.Fatalf("%q: text/template: %v", src, err)
	}
	if err := p.execute(&capWriter{buf: &got, limit: 1 << 20}, data); err != nil {
		t.Fatalf("%q: plain: %v", src, err)
	}
	if got.String() != want.String() {
		t.Errorf("%q: plain wrote %q, text/template %q", src, got.String(), want.String())
	}
}

// FuzzPlainTemplate: whatever the source, when it compiles to the plain
// form, that form writes what text/template writes.
func FuzzPlainTemplate(f *testing.F) {
	for _, s := range []string{"a{{.b}}c", `{{field "x y"}}`, "{{.a}}{{.a}}", "{{/*c*/}}", "{{- .a}} ", "{{.a.b}}", "{{$}}", "{{.}}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		refs := newRefSet()
		tt, err := parseText("m.txt", 1, src, refs)
		if err != nil {
			return
		}
		p := compilePlain(tt)
		if p == nil {
			return
		}
		data := map[string]string{}
		for i, r := range refs.list {
			data[r.name] = fmt.Sprintf("v%d<&>", i)
		}
		var want bytes.Buffer
		if err := tt.Execute(&want, data); err != nil {
			t.Fatalf("%q: text/template: %v", src, err)
		}
		var got bytes.Buffer
		if err := p.execute(&capWriter{buf: &got, limit: 1 << 20}, data); err != nil {
			t.Fatalf("%q: plain: %v", src, err)
		}
		if got.String() != want.String() {
			t.Fatalf("%q: plain wrote %q, text/template %q", src, got.String(), want.String())
		}
	})
}
