package lab

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// TemporalDev describes a Temporal dev server node: the settings of
// temporal-config/ (dynamic config, search attributes, SQLite pragmas), an
// optional Web UI, file persistence or memory.
type TemporalDev struct {
	Name   string // node name, default "temporal"
	Host   string
	Port   int    // frontend (gRPC)
	UIPort int    // 0: headless
	DBFile string // "": in memory
	// CodecEndpoint, with a Web UI, is the codec server the UI decodes
	// sealed payloads through (TEMPORAL_UI_CODEC_ENDPOINT).
	CodecEndpoint string
	// GOGC is the server's GOGC (default 400: a larger GOGC trades memory,
	// about 860 MB instead of 530 MB at 60 orders/s, for 14% less CPU per
	// order; docs/performance.md, decision 12).
	GOGC string
	CLI  string // the temporal CLI
	Root string // the checkout, for temporal-config/
	Log  string
}

// ConfigLines returns the lines of temporal-config/NAME that are neither
// blank nor comments.
func ConfigLines(root, name string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(root, "temporal-config", name))
	if err != nil {
		return nil, err
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out, sc.Err()
}

// Args are the dev server's command-line arguments.
func (t TemporalDev) Args() ([]string, error) {
	host := t.Host
	if host == "" {
		host = Loopback
	}
	args := []string{"server", "start-dev", "--ip", host, "--port", strconv.Itoa(t.Port), "--log-level", "warn", "--namespace", "default"}
	if t.UIPort != 0 {
		args = append(args, "--ui-port", strconv.Itoa(t.UIPort))
		// The Web UI decodes sealed payloads through the gateway's codec server.
		if t.CodecEndpoint != "" {
			args = append(args, "--ui-codec-endpoint", t.CodecEndpoint)
		}
	} else {
		args = append(args, "--headless")
	}
	add := func(file, flag string) error {
		lines, err := ConfigLines(t.Root, file)
		for _, l := range lines {
			args = append(args, flag, l)
		}
		return err
	}
	if t.DBFile != "" {
		args = append(args, "--db-filename", t.DBFile)
		if err := add("sqlite-pragmas.txt", "--sqlite-pragma"); err != nil {
			return nil, err
		}
	}
	if err := add("dynamic-config.txt", "--dynamic-config-value"); err != nil {
		return nil, err
	}
	// Written into the namespace when the database is created, so the first
	// saga can use them; RegisterSearchAttributes adds any added since.
	if err := add("search-attributes.txt", "--search-attribute"); err != nil {
		return nil, err
	}
	return args, nil
}

// Node returns the dev server as a node: reused when a server already
// answers on its port, ready when `operator cluster health` passes (and the
// Web UI answers, when it has one), then its search attributes registered
// and, with file persistence, its visibility indexes trimmed.
func (t TemporalDev) Node() (*Node, error) {
	args, err := t.Args()
	if err != nil {
		return nil, fmt.Errorf("temporal: %w", err)
	}
	name := t.Name
	if name == "" {
		name = "temporal"
	}
	gogc := t.GOGC
	if gogc == "" {
		gogc = "400"
	}
	ports := Ports{"grpc": t.Port}
	n := &Node{Name: name, Host: t.Host, Ports: ports}
	addr := n.Addr("grpc")
	health := Command{Argv: []string{t.CLI, "operator", "cluster", "health", "--address", addr}}
	var ready Check = health
	if t.UIPort != 0 {
		ports["ui"] = t.UIPort
		ready = All{health, HTTPGet{URL: "http://" + n.Addr("ui") + "/"}}
	}
	n.Proc = Process{Command: append([]string{t.CLI}, args...), Env: []string{"GOGC=" + gogc}, Log: t.Log}
	n.Reuse = health
	n.Ready = ready
	n.ReadyTimeout = 2 * time.Minute
	n.Before = func(context.Context) error {
		if t.DBFile != "" {
			return os.MkdirAll(filepath.Dir(t.DBFile), 0o755)
		}
		return nil
	}
	n.After = func(ctx context.Context) error {
		if err := RegisterSearchAttributes(ctx, t.CLI, addr, t.Root); err != nil {
			return err
		}
		if t.DBFile != "" {
			TrimVisibility(ctx, t.CLI, addr, t.Root, t.DBFile, os.Stderr)
		}
		return nil
	}
	return n, nil
}

// RegisterSearchAttributes adds the saga's search attributes
// (temporal-config/search-attributes.txt) that the server at addr does not
// have yet: a database file created before one was added, or a server the
// lab did not start. The server's services read the namespace's attributes
// from a cache refreshed every few seconds (the dev server's read-through is
// turned off, docs/performance.md), so after adding one it waits until the
// frontend accepts a query on all of them, then one refresh more for the
// history service, which checks the saga's upserts.
func RegisterSearchAttributes(ctx context.Context, cli, addr, root string) error {
	want, err := ConfigLines(root, "search-attributes.txt")
	if err != nil {
		return fmt.Errorf("search attributes: %w", err)
	}
	have, _ := exec.CommandContext(ctx, cli, "operator", "search-attribute", "list", "--address", addr, "--namespace", "default").Output()
	known := map[string]bool{}
	for _, f := range strings.Fields(string(have)) {
		known[f] = true
	}
	var query []string
	added := false
	for _, kv := range want {
		name, typ, _ := strings.Cut(kv, "=")
		switch typ {
		case "Int", "Double":
			query = append(query, name+" = 0")
		case "Bool":
			query = append(query, name+" = true")
		case "Datetime":
			query = append(query, name+" = '2000-01-01T00:00:00Z'")
		default:
			query = append(query, name+" = 'probe'")
		}
		if known[name] {
			continue
		}
		out, err := exec.CommandContext(ctx, cli, "operator", "search-attribute", "create", "--address", addr,
			"--namespace", "default", "--name", name, "--type", typ).CombinedOutput()
		if err != nil {
			return fmt.Errorf("search attribute %s: %w: %s", name, err, bytes.TrimSpace(out))
		}
		added = true
	}
	if !added {
		return nil
	}
	probe := Command{Argv: []string{cli, "workflow", "list", "--address", addr, "--namespace", "default",
		"--limit", "1", "--query", strings.Join(query, " AND ")}}
	if err := Wait(ctx, probe, 30*time.Second, nil); err != nil {
		return fmt.Errorf("the new search attributes: %w", err)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(3 * time.Second):
	}
	return nil
}

//go:embed trim_visibility.py
var trimVisibilityPy string

// TrimVisibility drops the indexes of the dev server's SQLite visibility
// table that orderflow does not query (temporal-config/visibility-indexes.txt
// says which stay and why). It is idempotent and safe on a running server.
// It only makes the server cheaper, so a failure is a warning written to
// out: the stack works the same with every index.
func TrimVisibility(ctx context.Context, cli, addr, root, dbFile string, out interface{ Write([]byte) (int, error) }) {
	keep, err := ConfigLines(root, "visibility-indexes.txt")
	if err != nil {
		fmt.Fprintf(out, "warning: visibility indexes left as they are: %v\n", err)
		return
	}
	desc, err := exec.CommandContext(ctx, cli, "operator", "namespace", "describe", "--address", addr,
		"--namespace", "default", "--output", "json").Output()
	if err != nil {
		fmt.Fprintf(out, "warning: visibility indexes in %s left as they are: describe the namespace: %v\n", dbFile, err)
		return
	}
	cmd := exec.CommandContext(ctx, "python3", append([]string{"-c", trimVisibilityPy, dbFile}, keep...)...)
	cmd.Stdin = bytes.NewReader(desc)
	b, err := cmd.CombinedOutput()
	if err != nil {
		fmt.Fprintf(out, "warning: visibility indexes in %s left as they are: %v: %s\n", dbFile, err, bytes.TrimSpace(b))
		return
	}
	fmt.Fprintf(out, "\033[1;34m==>\033[0m %s\n", bytes.TrimSpace(b))
}
