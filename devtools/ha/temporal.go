package ha

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/orderflow/orderflow/devtools/lab"
)

// Postgres is where a Temporal cluster keeps its persistence and its
// visibility (lab.TemporalDB): one server, or Patroni's members as a
// multi-host list that the server's pgx driver narrows to the primary.
type Postgres = lab.TemporalDB

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
// missing and sets up or updates their schema (lab.TemporalDB.Schema).
func (c *TemporalCluster) Schema(ctx context.Context) error { return c.DB.Schema(ctx, c.Bin) }

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
	query, err := lab.EnsureSearchAttributes(ctx, c.Bin.CLI, c.Root, c.Address(), c.Namespace)
	if err != nil {
		return err
	}
	for i := range c.Servers {
		argv := []string{c.Bin.CLI, "workflow", "list", "--address", c.FrontendAddr(i), "--namespace", c.Namespace,
			"--limit", "1", "--query", query}
		if err := waitFor(ctx, lab.Command{Argv: argv}, time.Minute); err != nil {
			return fmt.Errorf("search attributes on %s: %w", ServerName(i), err)
		}
	}
	return nil
}
