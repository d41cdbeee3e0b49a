package lab

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Versions of the pinned Temporal builds that run Temporal on PostgreSQL
// (the ha profile's cluster, the regions profile's clusters, the restore
// drill's server): the server the CLI's dev server embeds
// (TemporalCLIVersion), so both run the same schema, and the Web UI server
// that CLI embeds.
const (
	TemporalServerVersion = "1.29.1"
	TemporalUIVersion     = "2.42.1"
)

// TemporalBinaries are the pinned Temporal programs a server on PostgreSQL
// runs with.
type TemporalBinaries struct {
	Server  string // go.temporal.io/server cmd/server
	SQLTool string // temporal-sql-tool (cmd/tools/sql)
	UI      string // the Web UI server
	CLI     string // the temporal CLI: operator commands
	// SchemaDir is the server module's schema/ directory, whose versioned
	// PostgreSQL schemas temporal-sql-tool applies.
	SchemaDir string
}

// FindTemporalBinaries returns the cached builds, building into the cache
// those that are missing (CachedBuild): the server, the SQL tool and the UI
// in tools/temporal-server, the CLI in tools/temporal (unless $TEMPORAL_CLI
// or $ORDERFLOW_TEST_TEMPORAL_CLI names one).
func FindTemporalBinaries(ctx context.Context, root string) (TemporalBinaries, error) {
	srv := filepath.Join(root, "tools", "temporal-server")
	var b TemporalBinaries
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
		{&b.CLI, "temporal", TemporalCLIVersion, filepath.Join(root, "tools", "temporal"), "github.com/temporalio/cli/cmd/temporal"},
	}
	for _, s := range steps {
		if *s.dst, err = CachedBuild(s.name, s.version, s.module, s.pkg); err != nil {
			return b, err
		}
	}
	for _, env := range []string{"TEMPORAL_CLI", "ORDERFLOW_TEST_TEMPORAL_CLI"} {
		if p := os.Getenv(env); p != "" {
			b.CLI = p
		}
	}
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", "go.temporal.io/server")
	cmd.Dir = srv
	out, err := cmd.Output()
	if err != nil {
		return b, fmt.Errorf("temporal schema dir: go list -m go.temporal.io/server: %w", err)
	}
	b.SchemaDir = filepath.Join(strings.TrimSpace(string(out)), "schema")
	return b, nil
}

// TemporalDB is where a Temporal server keeps its persistence and its
// visibility: one PostgreSQL server, or several as a multi-host list that
// the server's pgx driver narrows to the primary (target_session_attrs).
type TemporalDB struct {
	Addr       string // host:port, or host1:port1,host2:port2
	User       string
	Password   string
	Database   string // persistence, e.g. orderflow_t_temporal
	Visibility string // SQL visibility, e.g. orderflow_t_temporal_vis
}

// URL is a pgx URL of the database name on the primary.
func (p TemporalDB) URL(name string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(p.User, p.Password), Host: p.Addr, Path: "/" + name,
		RawQuery: "sslmode=disable&target_session_attrs=read-write&connect_timeout=5"}
	return u.String()
}

// Schema creates the persistence and visibility databases if they are
// missing, sets their schema up with temporal-sql-tool when it is not
// there, and updates it from the server module's versioned directories
// (a no-op when it is current).
func (p TemporalDB) Schema(ctx context.Context, bin TemporalBinaries) error {
	host, port, err := p.primary(ctx)
	if err != nil {
		return err
	}
	for _, db := range []struct{ name, dir string }{
		{p.Database, "temporal"}, {p.Visibility, "visibility"},
	} {
		if err := p.schema(ctx, bin, host, port, db.name, filepath.Join(bin.SchemaDir, "postgresql", "v12", db.dir, "versioned")); err != nil {
			return fmt.Errorf("temporal schema %s: %w", db.name, err)
		}
	}
	return nil
}

func (p TemporalDB) schema(ctx context.Context, bin TemporalBinaries, host, port, name, dir string) error {
	tool := []string{bin.SQLTool, "--plugin", "postgres12_pgx", "--ep", host, "--port", port,
		"--user", p.User, "--password", p.Password, "--db", name}
	exists, err := queryBool(ctx, p.URL("postgres"), func(conn *pgx.Conn) pgx.Row {
		return conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name)
	})
	if err != nil {
		return err
	}
	if !exists {
		if err := run(ctx, append(tool, "create-database")...); err != nil {
			return err
		}
	}
	versioned, err := queryBool(ctx, p.URL(name), func(conn *pgx.Conn) pgx.Row {
		return conn.QueryRow(ctx, "SELECT to_regclass('schema_version') IS NOT NULL")
	})
	if err != nil {
		return err
	}
	if !versioned {
		if err := run(ctx, append(tool, "setup-schema", "-v", "0.0")...); err != nil {
			return err
		}
	}
	return run(ctx, append(tool, "update-schema", "-d", dir)...)
}

// queryBool connects to dsn and scans the one boolean of the row that
// query returns on that connection.
func queryBool(ctx context.Context, dsn string, query func(*pgx.Conn) pgx.Row) (bool, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return false, err
	}
	defer conn.Close(ctx)
	var b bool
	err = query(conn).Scan(&b)
	return b, err
}

// primary is the host and port of the member of p.Addr that takes writes
// (temporal-sql-tool takes one host).
func (p TemporalDB) primary(ctx context.Context) (host, port string, err error) {
	var last error
	for _, addr := range strings.Split(p.Addr, ",") {
		q := p
		q.Addr = addr
		if _, err := queryBool(ctx, q.URL("postgres"), func(conn *pgx.Conn) pgx.Row { return conn.QueryRow(ctx, "SELECT true") }); err != nil {
			last = err
			continue
		}
		host, port, err = net.SplitHostPort(addr)
		return host, port, err
	}
	return "", "", fmt.Errorf("no writable PostgreSQL in %s: %w", p.Addr, last)
}

// SearchAttributes reads temporal-config/search-attributes.txt: name and
// type of each of the saga's custom search attributes.
func SearchAttributes(root string) ([][2]string, error) {
	lines, err := ConfigLines(root, "search-attributes.txt")
	if err != nil {
		return nil, err
	}
	var out [][2]string
	for _, line := range lines {
		name, typ, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("search-attributes.txt: %q is not name=type", line)
		}
		out = append(out, [2]string{name, typ})
	}
	return out, nil
}

// SearchAttributeProbe is a query clause that is valid for an attribute of
// that type.
func SearchAttributeProbe(name, typ string) string {
	switch typ {
	case "Int", "Double":
		return name + " = 0"
	case "Bool":
		return name + " = true"
	case "Datetime":
		return name + " = '2000-01-01T00:00:00Z'"
	}
	return name + " = 'probe'"
}

// EnsureSearchAttributes creates, with the temporal CLI through the
// frontend at addr, each of the saga's search attributes the namespace ns
// lacks, and returns a visibility query that names all of them (for the
// caller to wait until every frontend it cares about accepts it). A
// creation is retried while a service behind the frontend has yet to see a
// namespace just created; one that a retry finds created is done. args are
// added to every call (--grpc-meta ...).
func EnsureSearchAttributes(ctx context.Context, cli, root, addr, ns string, args ...string) (string, error) {
	attrs, err := SearchAttributes(root)
	if err != nil {
		return "", err
	}
	call := func(argv ...string) (string, error) {
		argv = append(append(argv, "--address", addr, "--namespace", ns), args...)
		out, err := exec.CommandContext(ctx, cli, argv...).CombinedOutput()
		if err != nil {
			return string(out), fmt.Errorf("temporal %s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
		}
		return string(out), nil
	}
	var have string
	if err := Wait(ctx, checkFunc{"search-attribute list in " + ns, func(context.Context) error {
		have, err = call("operator", "search-attribute", "list")
		return err
	}}, time.Minute, nil); err != nil {
		return "", err
	}
	var query []string
	for _, a := range attrs {
		if !strings.Contains(have, a[0]) {
			create := checkFunc{"search-attribute create " + a[0] + " in " + ns, func(context.Context) error {
				_, err := call("operator", "search-attribute", "create", "--name", a[0], "--type", a[1])
				if err != nil {
					if list, lerr := call("operator", "search-attribute", "list"); lerr == nil && strings.Contains(list, a[0]) {
						return nil
					}
				}
				return err
			}}
			if err := Wait(ctx, create, time.Minute, nil); err != nil {
				return "", err
			}
		}
		query = append(query, SearchAttributeProbe(a[0], a[1]))
	}
	return strings.Join(query, " AND "), nil
}
