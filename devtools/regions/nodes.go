package regions

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/orderflow/orderflow/devtools/lab"
)

// Retention of closed workflows in the global namespaces.
const retention = "72h"

// temporal is region r's Temporal server: one process running every
// service, its cluster named r, on r's PostgreSQL.
func (p *Profile) temporal(cfg lab.Config, r string) *lab.Node {
	name := Host(r, RoleTemporal)
	cfgDir := filepath.Join(cfg.Root, "temporal-config", "regions")
	dyn := filepath.Join(cfg.Data, name, "dynamic-config.yaml")
	idx := 0
	for i, n := range Names {
		if n == r {
			idx = i
		}
	}
	h := p.hosts[name]
	return &lab.Node{
		Name: name, Host: h.Addr, Netns: h.Netns, Ports: lab.Ports{"frontend": TemporalPort},
		Proc: lab.Process{
			Command: []string{p.Bin.Server, "--root", "/", "--config", cfgDir, "--env", "region", "--allow-no-auth", "start"},
			Env: []string{
				"TEMPORAL_CLUSTER_NAME=" + r, "TEMPORAL_INITIAL_FAILOVER_VERSION=" + strconv.Itoa(idx+1),
				"TEMPORAL_DB_ADDR=" + p.at(r, RolePostgres, PostgresPort), "TEMPORAL_DB_USER=" + temporalRole,
				"TEMPORAL_DB_PASSWORD=" + temporalRole, "TEMPORAL_DB_NAME=temporal", "TEMPORAL_VIS_DB_NAME=temporal_visibility",
				"TEMPORAL_BIND_IP=" + h.Addr, "TEMPORAL_PORT_BASE=" + strconv.Itoa(TemporalPort), "TEMPORAL_DYNAMIC_CONFIG=" + dyn,
			},
			Log:   filepath.Join(cfg.Data, "logs", name+".log"),
			Grace: 20 * time.Second,
		},
		Before: func(context.Context) error {
			return concatFiles(dyn, filepath.Join(cfg.Root, "temporal-config", "cluster", "dynamic-config.yaml"),
				filepath.Join(cfgDir, "dynamic-config.yaml"))
		},
		Ready:        p.cli(r, "operator", "cluster", "health"),
		ReadyTimeout: 2 * time.Minute,
	}
}

// concatFiles writes the files srcs one after the other into dst.
func concatFiles(dst string, srcs ...string) error {
	var b []byte
	for _, s := range srcs {
		c, err := os.ReadFile(s)
		if err != nil {
			return err
		}
		b = append(append(b, c...), '\n')
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

// cli is a temporal CLI command against region r's frontend, as a check.
func (p *Profile) cli(r string, args ...string) lab.Command {
	return lab.Command{Argv: append(append([]string{p.Bin.CLI}, args...), "--address", p.TemporalAddress(r))}
}

// local is a CLI command that region r's frontend answers itself, never
// forwarding it to the namespace's active cluster.
func (p *Profile) local(r string, args ...string) lab.Command {
	return p.cli(r, append(args, "--grpc-meta", "xdc-redirection=false")...)
}

// connect joins the two clusters (each told the other's frontend, with the
// connection enabled), then registers each region's global namespace in
// its home cluster, active there and replicated to both, with the saga's
// search attributes, and waits until each cluster answers, by itself,
// queries on those attributes in both namespaces.
func (p *Profile) connect(ctx context.Context) error {
	for _, r := range Names {
		up := p.cli(r, "operator", "cluster", "upsert", "--frontend-address", p.TemporalAddress(Other(r)), "--enable-connection")
		if err := lab.Wait(ctx, up, time.Minute, nil); err != nil {
			return fmt.Errorf("connect %s to %s: %w", r, Other(r), err)
		}
	}
	var queries []string
	for _, r := range Names {
		ns := Namespace(r)
		// Registration names both clusters: it fails until the home
		// cluster's metadata, refreshed every 5 s (dynamic-config.yaml),
		// holds the other one.
		register := checkFunc{"register " + ns, func(ctx context.Context) error {
			if p.cli(r, "operator", "namespace", "describe", "--namespace", ns).Check(ctx) == nil {
				return nil
			}
			create := []string{"operator", "namespace", "create", "--namespace", ns, "--global", "--active-cluster", r, "--retention", retention}
			for _, c := range Names {
				create = append(create, "--cluster", c)
			}
			return p.cli(r, create...).Check(ctx)
		}}
		if err := lab.Wait(ctx, register, time.Minute, nil); err != nil {
			return err
		}
		// The namespace reaches the other cluster by namespace replication.
		if err := lab.Wait(ctx, p.local(Other(r), "operator", "namespace", "describe", "--namespace", ns), time.Minute, nil); err != nil {
			return fmt.Errorf("%s replicated to %s: %w", ns, Other(r), err)
		}
		for _, c := range Names {
			list := p.local(c, "workflow", "list", "--limit", "1", "--namespace", ns)
			if err := lab.Wait(ctx, list, time.Minute, nil); err != nil {
				return fmt.Errorf("%s in %s's namespace cache: %w", ns, c, err)
			}
		}
		q, err := lab.EnsureSearchAttributes(ctx, p.Bin.CLI, p.Config.Root, p.TemporalAddress(r), ns)
		if err != nil {
			return err
		}
		queries = append(queries, q)
	}
	for i, r := range Names {
		for _, c := range Names {
			q := p.local(c, "workflow", "list", "--limit", "1", "--namespace", Namespace(r), "--query", queries[i])
			if err := lab.Wait(ctx, q, time.Minute, nil); err != nil {
				return fmt.Errorf("search attributes of %s in %s: %w", Namespace(r), c, err)
			}
		}
	}
	return nil
}

// jobs are the shared services with the migrate and seed jobs run once per
// region, each against that region's database.
func (p *Profile) jobs(svc []*lab.Node) []*lab.Node {
	var jobs, rest []*lab.Node
	for _, n := range svc {
		if !n.Job {
			rest = append(rest, n)
			continue
		}
		for _, r := range Names {
			j := *n
			j.Name = n.Name + "-" + r
			j.Proc.Env = append(j.Proc.Env[:len(j.Proc.Env):len(j.Proc.Env)], "DATABASE_URL="+p.DatabaseURL(r))
			j.Proc.Log = filepath.Join(filepath.Dir(n.Proc.Log), j.Name+".log")
			jobs = append(jobs, &j)
		}
	}
	return append(rest, jobs...)
}

// RegionEnv is what a gateway or worker in region here serving home
// region home is given on top of the stack's environment: home's name,
// database (HomeDatabaseURL) and namespace, here's Redis and Temporal
// frontend. The standby set (here is not home) also gets what `orderflow
// failover` run there needs: here's primary and here's standby of home's
// database as the superuser, and home's gateway health to watch.
func (p *Profile) RegionEnv(here, home string) []string {
	env := []string{"ORDERFLOW_REGION=" + home, "ORDERFLOW_REGIONS=" + strings.Join(Names, ","),
		"DATABASE_URL=" + p.HomeDatabaseURL(here, home), "REDIS_URL=" + p.RedisURL(here),
		"TEMPORAL_ADDRESS=" + p.TemporalAddress(here), "TEMPORAL_NAMESPACE=" + Namespace(home), "WORKER_NAMESPACES=" + Namespace(home)}
	if here != home {
		env = append(env, "FAILOVER_PRIMARY_DATABASE_URL="+p.PrimaryAdminURL(here, "orderflow"),
			"FAILOVER_STANDBY_DATABASE_URL="+p.StandbyURL(here, "orderflow"),
			"FAILOVER_WATCH_URL="+p.GatewayURL(home)+"/health/ready")
	}
	return env
}

// app is a worker or a gateway of region r: of its own home, or of its
// standby set for the other one.
func (p *Profile) app(cfg lab.Config, r, role string) *lab.Node {
	name := Host(r, role)
	h := p.hosts[name]
	bin := cfg.Env["ORDERFLOW_BIN"]
	n := &lab.Node{Name: name, Host: h.Addr, Netns: h.Netns}
	if role == RoleWorker || role == RoleStandbyWorker {
		n.Ports = lab.Ports{"health": WorkerHealthPort}
		n.Proc = lab.App(cfg, name, bin, "worker")
		n.Proc.Env = append(n.Proc.Env, p.RegionEnv(r, HomeOf(r, role))...)
		n.Proc.Env = append(n.Proc.Env, "WORKER_HEALTH_ADDR="+n.Addr("health"))
		n.Ready = lab.TCP{Addr: n.Addr("health")}
		return n
	}
	n.Ports = lab.Ports{"api": GatewayPort, "operator": OperatorPort}
	n.Proc = lab.App(cfg, name, bin, "api")
	n.Proc.Env = append(n.Proc.Env, p.RegionEnv(r, HomeOf(r, role))...)
	n.Proc.Env = append(n.Proc.Env, "API_ADDR="+n.Addr("api"), "OPERATOR_ADDR="+n.Addr("operator"),
		"API_DRAIN_DELAY=2s", "TRUSTED_PROXIES="+p.Network.Gateway+"/32")
	n.Proc.Grace = 20 * time.Second
	n.Ready = lab.HTTPGet{URL: "http://" + n.Addr("api") + "/health/ready"}
	n.ReadyTimeout = time.Minute
	return n
}

// Backends are the balancer's servers per home region: the home region's
// gateway, then (its backup) the other region's standby-set gateway for
// that home.
func Backends(home string) []string {
	return []string{Host(home, RoleGateway), Host(Other(home), RoleStandbyGateway)}
}

// balancer is HAProxy in the lab's namespace on the stack's api port
// (deploy/haproxy/regions.cfg), ready once it has both gateways in
// rotation.
func (p *Profile) balancer(cfg lab.Config) *lab.Node {
	bind := func(port string) string { return net.JoinHostPort("0.0.0.0", strconv.Itoa(cfg.Ports[port])) }
	return &lab.Node{
		Name: "regions-lb", Host: p.Network.Gateway, Ports: lab.Ports{"http": cfg.Ports["api"], "stats": cfg.Ports["api-lb-stats"]},
		Proc: lab.Process{
			Command: []string{"haproxy", "-db", "-f", filepath.Join(cfg.Root, "deploy", "haproxy", "regions.cfg")},
			Env: []string{"REGIONS_LB_ADDR=" + bind("api"), "REGIONS_LB_STATS_ADDR=" + bind("api-lb-stats"),
				"EAST_GATEWAY=" + p.at("east", RoleGateway, GatewayPort), "WEST_GATEWAY=" + p.at("west", RoleGateway, GatewayPort),
				"EAST_BACKUP_GATEWAY=" + p.at("west", RoleStandbyGateway, GatewayPort),
				"WEST_BACKUP_GATEWAY=" + p.at("east", RoleStandbyGateway, GatewayPort)},
			Log: filepath.Join(cfg.Data, "logs", "regions-lb.log"),
		},
		Ready: checkFunc{"the balancer has every gateway up", func(ctx context.Context) error {
			up, err := p.GatewaysUp(ctx)
			if err != nil {
				return err
			}
			for _, r := range Names {
				for _, g := range Backends(r) {
					if !up[g] {
						return fmt.Errorf("%s is not up: %v", g, up)
					}
				}
			}
			return nil
		}},
	}
}

// GatewaysUp is, per gateway (east-gw, west-sgw, west-gw, east-sgw),
// whether the balancer's health check has it up, as its status page says.
func (p *Profile) GatewaysUp(ctx context.Context) (map[string]bool, error) {
	st, err := lab.HAProxyStatus(ctx, p.StatsURL())
	if err != nil {
		return nil, err
	}
	up := map[string]bool{}
	for _, home := range Names {
		for sv, status := range st[home] {
			up[sv] = strings.HasPrefix(status, "UP")
		}
	}
	return up, nil
}
