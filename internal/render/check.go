package render

import (
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
)

// Limits enforced on the parse tree. Go cannot cancel a running Execute,
// so anything that could loop long is refused at Parse; what template
// functions produce is capped while rendering (see budget.go).
const (
	maxNesting    = 16    // nested if/with/range
	maxRangeConst = 1000  // {{range N}}
	maxRangeTotal = 10000 // product of nested {{range N}}
	// maxSteps caps the actions, branches, text pieces and arguments one
	// execution evaluates, each counted once per repetition of the ranges
	// around it: a bound on the time one recipient takes.
	maxSteps = 1_000_000
)

// linePad makes the template parser count lines as in the source file: a
// comment holding line-1 newlines, which renders as nothing.
func linePad(line int) string {
	if line <= 1 {
		return ""
	}
	return "{{/*" + strings.Repeat("\n", line-1) + "*/}}"
}

func parseText(file string, line int, src string, refs *refSet) (*template.Template, error) {
	t, err := template.New(file).Option("missingkey=error").Funcs(funcs(&budget{})).Parse(linePad(line) + src)
	if err != nil {
		return nil, templateErr(file, err)
	}
	if err := checkTree(file, t.Tree, len(t.Templates()), refs); err != nil {
		return nil, err
	}
	return t, nil
}

// parseHTML returns the parsed HTML template, never executed, so that
// every render instance can be cloned from it (html/template refuses to
// clone a template that has run).
func parseHTML(file, src string, refs *refSet, maxSize int) (*htmltemplate.Template, error) {
	t, err := htmltemplate.New(file).Option("missingkey=error").Funcs(htmltemplate.FuncMap(funcs(&budget{}))).Parse(src)
	if err != nil {
		return nil, templateErr(file, err)
	}
	if err := checkTree(file, t.Tree, len(t.Templates()), refs); err != nil {
		return nil, err
	}
	// html/template escapes on first Execute; run a copy once now on blank
	// values so that escaping errors (e.g. an action inside an unquoted
	// attribute name) surface at Parse. Other execution errors depend on
	// the data and are left to Render.
	blank := make(map[string]string, len(refs.list))
	for _, r := range refs.list {
		blank[r.name] = ""
	}
	check, err := t.Clone()
	if err != nil {
		return nil, templateErr(file, err)
	}
	b := newBudget(maxSize)
	check.Funcs(htmltemplate.FuncMap(funcs(b)))
	var escErr *htmltemplate.Error
	if err := check.Execute(io.Discard, blank); errors.As(err, &escErr) {
		return nil, templateErr(file, err)
	}
	return t, nil
}

// templateErr turns a text/template or html/template error
// ("template: message.txt:4:7: executing … : msg") into an *Error.
func templateErr(file string, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	var escErr *htmltemplate.Error
	if errors.As(err, &escErr) && escErr.Line > 0 {
		return &Error{File: file, Line: escErr.Line, Msg: escErr.Description, Err: err}
	}
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "html/template:")
	msg = strings.TrimPrefix(msg, "template: ")
	msg = strings.TrimPrefix(msg, file+":")
	line := 0
	if i := strings.IndexByte(msg, ':'); i > 0 {
		if n, convErr := strconv.Atoi(msg[:i]); convErr == nil {
			line = n
			msg = msg[i+1:]
			if j := strings.IndexByte(msg, ':'); j > 0 {
				if _, convErr := strconv.Atoi(msg[:j]); convErr == nil {
					msg = msg[j+1:] // column
				}
			}
		}
	}
	msg = strings.TrimSpace(msg)
	msg = strings.TrimPrefix(msg, fmt.Sprintf("executing %q ", file))
	return &Error{File: file, Line: line, Msg: msg, Err: err}
}

// fieldRef is one merge field the templates use, with where it is first used.
type fieldRef struct {
	name string
	file string
	line int
}

type refSet struct {
	seen map[string]bool
	list []fieldRef
	// unsub is the first use of {{unsubscribe_url}}, or nil.
	unsub *fieldRef
}

// unsubscribeKey is where the template data holds the recipient's
// unsubscribe link: {{unsubscribe_url}} is rewritten into a lookup of
// it. No CSV column can be named so (a NUL is not text), so a column
// called unsubscribe_url stays a merge field of its own.
const unsubscribeKey = "\x00unsubscribe_url"

func newRefSet() *refSet { return &refSet{seen: map[string]bool{}} }

func (s *refSet) add(r fieldRef) {
	if !s.seen[r.name] {
		s.seen[r.name] = true
		s.list = append(s.list, r)
	}
}

type checker struct {
	file  string
	tree  *parse.Tree
	refs  *refSet
	steps int64 // see maxSteps
}

func (c *checker) errorf(n parse.Node, format string, args ...any) error {
	return &Error{File: c.file, Line: c.line(n), Msg: fmt.Sprintf(format, args...)}
}

func (c *checker) line(n parse.Node) int {
	loc, _ := c.tree.ErrorContext(n) // "name:line:col"
	loc = strings.TrimPrefix(loc, c.tree.ParseName+":")
	if i := strings.IndexByte(loc, ':'); i > 0 {
		loc = loc[:i]
	}
	n2, _ := strconv.Atoi(loc)
	return n2
}

// checkTree rejects what a message template must not do and rewrites
// {{field "X"}} into a map lookup, collecting every merge field used.
func checkTree(file string, tree *parse.Tree, ntemplates int, refs *refSet) error {
	c := &checker{file: file, tree: tree, refs: refs}
	if ntemplates > 1 {
		// define/block make recursion possible; a
		// message needs neither.
		return &Error{File: file, Msg: "{{define}} and {{block}} are not supported in message templates"}
	}
	if tree == nil || tree.Root == nil {
		return nil
	}
	return c.walk(tree.Root, 0, 1)
}

func (c *checker) walk(n parse.Node, depth int, mult int64) error {
	if err := c.step(n, mult); err != nil {
		return err
	}
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, x := range n.Nodes {
			if err := c.walk(x, depth, mult); err != nil {
				return err
			}
		}
	case *parse.ActionNode:
		return c.pipe(n.Pipe, mult)
	case *parse.TemplateNode:
		return c.errorf(n, "{{template}} is not supported in message templates")
	case *parse.IfNode:
		return c.branch(&n.BranchNode, depth, mult)
	case *parse.WithNode:
		return c.branch(&n.BranchNode, depth, mult)
	case *parse.RangeNode:
		// Merge fields are text, so the only useful range
		// is over a small integer constant; cap it and its nesting.
		p := n.Pipe
		if len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
			return c.errorf(n, "range is only allowed over a small integer constant")
		}
		num, ok := p.Cmds[0].Args[0].(*parse.NumberNode)
		if !ok || !num.IsInt || num.Int64 < 0 || num.Int64 > maxRangeConst {
			return c.errorf(n, "range is only allowed over an integer constant from 0 to %d", maxRangeConst)
		}
		if mult*num.Int64 > maxRangeTotal {
			return c.errorf(n, "nested ranges repeat more than %d times", maxRangeTotal)
		}
		return c.branch(&n.BranchNode, depth, mult*max(num.Int64, 1))
	}
	return nil
}

func (c *checker) branch(b *parse.BranchNode, depth int, mult int64) error {
	if depth+1 > maxNesting {
		return c.errorf(b, "if/with/range nested deeper than %d", maxNesting)
	}
	if err := c.pipe(b.Pipe, mult); err != nil {
		return err
	}
	if err := c.walk(b.List, depth+1, mult); err != nil {
		return err
	}
	if b.ElseList != nil {
		return c.walk(b.ElseList, depth+1, mult)
	}
	return nil
}

// step counts n's evaluations: mult, the repetitions of the ranges
// around it.
func (c *checker) step(n parse.Node, mult int64) error {
	c.steps += mult
	if c.steps > maxSteps {
		return c.errorf(n, "the template takes more than %d steps per recipient (each action, condition and text counts once per repetition of the ranges around it): repeat less", maxSteps)
	}
	return nil
}

func (c *checker) pipe(p *parse.PipeNode, mult int64) error {
	if p == nil {
		return nil
	}
	if p.IsAssign {
		// Without assignment a value cannot feed on itself in a loop
		// ({{$a = printf "%s%s" $a $a}} in a range doubles it each time);
		// a new variable per step does the same job, within the budget.
		return c.errorf(p, "assigning to a variable (%s = …) is not allowed in message templates: declare a new one with :=", p.Decl[0].Ident[0])
	}
	for _, cmd := range p.Cmds {
		if err := c.command(cmd, mult); err != nil {
			return err
		}
	}
	return nil
}

func (c *checker) command(cmd *parse.CommandNode, mult int64) error {
	if err := c.step(cmd, mult*int64(len(cmd.Args))); err != nil {
		return err
	}
	for i, a := range cmd.Args {
		// {{unsubscribe_url}}, alone or as an argument: the link.
		if id, ok := a.(*parse.IdentifierNode); ok && id.Ident == "unsubscribe_url" {
			if i == 0 && len(cmd.Args) > 1 {
				return c.errorf(cmd, "unsubscribe_url takes no arguments: write {{unsubscribe_url}}")
			}
			if c.refs.unsub == nil {
				c.refs.unsub = &fieldRef{name: "unsubscribe_url", file: c.file, line: c.line(cmd)}
			}
			cmd.Args[i] = &parse.VariableNode{NodeType: parse.NodeVariable, Pos: id.Pos, Ident: []string{"$", unsubscribeKey}}
		}
	}
	if id, ok := cmd.Args[0].(*parse.IdentifierNode); ok {
		switch id.Ident {
		case "field":
			s, ok := argString(cmd, 1)
			if !ok || len(cmd.Args) != 2 {
				return c.errorf(cmd, `field takes one quoted column name, e.g. {{field "First Name"}}`)
			}
			c.refs.add(fieldRef{name: s, file: c.file, line: c.line(cmd)})
			cmd.Args = []parse.Node{&parse.VariableNode{NodeType: parse.NodeVariable, Pos: id.Pos, Ident: []string{"$", s}}}
			return nil
		case "index":
			// index . "Column" / index $ "Column": a field lookup too.
			if len(cmd.Args) == 3 {
				_, dot := cmd.Args[1].(*parse.DotNode)
				v, isVar := cmd.Args[1].(*parse.VariableNode)
				if s, ok := argString(cmd, 2); ok && (dot || isVar && len(v.Ident) == 1 && v.Ident[0] == "$") {
					c.refs.add(fieldRef{name: s, file: c.file, line: c.line(cmd)})
				}
			}
		case "printf":
			f, ok := argString(cmd, 1)
			if !ok {
				return c.errorf(cmd, "printf needs a quoted format")
			}
			if err := checkFormat(f); err != nil {
				return c.errorf(cmd, "printf: %v", err)
			}
		}
	}
	for i, a := range cmd.Args {
		if err := c.arg(a, i, mult); err != nil {
			return err
		}
	}
	return nil
}

func argString(cmd *parse.CommandNode, i int) (string, bool) {
	if len(cmd.Args) <= i {
		return "", false
	}
	s, ok := cmd.Args[i].(*parse.StringNode)
	if !ok {
		return "", false
	}
	return s.Text, true
}

func (c *checker) arg(a parse.Node, i int, mult int64) error {
	switch a := a.(type) {
	case *parse.IdentifierNode:
		// No call of func-valued data, whatever the data.
		if a.Ident == "call" {
			return c.errorf(a, "the call function is not available in message templates")
		}
		if i > 0 && a.Ident == "field" {
			return c.errorf(a, `field takes one quoted column name, e.g. {{field "First Name"}}`)
		}
	case *parse.FieldNode:
		c.refs.add(fieldRef{name: a.Ident[0], file: c.file, line: c.line(a)})
	case *parse.VariableNode:
		if a.Ident[0] == "$" && len(a.Ident) > 1 && a.Ident[1] != unsubscribeKey {
			c.refs.add(fieldRef{name: a.Ident[1], file: c.file, line: c.line(a)})
		}
	case *parse.ChainNode:
		return c.arg(a.Node, i, mult)
	case *parse.PipeNode:
		return c.pipe(a, mult)
	}
	return nil
}

// checkFormat refuses printf widths and precisions that would build huge
// strings in memory ("%0999999999d") before any output cap applies.
func checkFormat(f string) error {
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			continue
		}
		digits := 0
		for i++; i < len(f); i++ {
			b := f[i]
			if b == '*' {
				return errors.New("* width is not allowed")
			}
			if b >= '0' && b <= '9' {
				digits++
				if digits > 3 {
					return errors.New("width or precision over 999")
				}
				continue
			}
			if strings.IndexByte("+-# .[]", b) >= 0 {
				if b == '.' || b == ']' {
					digits = 0
				}
				continue
			}
			break
		}
	}
	return nil
}
