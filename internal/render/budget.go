package render

import (
	"errors"
	"fmt"
	htmltemplate "html/template"
	"strings"
	"text/template"

	"golang.org/x/text/cases"
	"golang.org/x/text/language"
)

// What template functions produce is charged to a budget per rendered
// message, because the parse-tree checks alone cannot bound it: without
// loops, a chain of declarations still doubles a value at each step
// ({{$b := printf "%s%s" $a $a}}, {{$c := printf "%s%s" $b $b}}, …), and
// text/template cannot be stopped half-way. The budget is the message cap
// (Options.MaxSize): a message cannot be larger than that anyway, so a
// template whose functions build more for one recipient fails that
// recipient with ErrTooLarge instead of taking the process's memory.
//
// The functions are bound to their budget when the template is cloned (a
// FuncMap cannot be given per Execute), so every concurrent Render takes
// its own instance of the executable templates from a small free list.

// budget counts the bytes left for one message's function results.
type budget struct {
	left, limit int
}

func newBudget(limit int) *budget { return &budget{left: limit, limit: limit} }

func (b *budget) exceeded() error {
	return fmt.Errorf("%w: the template's functions would build more than %d bytes for this recipient, the cap on one message", ErrTooLarge, b.limit)
}

// check refuses a result that could be up to n bytes before it is built.
func (b *budget) check(n int) error {
	if n > b.left || n < 0 {
		return b.exceeded()
	}
	return nil
}

// charge takes a built result out of the budget.
func (b *budget) charge(s string) (string, error) {
	if len(s) > b.left {
		b.left = 0
		return "", b.exceeded()
	}
	b.left -= len(s)
	return s, nil
}

// sizeOf bounds the length of v formatted by fmt (%v): the values a
// template can reach are strings, the data map, numbers and booleans.
func sizeOf(v any) int {
	switch v := v.(type) {
	case string:
		return len(v)
	case map[string]string:
		n := len("map[]")
		for k, s := range v {
			n += len(k) + len(s) + 2
		}
		return n
	}
	return 64
}

// argsSize is what the arguments take formatted one after the other.
func argsSize(args []any) int {
	n := 0
	for _, a := range args {
		n += sizeOf(a) + 1
	}
	return n
}

// printfSize bounds fmt.Sprintf(format, args...): the format, and per verb
// (counted as "%" signs) a width of at most 999 (checkFormat) and the
// largest argument four times over (%q of control bytes).
func printfSize(format string, args []any) int {
	verbs := strings.Count(format, "%")
	largest, all := 0, 0
	for _, a := range args {
		n := sizeOf(a)
		largest = max(largest, n)
		all += n
	}
	if !strings.Contains(format, "[") {
		// Without explicit argument indexes each argument is formatted
		// at most once.
		return len(format) + verbs*999 + 4*all
	}
	return len(format) + verbs*(999+4*largest)
}

// funcs is the explicit allowlist of template functions: text helpers only;
// nothing reaches the environment, files, processes or the network. The
// text/template builtins that only compare or select (and, or, not, len,
// index, slice, eq, ne, lt, le, gt, ge) remain; the ones that build new
// text (print, printf, println, html, js, urlquery) are replaced by the
// same functions charged to b, like upper, lower and title. `call` is
// refused by checkTree and unusable anyway on a map of strings.
func funcs(b *budget) template.FuncMap {
	// caseMap charges a case mapping: one rune's case can take up to three
	// times its bytes ("ΐ" upper-cased is three runes).
	caseMap := func(f func(string) string) func(string) (string, error) {
		return func(s string) (string, error) {
			if err := b.check(3 * len(s)); err != nil {
				return "", err
			}
			return b.charge(f(s))
		}
	}
	// scaled charges an escaper whose output is at most k bytes per byte
	// of its arguments formatted.
	scaled := func(k int, f func(...any) string) func(...any) (string, error) {
		return func(args ...any) (string, error) {
			if err := b.check(k * argsSize(args)); err != nil {
				return "", err
			}
			return b.charge(f(args...))
		}
	}
	return template.FuncMap{
		// field "Column Name" is rewritten by checkTree into a lookup of
		// $["Column Name"]; this body only runs if that did not happen.
		"field": func(string) (string, error) { return "", errors.New("field: internal error") },
		// unsubscribe_url is rewritten by checkTree into a lookup of the
		// recipient's link too.
		"unsubscribe_url": func() (string, error) { return "", errors.New("unsubscribe_url: internal error") },
		// default "friend" .first_name: the value, or def when it is blank.
		"default": func(def, v string) string {
			if strings.TrimSpace(v) == "" {
				return def
			}
			return v
		},
		"upper": caseMap(strings.ToUpper),
		"lower": caseMap(strings.ToLower),
		"trim":  strings.TrimSpace,
		// title capitalises each word; a Caser is not safe for concurrent
		// use, so one is made per call.
		"title": caseMap(func(s string) string { return cases.Title(language.Und).String(s) }),
		"printf": func(format string, args ...any) (string, error) {
			if err := b.check(printfSize(format, args)); err != nil {
				return "", err
			}
			return b.charge(fmt.Sprintf(format, args...))
		},
		"print":   scaled(1, fmt.Sprint),
		"println": scaled(1, fmt.Sprintln),
		// "<" is "&lt;", `"` "&#34;"; in JavaScript "<" is "\u003C".
		"html":     scaled(5, template.HTMLEscaper),
		"js":       scaled(6, template.JSEscaper),
		"urlquery": scaled(3, template.URLQueryEscaper),
	}
}

// instance is one copy of a Template's executable templates, its functions
// charged to its own budget. nil entries are templates run without
// text/template (plain ones, fixed headers).
type instance struct {
	budget  budget
	headers []*template.Template // parallel to Template.headers
	text    *template.Template
	html    *htmltemplate.Template
}

// maxFreeInstances bounds the free list: about the number of renders that
// run at once.
const maxFreeInstances = 64

// dynamic reports whether any part of t runs text/template, and so needs
// an instance.
func (t *Template) dynamic() bool {
	if t.html != nil || t.text != nil && t.textPlain == nil {
		return true
	}
	for _, h := range t.headers {
		if h.tmpl != nil && h.plain == nil {
			return true
		}
	}
	return false
}

// getInstance returns an instance with a full budget, or nil when t needs
// none; give it back with putInstance.
func (t *Template) getInstance() (*instance, error) {
	if !t.needInstance {
		return nil, nil
	}
	t.instMu.Lock()
	var in *instance
	if n := len(t.free); n > 0 {
		in, t.free = t.free[n-1], t.free[:n-1]
	}
	t.instMu.Unlock()
	if in == nil {
		var err error
		if in, err = t.newInstance(); err != nil {
			return nil, err
		}
	}
	in.budget = budget{left: t.maxSize, limit: t.maxSize}
	return in, nil
}

func (t *Template) putInstance(in *instance) {
	if in == nil {
		return
	}
	t.instMu.Lock()
	if len(t.free) < maxFreeInstances {
		t.free = append(t.free, in)
	}
	t.instMu.Unlock()
}

// newInstance clones t's templates and binds their functions to the new
// instance's budget. The parse trees are shared (text/template) or copied
// (html/template, which escapes its copy on first use).
func (t *Template) newInstance() (*instance, error) {
	in := &instance{headers: make([]*template.Template, len(t.headers))}
	fm := funcs(&in.budget)
	clone := func(tt *template.Template) (*template.Template, error) {
		c, err := tt.Clone()
		if err != nil {
			return nil, fmt.Errorf("render: %w", err)
		}
		return c.Funcs(fm), nil
	}
	for i, h := range t.headers {
		if h.tmpl != nil && h.plain == nil {
			c, err := clone(h.tmpl)
			if err != nil {
				return nil, err
			}
			in.headers[i] = c
		}
	}
	if t.text != nil && t.textPlain == nil {
		c, err := clone(t.text)
		if err != nil {
			return nil, err
		}
		in.text = c
	}
	if t.html != nil {
		c, err := t.html.Clone()
		if err != nil {
			return nil, fmt.Errorf("render: %w", err)
		}
		in.html = c.Funcs(htmltemplate.FuncMap(fm))
	}
	return in, nil
}
