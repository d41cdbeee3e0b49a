package lab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Pinned versions of the tools the lab and the suite run, built from the Go
// module proxy into the cache outside the checkout the first time.
const (
	TemporalCLIVersion   = "1.5.1"
	StripeMockVersion    = "0.203.0"
	WorkflowcheckVersion = "0.6.0"
	// MailpitVersion: the SMTP server that keeps what it receives and shows
	// it in a web UI and an HTTP API (the SMTP mailer in development and
	// its tests).
	MailpitVersion = "1.33.1"
	// NATSServerVersion: NATS with JetStream, which the event relay
	// publishes to; built from its module rather than Debian's 2.9 package,
	// so that server and client (nats.go's jetstream package) are of one
	// generation.
	NATSServerVersion = "2.15.3"
	// VegetaVersion: the open-loop HTTP load generator the bench's overload
	// phase is cross-checked with, a generator nobody here wrote.
	VegetaVersion = "12.13.0"
)

// GoTools are the pinned Go tools by name: module and version.
var GoTools = map[string][2]string{
	"stripe-mock":   {"github.com/stripe/stripe-mock", StripeMockVersion},
	"workflowcheck": {"go.temporal.io/sdk/contrib/tools/workflowcheck", WorkflowcheckVersion},
	"mailpit":       {"github.com/axllent/mailpit", MailpitVersion},
	"nats-server":   {"github.com/nats-io/nats-server/v2", NATSServerVersion},
	"vegeta":        {"github.com/tsenart/vegeta/v12", VegetaVersion},
}

// CacheDir is where built tools are kept: ORDERFLOW_CACHE, else
// $XDG_CACHE_HOME/orderflow, else ~/.cache/orderflow.
func CacheDir() string {
	if d := os.Getenv("ORDERFLOW_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "orderflow")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "orderflow")
}

// TemporalCLI returns the path of a temporal CLI: TEMPORAL_CLI, one on
// PATH, else the pinned build in the cache, built from root's tools/temporal
// module when it is missing (a few minutes the first time).
func TemporalCLI(root string) (string, error) {
	if p := os.Getenv("TEMPORAL_CLI"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("temporal"); err == nil {
		return p, nil
	}
	return CachedBuild("temporal", TemporalCLIVersion, filepath.Join(root, "tools", "temporal"), "github.com/temporalio/cli/cmd/temporal")
}

// CachedBuild returns the cached build name-version of pkg, building it in
// the module at moduleDir (tools/temporal, tools/temporal-server) when the
// cache lacks it: a few minutes the first time, nothing after.
func CachedBuild(name, version, moduleDir, pkg string) (string, error) {
	bin := filepath.Join(CacheDir(), "bin", name+"-"+version)
	if st, err := os.Stat(bin); err == nil && st.Mode()&0o111 != 0 {
		return bin, nil
	}
	fmt.Fprintf(os.Stderr, "building %s %s into %s (first time only, a few minutes)\n", name, version, bin)
	if err := goBuild(moduleDir, nil, bin, pkg); err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return bin, nil
}

// GoTool returns the path of the pinned Go tool name (GoTools), installed
// with the project's own toolchain and kept per Go version: an analyzer
// built by an older Go cannot read a newer standard library.
func GoTool(root, name string) (string, error) {
	pin, ok := GoTools[name]
	if !ok {
		return "", fmt.Errorf("tool %q: not one of the pinned tools", name)
	}
	cmd := exec.Command("go", "env", "GOVERSION")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("tool %s: go env GOVERSION: %w", name, err)
	}
	gover := strings.TrimSpace(string(out))
	dir := filepath.Join(CacheDir(), "bin", name+"-"+pin[1]+"-"+gover)
	bin := filepath.Join(dir, name)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	fmt.Fprintf(os.Stderr, "installing %s %s into %s\n", name, pin[1], dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("tool %s: %w", name, err)
	}
	inst := exec.Command("go", "install", pin[0]+"@v"+pin[1])
	inst.Dir = root
	inst.Env = append(os.Environ(), "GOTOOLCHAIN="+gover, "GOBIN="+dir)
	inst.Stdout, inst.Stderr = os.Stderr, os.Stderr
	if err := inst.Run(); err != nil {
		return "", fmt.Errorf("tool %s: go install: %w", name, err)
	}
	return bin, nil
}

// Tool returns the path of a tool by name: "temporal" or one of GoTools.
func Tool(root, name string) (string, error) {
	if name == "temporal" {
		return TemporalCLI(root)
	}
	return GoTool(root, name)
}

// goBuild builds pkg in dir into out (through a temporary file, so that a
// failed build leaves nothing behind), with -trimpath.
func goBuild(dir string, env []string, out, pkg string) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-trimpath", "-o", out+".tmp", pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w", pkg, err)
	}
	return os.Rename(out+".tmp", out)
}
