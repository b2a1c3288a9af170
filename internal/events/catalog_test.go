package events

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// constTypes are the values of every constant of type Type declared in
// this package, read from the source so that a constant missing from the
// catalogue cannot hide.
func constTypes(t *testing.T) []Type {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "events.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []Type
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Type" {
				continue
			}
			for _, v := range vs.Values {
				lit, ok := v.(*ast.BasicLit)
				if !ok {
					t.Fatalf("event type constant %v is not a string literal", v)
				}
				s, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, Type(s))
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no event type constants found")
	}
	return out
}

// TestCatalogDocumented: every event type constant is in the catalogue and
// has a row in docs/events.md, every type documented exists, and every
// payload's JSON fields are documented under its heading.
func TestCatalogDocumented(t *testing.T) {
	raw, err := os.ReadFile("../../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	consts := constTypes(t)
	if len(consts) != len(catalog) {
		t.Errorf("%d type constants, %d catalogue entries", len(consts), len(catalog))
	}
	documented := map[Type]bool{}
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "| `") && strings.Count(line, "|") == 5 {
			name := strings.Trim(strings.TrimSpace(strings.Split(line, "|")[1]), "`")
			documented[Type(name)] = true
		}
	}
	for _, typ := range consts {
		s, ok := catalog[typ]
		if !ok {
			t.Errorf("%s is not in the catalogue", typ)
			continue
		}
		if !documented[typ] {
			t.Errorf("%s has no row in docs/events.md", typ)
			continue
		}
		row := "| `" + string(typ) + "` | " + s.Subject + " | " + s.Data.Name() + " |"
		if !strings.Contains(doc, row) {
			t.Errorf("docs/events.md: want a row starting %q", row)
		}
	}
	for typ := range documented {
		if _, ok := catalog[typ]; !ok {
			t.Errorf("docs/events.md documents %s, which the code does not know", typ)
		}
	}
	payloads := map[reflect.Type]bool{}
	for _, s := range catalog {
		payloads[s.Data] = true
	}
	for p := range payloads {
		head := "### " + p.Name() + "\n"
		i := strings.Index(doc, head)
		if i < 0 {
			t.Errorf("docs/events.md has no section %q", strings.TrimSpace(head))
			continue
		}
		section := doc[i+len(head):]
		if j := strings.Index(section, "\n### "); j >= 0 {
			section = section[:j]
		}
		for f := range p.Fields() {
			name := strings.Split(f.Tag.Get("json"), ",")[0]
			if !strings.Contains(section, "| `"+name+"` |") {
				t.Errorf("docs/events.md section %s does not document field %s", p.Name(), name)
			}
		}
	}
}

// TestEventNames: every type is <subject kind>.<verb> in lower snake case.
func TestEventNames(t *testing.T) {
	for typ, s := range catalog {
		kind, verb, ok := strings.Cut(string(typ), ".")
		if !ok || kind != s.Subject || verb == "" || strings.ToLower(verb) != verb || strings.Contains(verb, ".") {
			t.Errorf("%s: want %s.<past-tense verb>", typ, s.Subject)
		}
	}
}

func TestCheck(t *testing.T) {
	id := uuid.New()
	ok := Event{Type: LeadClaimed, SubjectKind: KindLead, SubjectID: id, Actor: System, OccurredAt: time.Now(),
		Data: Ownership{Operation: "claim", PoolID: id}}
	if err := check(ok); err != nil {
		t.Fatalf("a good event: %v", err)
	}
	for name, mut := range map[string]func(*Event){
		"unknown type":       func(e *Event) { e.Type = "lead.claim" },
		"wrong subject kind": func(e *Event) { e.SubjectKind = KindCustomer },
		"wrong payload":      func(e *Event) { e.Data = Changed{} },
		"pointer payload":    func(e *Event) { e.Data = &Ownership{} },
		"no actor":           func(e *Event) { e.Actor = Actor{} },
		"no time":            func(e *Event) { e.OccurredAt = time.Time{} },
	} {
		e := ok
		mut(&e)
		if err := check(e); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestOwnershipType(t *testing.T) {
	for _, c := range []struct {
		kind, op string
		want     Type
	}{
		{"lead", "create", LeadCreated},
		{"lead", "claim", LeadClaimed},
		{"lead", "autoAssign", LeadAssigned},
		{"lead", "convert", LeadConverted},
		{"customer", "reclaim", CustomerReclaimed},
		{"customer", "unfreeze", CustomerUnfrozen},
		{"lead", "handover", LeadHandedOver},
		{"customer", "handover", CustomerHandedOver},
	} {
		if got, err := OwnershipType(c.kind, c.op); err != nil || got != c.want {
			t.Errorf("%s %s: %s %v, want %s", c.kind, c.op, got, err, c.want)
		}
	}
	for _, c := range [][2]string{{"customer", "convert"}, {"lead", "dealStatus"}} {
		if got, err := OwnershipType(c[0], c[1]); err == nil {
			t.Errorf("%s %s: %s, want an error", c[0], c[1], got)
		}
	}
}

func TestCamel(t *testing.T) {
	for in, want := range map[string]string{"name": "name", "credit_limit": "creditLimit", "max_owned_leads": "maxOwnedLeads"} {
		if got := camel(in); got != want {
			t.Errorf("camel(%q) = %q, want %q", in, got, want)
		}
	}
}
