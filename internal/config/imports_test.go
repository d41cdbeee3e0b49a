package config_test

import (
	"os/exec"
	"strings"
	"testing"
)

// Each package takes its own small Config, built in main: no product
// package but cmd/orderflow and internal/boot depends on internal/config,
// directly or not, as `go list -deps` sees the import graph. The dev tools
// and the end-to-end tests may.
func TestOnlyMainAndBootDependOnConfig(t *testing.T) {
	const mod = "github.com/orderflow/orderflow"
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to read the import graph: %v", err)
	}
	cmd := exec.Command(goBin, "list", "-f", `{{.ImportPath}} {{join .Deps " "}}`, "./...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	allowed := []string{mod + "/cmd/", mod + "/internal/boot", mod + "/internal/config", mod + "/devtools/", mod + "/tools/", mod + "/e2e"}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 10 {
		t.Fatalf("go list found only %d packages", len(lines))
	}
	for _, line := range lines {
		fields := strings.Fields(line)
		if len(fields) == 0 || inAny(fields[0], allowed) {
			continue
		}
		for _, d := range fields[1:] {
			if d == mod+"/internal/config" {
				t.Errorf("%s depends on internal/config: give it its own Config, built in cmd/orderflow", fields[0])
			}
		}
	}
}

func inAny(pkg string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(pkg, p) {
			return true
		}
	}
	return false
}
