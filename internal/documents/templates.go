// Package documents is printable document templates (打印模板): for each
// document kind (quote now; order and contract later) an html/template
// source that admins may change, a letterhead (抬头) shown as .Company,
// and the built-in default used until they do.
//
// A template is checked when it is saved, never first at print time: it
// must parse and execute against the kind's sample data (SampleQuote),
// or the change is refused with 422 template_invalid naming the error.
// Templates see their data escaped by html/template and these functions:
//
//   - capital: a money string ("1234.50") in Chinese capital numerals
//     (壹仟贰佰叁拾肆元伍角整, money.Capital); anything that is not a money
//     string fails the execution.
//   - money: a money string with thousands separators ("1,234,567.50").
//   - add: the sum of two integers.
//
// A missing map key is an error (missingkey=error), as is a field the
// data does not have. A range must be over data (.Lines, $.Lines, $x.F),
// never over a literal or a function's result, so no template can loop
// for ever; the output of one execution is limited to maxOutput bytes.
package documents

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"slices"
	"strings"
	"text/template/parse"

	"github.com/shoalcrm/shoal/internal/money"
)

// Kind is a document kind: the id of its template.
type Kind string

// Quote is the quote (报价单).
const Quote Kind = "quote"

// kindSpec is what a document kind brings: a default name and body, and
// the sample every body must render.
type kindSpec struct {
	name   string
	body   string
	sample func() any
	// fill returns doc with Company set, or false when doc is not the
	// kind's data.
	fill func(doc any, company Party) (any, bool)
}

// registry declares the document kinds. A new kind adds its data type, a
// sample, a default body and a line here (and to the API's kind enum).
var registry = map[Kind]kindSpec{
	Quote: {
		name:   "报价单",
		body:   defaultQuoteBody,
		sample: func() any { return SampleQuote() },
		fill: func(doc any, c Party) (any, bool) {
			switch d := doc.(type) {
			case QuoteDoc:
				return d.withCompany(c), true
			case *QuoteDoc:
				return d.withCompany(c), true
			}
			return nil, false
		},
	},
}

// Kinds are the document kinds, sorted.
func Kinds() []Kind {
	out := make([]Kind, 0, len(registry))
	for k := range registry {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// DefaultBody is kind's built-in template body ("" for an unknown kind).
func DefaultBody(kind Kind) string { return registry[kind].body }

// DefaultName is kind's built-in template name ("" for an unknown kind).
func DefaultName(kind Kind) string { return registry[kind].name }

// maxOutput bounds what one execution may write.
const maxOutput = 8 << 20

var errTooLarge = errors.New("the document is larger than 8 MiB")

// funcs are the functions templates may call.
var funcs = template.FuncMap{
	"capital": func(s string) (string, error) {
		m, err := money.Parse(s)
		if err != nil {
			return "", fmt.Errorf("capital: %w", err)
		}
		return money.Capital(m), nil
	},
	"money": func(s string) (string, error) {
		m, err := money.Parse(s)
		if err != nil {
			return "", fmt.Errorf("money: %w", err)
		}
		return Grouped(m), nil
	},
	"add": func(a, b int) int { return a + b },
}

// Grouped is m with thousands separators: "1,234,567.50", "-1,000.00".
func Grouped(m money.Money) string {
	s := m.String()
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	intPart, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return sign + b.String() + "." + frac
}

// parseBody parses a template body of kind.
func parseBody(kind Kind, body string) (*template.Template, error) {
	t, err := template.New(string(kind)).Funcs(funcs).Option("missingkey=error").Parse(body)
	if err != nil {
		return nil, err
	}
	for _, tt := range t.Templates() {
		if tt.Tree == nil || tt.Tree.Root == nil {
			continue
		}
		if err := checkRanges(tt.Tree, tt.Tree.Root); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// checkRanges refuses a range over anything but data: a field chain or
// dot. Ranging over an integer (Go 1.22 templates allow it) could loop for
// ever.
func checkRanges(tree *parse.Tree, n parse.Node) error {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := checkRanges(tree, c); err != nil {
				return err
			}
		}
	case *parse.RangeNode:
		if !rangeOverData(n.Pipe) {
			loc, _ := tree.ErrorContext(n)
			return fmt.Errorf("template: %s: range over %s: only data (.Lines, $.Lines) may be ranged over", loc, n.Pipe)
		}
		return checkBranch(tree, &n.BranchNode)
	case *parse.IfNode:
		return checkBranch(tree, &n.BranchNode)
	case *parse.WithNode:
		return checkBranch(tree, &n.BranchNode)
	}
	return nil
}

func checkBranch(tree *parse.Tree, b *parse.BranchNode) error {
	if err := checkRanges(tree, b.List); err != nil {
		return err
	}
	if b.ElseList != nil {
		return checkRanges(tree, b.ElseList)
	}
	return nil
}

// rangeOverData reports whether a range's pipeline is one field chain:
// .Lines, $.Lines, $x.Lines, .A.B, or dot itself.
func rangeOverData(p *parse.PipeNode) bool {
	if p == nil || len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
		return false
	}
	switch a := p.Cmds[0].Args[0].(type) {
	case *parse.FieldNode, *parse.DotNode:
		return true
	case *parse.VariableNode:
		return len(a.Ident) > 1
	case *parse.ChainNode:
		_, ok := a.Node.(*parse.FieldNode)
		return ok
	}
	return false
}

// limitedBuffer fails writes beyond maxOutput.
type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > maxOutput {
		return 0, errTooLarge
	}
	return b.Buffer.Write(p)
}

func execute(t *template.Template, data any) ([]byte, error) {
	var buf limitedBuffer
	if err := t.Execute(&buf, data); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Check parses body as a template of kind and executes it against the
// kind's sample with a sample letterhead: the error says what is wrong,
// with its line.
func Check(kind Kind, body string) error {
	spec, ok := registry[kind]
	if !ok {
		return fmt.Errorf("unknown document kind %q", kind)
	}
	t, err := parseBody(kind, body)
	if err != nil {
		return err
	}
	data, _ := spec.fill(spec.sample(), sampleCompany)
	_, err = execute(t, data)
	return err
}

// sampleCompany is the letterhead a body is checked with.
var sampleCompany = Party{Name: "示例科技有限公司", Address: "北京市海淀区中关村大街1号", Phone: "010-8888 8888", TaxID: "91110108MA00XXXXXX"}
