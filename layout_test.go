package orderflow_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/orderflow/orderflow"

// packageDeps lists every package of the module (tests excluded) with the
// packages it depends on, directly or not, as `go list -deps` sees them.
func packageDeps(t *testing.T) map[string][]string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to read the import graph: %v", err)
	}
	out, err := exec.Command(goBin, "list", "-f", `{{.ImportPath}} {{join .Deps " "}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		deps[fields[0]] = fields[1:]
	}
	if len(deps) < 10 {
		t.Fatalf("go list found only %d packages: %q", len(deps), out)
	}
	return deps
}

// under reports whether pkg is the module's folder dir or a package below it.
func under(pkg, dir string) bool {
	p := module + "/" + dir
	return pkg == p || strings.HasPrefix(pkg, p+"/")
}

// layoutRule is one arrow the layout forbids: no package matching from may
// depend on a package matching to.
type layoutRule struct {
	name     string
	from, to func(pkg string) bool
}

func anyUnder(dirs ...string) func(string) bool {
	return func(pkg string) bool {
		for _, d := range dirs {
			if under(pkg, d) {
				return true
			}
		}
		return false
	}
}

// product is every package that ships: all of the module but the tooling
// (devtools, tools) and the end-to-end tests.
func product(pkg string) bool {
	return strings.HasPrefix(pkg, module) && !anyUnder("devtools", "tools", "e2e")(pkg)
}

// wire is a package that holds a wire format only (activities/fulfillment/wire:
// the carrier's events and their signature), which the client and the
// simulators share with the product.
func wire(pkg string) bool {
	return strings.HasPrefix(pkg, module+"/") && strings.HasSuffix(pkg, "/wire")
}

var layoutRules = []layoutRule{
	{"the product never imports the tooling", product, anyUnder("devtools", "e2e")},
	{"an area never imports the gateway or the workers", anyUnder("workflows", "activities"), anyUnder("api", "workers", "cmd")},
	{"plumbing imports no area, gateway or worker", anyUnder("internal"), anyUnder("workflows", "activities", "api", "workers", "cmd", "client")},
	{"the gateway and the workers never import the binary", anyUnder("api", "workers"), anyUnder("cmd")},
	// The client shares only the domain's words and the wire formats (stdlib
	// only, see below) with the server side.
	{"the HTTP client stays apart from the server side", anyUnder("client"),
		func(p string) bool { return strings.HasPrefix(p, module+"/") && !wire(p) }},
	{"a wire format depends on nothing of the module but the domain's words", wire,
		func(p string) bool { return strings.HasPrefix(p, module+"/") }},
	// Each package takes its own small Config, built in main: only the binary
	// and its start-up read the settings' declarations.
	{"only cmd/orderflow and internal/boot read internal/config",
		func(p string) bool { return product(p) && !anyUnder("cmd", "internal/boot", "internal/config")(p) },
		anyUnder("internal/config")},
}

// TestLayoutArrowsPointDown checks the dependency rules of
// ARCHITECTURE.md ("Where code lives") over the real import graph.
func TestLayoutArrowsPointDown(t *testing.T) {
	deps := packageDeps(t)
	for _, r := range layoutRules {
		for pkg, ds := range deps {
			if !r.from(pkg) {
				continue
			}
			for _, d := range ds {
				if r.to(d) && d != pkg {
					t.Errorf("%s: %s imports %s", r.name, pkg, d)
				}
			}
		}
	}
}

// TestDomainPackageUsesTheStandardLibraryOnly keeps package orderflow, the
// domain's words, free of any dependency but the standard library.
func TestDomainPackageUsesTheStandardLibraryOnly(t *testing.T) {
	deps := packageDeps(t)
	ds, ok := deps[module]
	if !ok {
		t.Fatalf("package %s not found", module)
	}
	for _, d := range ds {
		// Standard library import paths have no dot in their first element.
		if first, _, _ := strings.Cut(d, "/"); strings.Contains(first, ".") {
			t.Errorf("package orderflow depends on %s", d)
		}
	}
}
