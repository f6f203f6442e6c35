package render

import (
	"text/template"
	"text/template/parse"
)

// plainTemplate is a text template made only of text and single merge
// fields ({{.first_name}}, or {{field "First Name"}}, which checkTree
// rewrote to $.First Name): most headers and text bodies. It is executed
// by concatenation instead of by text/template's reflective walk, with the
// same output: text/template prints a string field as it is, and the data
// map holds every field the template refers to (Template.data).
type plainTemplate []plainPart

type plainPart struct {
	text    string
	field   string // when isField
	isField bool
}

// compilePlain returns t's plain form, or nil when t uses anything else
// (functions, pipelines, conditions, ranges, variables, sub-templates).
func compilePlain(t *template.Template) plainTemplate {
	if t == nil || t.Tree == nil || t.Tree.Root == nil || len(t.Templates()) > 1 {
		return nil
	}
	var parts plainTemplate
	for _, n := range t.Tree.Root.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			parts = append(parts, plainPart{text: string(n.Text)})
		case *parse.CommentNode:
		case *parse.ActionNode:
			p := n.Pipe
			if p == nil || len(p.Decl) > 0 || len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
				return nil
			}
			switch a := p.Cmds[0].Args[0].(type) {
			case *parse.FieldNode:
				if len(a.Ident) != 1 {
					return nil
				}
				parts = append(parts, plainPart{field: a.Ident[0], isField: true})
			case *parse.VariableNode:
				if len(a.Ident) != 2 || a.Ident[0] != "$" {
					return nil
				}
				parts = append(parts, plainPart{field: a.Ident[1], isField: true})
			default:
				return nil
			}
		default:
			return nil
		}
	}
	if parts == nil {
		parts = plainTemplate{}
	}
	return parts
}

// execute writes the template for data to w; like text/template with
// missingkey=error, a field data lacks is an error.
func (p plainTemplate) execute(w *capWriter, data map[string]string) error {
	for _, part := range p {
		s := part.text
		if part.isField {
			v, ok := data[part.field]
			if !ok {
				return &Error{Msg: "merge field " + part.field + " has no value", Err: ErrMissingField}
			}
			s = v
		}
		if _, err := w.WriteString(s); err != nil {
			return err
		}
	}
	return nil
}

// execute runs the plain form when there is one, else the template.
func execute(t *template.Template, p plainTemplate, w *capWriter, data map[string]string) error {
	if p != nil {
		return p.execute(w, data)
	}
	return t.Execute(w, data)
}
