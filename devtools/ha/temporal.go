package ha

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orderflow/orderflow/devtools/lab"
)

// Postgres is where a Temporal cluster keeps its persistence and its
// visibility: one server, or Patroni's members as a multi-host list that
// the server's pgx driver narrows to the primary (target_session_attrs).
type Postgres struct {
	Addr       string // host:port, or host1:port1,host2:port2
	User       string
	Password   string
	Database   string // persistence, e.g. orderflow_t_temporal
	Visibility string // SQL visibility, e.g. orderflow_t_temporal_vis
}

// URL is a pgx URL of the database name on the primary.
func (p Postgres) URL(name string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(p.User, p.Password), Host: p.Addr, Path: "/" + name,
		RawQuery: "sslmode=disable&target_session_attrs=read-write&connect_timeout=5"}
	return u.String()
}

// TemporalCluster is a Temporal cluster of Servers processes (default 2),
// each running all four services from temporal-config/cluster/cluster.yaml,
// joined in one membership ring through the database; HAProxy
// (deploy/haproxy/temporal.cfg) in front of their frontends; and, with UI,
// the Web UI server against it.
//
// Ports, from PortBase: server i (0-based) uses PortBase+10*i to +9 (its
// layout is in cluster.yaml), the load balancer PortBase+10*Servers, the
// Web UI the next one, the balancer's status page the one after.
type TemporalCluster struct {
	Root     string // the checkout
	Data     string // logs and the lab's state
	Bin      Binaries
	DB       Postgres
	Host     string // default 127.0.0.1
	PortBase int
	Servers  int
	UI       bool
	// CodecEndpoint is the Web UI's codec server (the gateway's /codec).
	CodecEndpoint string
	Namespace     string // default "default"
	// Retention of closed workflows in the namespace (default 72h: long
	// enough to look into a failed saga after a weekend).
	Retention string
	// Hosts, when set, gives the servers (temporal-1, temporal-2...) hosts
	// of their own; the balancer and the Web UI stay on Host, or on Front.
	Hosts map[string]lab.Host
	// Front, when set, is where the balancer, its status page and the Web
	// UI listen instead of the ports after the servers'.
	Front *Front
	// Before runs before each server starts (the lab's profiles create
	// the databases there).
	Before func(ctx context.Context) error
	Out    io.Writer

	stack *lab.Stack
}

func (c *TemporalCluster) defaults() {
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	if c.Servers == 0 {
		c.Servers = 2
	}
	if c.Namespace == "" {
		c.Namespace = "default"
	}
	if c.Retention == "" {
		c.Retention = "72h"
	}
}

// ServerName is the node name of server i: temporal-1, temporal-2...
func ServerName(i int) string { return fmt.Sprintf("temporal-%d", i+1) }

// FrontendAddr is server i's own frontend (gRPC).
func (c *TemporalCluster) FrontendAddr(i int) string {
	c.defaults()
	return net.JoinHostPort(hostOf(c.Hosts, c.Host, ServerName(i)).Addr, strconv.Itoa(c.PortBase+10*i))
}

func (c *TemporalCluster) lbPort() int {
	if c.Front != nil {
		return c.Front.Port
	}
	return c.PortBase + 10*c.Servers
}

func (c *TemporalCluster) uiPort() int {
	if c.Front != nil {
		return c.Front.UI
	}
	return c.PortBase + 10*c.Servers + 1
}

func (c *TemporalCluster) statsPort() int {
	if c.Front != nil {
		return c.Front.Stats
	}
	return c.PortBase + 10*c.Servers + 2
}

// frontHost is the address the balancer and the Web UI are dialled at.
func (c *TemporalCluster) frontHost() string {
	if c.Front != nil {
		return c.Front.Host
	}
	return c.Host
}

// bind is the address an entry point on port binds: every interface
// behind a Front, else its address.
func (c *TemporalCluster) bind(port int) string {
	if c.Front != nil {
		return c.Front.bind(port)
	}
	return net.JoinHostPort(c.Host, strconv.Itoa(port))
}

// Address is the load balancer's address, the one clients use.
func (c *TemporalCluster) Address() string {
	c.defaults()
	return net.JoinHostPort(c.frontHost(), strconv.Itoa(c.lbPort()))
}

// StatsAddr is the load balancer's status page (GET /stats;csv).
func (c *TemporalCluster) StatsAddr() string {
	c.defaults()
	return net.JoinHostPort(c.frontHost(), strconv.Itoa(c.statsPort()))
}

// UIURL is the Web UI's base URL.
func (c *TemporalCluster) UIURL() string {
	c.defaults()
	return fmt.Sprintf("http://%s", net.JoinHostPort(c.frontHost(), strconv.Itoa(c.uiPort())))
}

// Stack is the cluster as lab nodes: the servers, the load balancer (whose
// After registers the namespace and search attributes) and the Web UI.
func (c *TemporalCluster) Stack() *lab.Stack {
	if c.stack != nil {
		return c.stack
	}
	c.defaults()
	cfgDir := filepath.Join(c.Root, "temporal-config", "cluster")
	var nodes []*lab.Node
	lbEnv := []string{"TEMPORAL_LB_ADDR=" + c.bind(c.lbPort()), "TEMPORAL_LB_STATS_ADDR=" + c.bind(c.statsPort())}
	for i := range c.Servers {
		name := ServerName(i)
		h := hostOf(c.Hosts, c.Host, name)
		nodes = append(nodes, place(&lab.Node{
			Name: name, Ports: lab.Ports{"frontend": c.PortBase + 10*i},
			Proc: lab.Process{
				Command: []string{c.Bin.Server, "--root", "/", "--config", cfgDir, "--env", "cluster", "--allow-no-auth", "start"},
				Env: []string{
					"TEMPORAL_DB_ADDR=" + c.DB.Addr, "TEMPORAL_DB_USER=" + c.DB.User, "TEMPORAL_DB_PASSWORD=" + c.DB.Password,
					"TEMPORAL_DB_NAME=" + c.DB.Database, "TEMPORAL_VIS_DB_NAME=" + c.DB.Visibility,
					"TEMPORAL_BIND_IP=" + h.Addr, "TEMPORAL_PORT_BASE=" + strconv.Itoa(c.PortBase+10*i),
					"TEMPORAL_DYNAMIC_CONFIG=" + filepath.Join(cfgDir, "dynamic-config.yaml"),
				},
				Log:   filepath.Join(c.Data, name+".log"),
				Grace: 20 * time.Second,
			},
			Before:       c.Before,
			Ready:        c.health(c.FrontendAddr(i)),
			ReadyTimeout: 2 * time.Minute,
		}, h))
		lbEnv = append(lbEnv, fmt.Sprintf("TEMPORAL_FRONTEND_%d=%s", i+1, c.FrontendAddr(i)))
	}
	nodes = append(nodes, &lab.Node{
		Name: "temporal-lb", Host: c.frontHost(), Ports: lab.Ports{"grpc": c.lbPort(), "stats": c.statsPort()},
		Proc: lab.Process{
			Command: []string{"haproxy", "-db", "-f", filepath.Join(c.Root, "deploy", "haproxy", "temporal.cfg")},
			Env:     lbEnv, Log: filepath.Join(c.Data, "temporal-lb.log"),
		},
		Ready: c.health(c.Address()),
		After: c.register,
	})
	if c.UI {
		nodes = append(nodes, &lab.Node{
			Name: "temporal-ui", Host: c.frontHost(), Ports: lab.Ports{"http": c.uiPort()},
			Proc: lab.Process{
				Command: []string{c.Bin.UI, "--root", "/", "--config", cfgDir, "--env", "ui", "start"},
				Env: []string{"TEMPORAL_ADDRESS=" + c.Address(), "TEMPORAL_UI_IP=" + uiIP(c.bind(c.uiPort())),
					"TEMPORAL_UI_PORT=" + strconv.Itoa(c.uiPort()), "TEMPORAL_UI_CODEC_ENDPOINT=" + c.CodecEndpoint},
				Log: filepath.Join(c.Data, "temporal-ui.log"),
			},
			Ready: lab.HTTPGet{URL: c.UIURL() + "/"},
		})
	}
	c.stack = lab.NewStack(lab.Config{Profile: "temporal-cluster", Root: c.Root, Data: c.Data}, nodes)
	c.stack.Out = c.Out
	return c.stack
}

func uiIP(bind string) string { h, _, _ := net.SplitHostPort(bind); return h }

func (c *TemporalCluster) health(addr string) lab.Check {
	return lab.Command{Argv: []string{c.Bin.CLI, "operator", "cluster", "health", "--address", addr}}
}

// Up creates the two databases and their schemas when they are missing,
// upgrades them to the server's version, starts every node and waits until
// the namespace takes queries on the saga's search attributes on every
// frontend.
func (c *TemporalCluster) Up(ctx context.Context) error {
	c.defaults()
	if err := c.Schema(ctx); err != nil {
		return err
	}
	return c.Stack().Up(ctx)
}

// Down stops every node the cluster started. The databases stay.
func (c *TemporalCluster) Down() error { return c.Stack().Down() }

// Schema creates the persistence and visibility databases if they are
// missing, sets their schema up with temporal-sql-tool when it is not
// there, and updates it from the server module's versioned directories
// (a no-op when it is current).
func (c *TemporalCluster) Schema(ctx context.Context) error {
	host, port, err := primaryOf(ctx, c.DB)
	if err != nil {
		return err
	}
	for _, db := range []struct{ name, dir string }{
		{c.DB.Database, "temporal"}, {c.DB.Visibility, "visibility"},
	} {
		if err := c.schema(ctx, host, port, db.name, filepath.Join(c.Bin.SchemaDir, "postgresql", "v12", db.dir, "versioned")); err != nil {
			return fmt.Errorf("temporal schema %s: %w", db.name, err)
		}
	}
	return nil
}

func (c *TemporalCluster) schema(ctx context.Context, host, port, name, dir string) error {
	tool := []string{c.Bin.SQLTool, "--plugin", "postgres12_pgx", "--ep", host, "--port", port,
		"--user", c.DB.User, "--password", c.DB.Password, "--db", name}
	exists, err := queryBool(ctx, c.DB.URL("postgres"), func(conn *pgx.Conn) pgx.Row {
		return conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name)
	})
	if err != nil {
		return err
	}
	if !exists {
		if _, err := run(ctx, "", nil, append(tool, "create-database")...); err != nil {
			return err
		}
	}
	versioned, err := queryBool(ctx, c.DB.URL(name), func(conn *pgx.Conn) pgx.Row {
		return conn.QueryRow(ctx, "SELECT to_regclass('schema_version') IS NOT NULL")
	})
	if err != nil {
		return err
	}
	if !versioned {
		if _, err := run(ctx, "", nil, append(tool, "setup-schema", "-v", "0.0")...); err != nil {
			return err
		}
	}
	_, err = run(ctx, "", nil, append(tool, "update-schema", "-d", dir)...)
	return err
}

// DropDatabases drops the cluster's two databases (tests start clean).
func (c *TemporalCluster) DropDatabases(ctx context.Context) error {
	const script = `SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE)', :'db') \gexec
SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE)', :'vis') \gexec
`
	if err := psqlScript(ctx, c.DB.URL("postgres"), script, "db="+c.DB.Database, "vis="+c.DB.Visibility); err != nil {
		return fmt.Errorf("drop temporal databases: %w", err)
	}
	return nil
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

// primaryOf is the host and port of the member of p.Addr that takes writes
// (temporal-sql-tool takes one host).
func primaryOf(ctx context.Context, p Postgres) (host, port string, err error) {
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

// SearchAttributes reads temporal-config/search-attributes.txt: name=type.
func SearchAttributes(root string) ([][2]string, error) {
	f, err := os.Open(filepath.Join(root, "temporal-config", "search-attributes.txt"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out [][2]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, typ, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("search-attributes.txt: %q is not name=type", line)
		}
		out = append(out, [2]string{name, typ})
	}
	return out, sc.Err()
}

// register creates the namespace and the saga's search attributes with the
// temporal CLI, as an operator would, unless they are there; then waits
// until every frontend answers a query on all of them.
func (c *TemporalCluster) register(ctx context.Context) error {
	cli := func(args ...string) (string, error) {
		return run(ctx, "", nil, append([]string{c.Bin.CLI}, append(args, "--address", c.Address(), "--namespace", c.Namespace)...)...)
	}
	if _, err := cli("operator", "namespace", "describe"); err != nil {
		if _, err := cli("operator", "namespace", "create", "--retention", c.Retention); err != nil {
			return err
		}
	}
	attrs, err := SearchAttributes(c.Root)
	if err != nil {
		return err
	}
	// A namespace just created reaches the frontends' namespace caches
	// within seconds: the attributes are created once every frontend knows
	// it (the balancer may send each call to either). Describe reads the
	// database, not that cache; a workflow list goes through it.
	for i := range c.Servers {
		argv := []string{c.Bin.CLI, "workflow", "list", "--limit", "1", "--address", c.FrontendAddr(i), "--namespace", c.Namespace}
		if err := waitFor(ctx, lab.Command{Argv: argv}, time.Minute); err != nil {
			return fmt.Errorf("namespace %s on %s: %w", c.Namespace, ServerName(i), err)
		}
	}
	var have string
	if err := waitFor(ctx, checkFunc{"search-attribute list", func(context.Context) error {
		have, err = cli("operator", "search-attribute", "list")
		return err
	}}, time.Minute); err != nil {
		return err
	}
	var query []string
	for _, a := range attrs {
		if !strings.Contains(have, a[0]) {
			// Retried while a service behind the frontend has yet to see
			// the namespace; one that a retry finds created is done.
			create := checkFunc{"search-attribute create " + a[0], func(context.Context) error {
				_, err := cli("operator", "search-attribute", "create", "--name", a[0], "--type", a[1])
				if err != nil {
					if list, lerr := cli("operator", "search-attribute", "list"); lerr == nil && strings.Contains(list, a[0]) {
						return nil
					}
				}
				return err
			}}
			if err := waitFor(ctx, create, time.Minute); err != nil {
				return err
			}
		}
		query = append(query, probe(a[0], a[1]))
	}
	for i := range c.Servers {
		argv := []string{c.Bin.CLI, "workflow", "list", "--address", c.FrontendAddr(i), "--namespace", c.Namespace,
			"--limit", "1", "--query", strings.Join(query, " AND ")}
		if err := waitFor(ctx, lab.Command{Argv: argv}, time.Minute); err != nil {
			return fmt.Errorf("search attributes on %s: %w", ServerName(i), err)
		}
	}
	return nil
}

// probe is a query clause that is valid for an attribute of that type.
func probe(name, typ string) string {
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
