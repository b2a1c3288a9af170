package httpapi

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// problemCodes finds every problem code written as a literal in the Go
// sources under root: apperr.New(kind, "code", …), apperr.Error{Code:
// "code"} and x.Code = "code" (field-level codes, apperr.FieldError, are
// not problem codes and are left out).
func problemCodes(t *testing.T, root string) map[string]string {
	t.Helper()
	codes := map[string]string{}
	fset := token.NewFileSet()
	literal := func(e ast.Expr) (string, bool) {
		lit, ok := e.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(lit.Value)
		return s, err == nil
	}
	// isApperr matches apperr.X from outside the package and X inside it.
	isApperr := func(e ast.Expr, name string, inApperr bool) bool {
		switch e := e.(type) {
		case *ast.SelectorExpr:
			pkg, ok := e.X.(*ast.Ident)
			return ok && pkg.Name == "apperr" && e.Sel.Name == name
		case *ast.Ident:
			return inApperr && e.Name == name
		}
		return false
	}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		inApperr := f.Name.Name == "apperr"
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				if isApperr(n.Fun, "New", inApperr) && len(n.Args) >= 2 {
					if code, ok := literal(n.Args[1]); ok {
						codes[code] = fset.Position(n.Pos()).String()
					}
				}
			case *ast.CompositeLit:
				if !isApperr(n.Type, "Error", inApperr) {
					return true
				}
				for _, el := range n.Elts {
					kv, ok := el.(*ast.KeyValueExpr)
					if key, isIdent := kv.Key.(*ast.Ident); ok && isIdent && key.Name == "Code" {
						if code, ok := literal(kv.Value); ok {
							codes[code] = fset.Position(n.Pos()).String()
						}
					}
				}
			case *ast.AssignStmt:
				for i, lhs := range n.Lhs {
					sel, ok := lhs.(*ast.SelectorExpr)
					if !ok {
						continue
					}
					// fields[i].Code names a field error's kind
					// (apperr.FieldError), not a problem.
					if _, ofField := sel.X.(*ast.IndexExpr); ofField {
						continue
					}
					if sel.Sel.Name == "Code" && i < len(n.Rhs) {
						if code, ok := literal(n.Rhs[i]); ok {
							codes[code] = fset.Position(n.Pos()).String()
						}
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return codes
}

// Every problem code the server can produce is explained in both of its
// languages.
func TestCatalogCoversEveryCode(t *testing.T) {
	t.Parallel()
	codes := problemCodes(t, "..")
	for _, known := range []string{"not_found", "invalid_cursor", "default_pool_required", "route_not_found", "database_unavailable"} {
		if _, ok := codes[known]; !ok {
			t.Errorf("the scan missed %q; it no longer sees every way codes are written", known)
		}
	}
	var missing []string
	for code, where := range codes {
		m, ok := catalog[code]
		if !ok || m.en == "" || m.zh == "" {
			missing = append(missing, code+" ("+where+")")
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("codes without an English and a Chinese detail in the catalog:\n%s", strings.Join(missing, "\n"))
	}
}
