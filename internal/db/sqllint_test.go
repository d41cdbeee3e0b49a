package db_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// sqlCalls are the pgx methods whose second argument (after the context) is
// SQL text; Queue (pgx.Batch) takes it first.
var sqlCalls = map[string]int{"Query": 1, "QueryRow": 1, "Exec": 1, "Queue": 0}

// sqlWords spot a format string that would build a statement.
var sqlWords = regexp.MustCompile(`(?i)\b(select\s.+\sfrom|insert\s+into|update\s+\w+\s+set|delete\s+from|where\s)`)

// Every SQL statement orderflow sends is constant text with bind parameters:
// the SQL argument of every Query, QueryRow, Exec and Batch.Queue call in
// the module's code is a string literal, a constant, or constants joined
// with +, and no fmt.Sprintf (or Fprintf, or Errorf…) formats SQL. A value
// from a request can then only ever be a parameter, never statement text
// (e2e's TestHostileStringsInEveryFieldAreStoredLiterallyOrRefusedWith4xx
// shows what that buys).
func TestEverySQLStatementIsConstantText(t *testing.T) {
	root := moduleRoot(t)
	fset := token.NewFileSet()
	calls := 0
	consts := packageConstants(t, root)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "node_modules" || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		recordAssignments(f)
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			rel, _ := filepath.Rel(root, fset.Position(call.Pos()).Filename)
			at := rel + ":" + strconv.Itoa(fset.Position(call.Pos()).Line)
			if x, ok := sel.X.(*ast.Ident); ok && x.Name == "fmt" {
				for _, a := range call.Args {
					if lit, ok := a.(*ast.BasicLit); ok && lit.Kind == token.STRING && sqlWords.MatchString(lit.Value) {
						t.Errorf("%s: fmt.%s formats SQL: %s", at, sel.Sel.Name, lit.Value)
					}
				}
				return true
			}
			i, ok := sqlCalls[sel.Sel.Name]
			if !ok || len(call.Args) <= i || (i == 1 && len(call.Args) < 2) {
				return true
			}
			arg := call.Args[i]
			if !mayBeSQL(arg) {
				return true
			}
			calls++
			if !constant(arg, consts[filepath.Dir(path)]) {
				t.Errorf("%s: %s's SQL is not constant text: %s", at, sel.Sel.Name, render(fset, arg))
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls < 20 {
		t.Fatalf("found only %d SQL calls: the scan is not seeing the code", calls)
	}
	t.Logf("%d SQL calls, all with constant text", calls)
}

// mayBeSQL leaves out arguments that cannot be SQL text: a context, a
// composite value, a number.
func mayBeSQL(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.BasicLit:
		return e.Kind == token.STRING
	case *ast.CompositeLit, *ast.FuncLit:
		return false
	case *ast.Ident:
		return e.Name != "ctx" && e.Name != "nil"
	case *ast.CallExpr:
		// ctx-producing calls such as context.Background().
		if sel, ok := e.Fun.(*ast.SelectorExpr); ok {
			if x, ok := sel.X.(*ast.Ident); ok && x.Name == "context" {
				return false
			}
		}
	}
	return true
}

// constant reports whether e is a string literal, a constant (of the
// function, or of the package: pkgConsts), a variable declared once from
// constant text and never assigned again, or such joined with +.
func constant(e ast.Expr, pkgConsts map[string]bool) bool {
	switch e := e.(type) {
	case *ast.BasicLit:
		return e.Kind == token.STRING
	case *ast.ParenExpr:
		return constant(e.X, pkgConsts)
	case *ast.BinaryExpr:
		return e.Op == token.ADD && constant(e.X, pkgConsts) && constant(e.Y, pkgConsts)
	case *ast.Ident:
		if e.Obj == nil {
			return pkgConsts[e.Name] // declared in another file of the package
		}
		switch e.Obj.Kind {
		case ast.Con:
			return true
		case ast.Var:
			as, ok := e.Obj.Decl.(*ast.AssignStmt)
			return ok && as.Tok == token.DEFINE && len(as.Lhs) == 1 && len(as.Rhs) == 1 &&
				constant(as.Rhs[0], pkgConsts) && !reassigned(e.Obj)
		}
	}
	return false
}

// assignments records every plain assignment (=, +=) to a local variable,
// filled as files are parsed.
//
//lint:ignore SA1019 the check parses without type-checking, and the parser's objects resolve a function's locals, all it needs
var assignments = map[*ast.Object]bool{}

//lint:ignore SA1019 as above
func reassigned(obj *ast.Object) bool { return assignments[obj] }

func recordAssignments(f *ast.File) {
	ast.Inspect(f, func(n ast.Node) bool {
		if as, ok := n.(*ast.AssignStmt); ok && as.Tok != token.DEFINE {
			for _, l := range as.Lhs {
				if id, ok := l.(*ast.Ident); ok && id.Obj != nil {
					assignments[id.Obj] = true
				}
			}
		}
		return true
	})
}

// packageConstants returns, per directory, the names of the package-level
// constants its (non-test) files declare.
func packageConstants(t *testing.T, root string) map[string]map[string]bool {
	t.Helper()
	out := map[string]map[string]bool{}
	fset := token.NewFileSet()
	_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Dir(path)
		if out[dir] == nil {
			out[dir] = map[string]bool{}
		}
		for _, decl := range f.Decls {
			if g, ok := decl.(*ast.GenDecl); ok && g.Tok == token.CONST {
				for _, spec := range g.Specs {
					for _, n := range spec.(*ast.ValueSpec).Names {
						out[dir][n.Name] = true
					}
				}
			}
		}
		return nil
	})
	return out
}

func render(fset *token.FileSet, e ast.Expr) string {
	var b strings.Builder
	pos, end := fset.Position(e.Pos()), fset.Position(e.End())
	src, err := os.ReadFile(pos.Filename)
	if err != nil || end.Offset > len(src) {
		return "?"
	}
	b.Write(src[pos.Offset:end.Offset])
	return b.String()
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test")
		}
		dir = parent
	}
}
