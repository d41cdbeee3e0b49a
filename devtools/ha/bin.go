package ha

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/orderflow/orderflow/devtools/lab"
)

// Binaries are the pinned Temporal programs the cluster runs.
type Binaries struct {
	Server  string // go.temporal.io/server cmd/server
	SQLTool string // temporal-sql-tool (cmd/tools/sql)
	UI      string // the Web UI server
	CLI     string // the temporal CLI: operator commands
	// SchemaDir is the server module's schema/ directory, whose versioned
	// PostgreSQL schemas temporal-sql-tool applies.
	SchemaDir string
}

// FindBinaries returns the cached builds, building into the cache those
// that are missing (lab.CachedBuild): the server, the
// SQL tool and the UI in tools/temporal-server, the CLI in tools/temporal
// (unless $TEMPORAL_CLI or $ORDERFLOW_TEST_TEMPORAL_CLI names one).
func FindBinaries(ctx context.Context, root string) (Binaries, error) {
	srv := filepath.Join(root, "tools", "temporal-server")
	var b Binaries
	var err error
	steps := []struct {
		dst     *string
		name    string
		version string
		module  string
		pkg     string
	}{
		{&b.Server, "temporal-server", TemporalServerVersion, srv, "go.temporal.io/server/cmd/server"},
		{&b.SQLTool, "temporal-sql-tool", TemporalServerVersion, srv, "go.temporal.io/server/cmd/tools/sql"},
		{&b.UI, "temporal-ui-server", TemporalUIVersion, srv, "github.com/temporalio/ui-server/v2/cmd/server"},
		{&b.CLI, "temporal", lab.TemporalCLIVersion, filepath.Join(root, "tools", "temporal"), "github.com/temporalio/cli/cmd/temporal"},
	}
	for _, s := range steps {
		if *s.dst, err = lab.CachedBuild(s.name, s.version, s.module, s.pkg); err != nil {
			return b, err
		}
	}
	for _, env := range []string{"TEMPORAL_CLI", "ORDERFLOW_TEST_TEMPORAL_CLI"} {
		if p := os.Getenv(env); p != "" {
			b.CLI = p
		}
	}
	out, err := run(ctx, srv, nil, "go", "list", "-m", "-f", "{{.Dir}}", "go.temporal.io/server")
	if err != nil {
		return b, fmt.Errorf("temporal schema dir: %w", err)
	}
	b.SchemaDir = filepath.Join(strings.TrimSpace(out), "schema")
	return b, nil
}
