package config_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Each package takes its own small Config, built in main: only
// cmd/orderflow and internal/boot import this package, and no product
// package imports internal/boot but main (the dev tools and e2e may).
func TestOnlyMainAndBootImportConfig(t *testing.T) {
	const mod = "github.com/orderflow/orderflow/"
	allowed := map[string][]string{
		mod + "internal/config": {"cmd/", "internal/boot/", "internal/config/"},
		mod + "internal/boot":   {"cmd/"},
	}
	root := filepath.Join("..", "..")
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == "devtools" || rel == "e2e" || (strings.HasPrefix(d.Name(), ".") && rel != ".") || d.Name() == "node_modules" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		checked++
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			prefixes, ok := allowed[p]
			if !ok {
				continue
			}
			okHere := false
			for _, pfx := range prefixes {
				okHere = okHere || strings.HasPrefix(rel, pfx)
			}
			if !okHere {
				t.Errorf("%s imports %s: build its own Config in cmd/orderflow instead", rel, strings.TrimPrefix(p, mod))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("read only %d files: is the walk rooted at the module?", checked)
	}
}
