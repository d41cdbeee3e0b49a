package ha

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/orderflow/orderflow/devtools/backup"
	"github.com/orderflow/orderflow/devtools/lab"
)

// The lab builds the ha profile and TEMPORAL_BACKEND=cluster through
// these: a program that brings either up, or loads one, imports this
// package.
func init() {
	lab.RegisterTopology("ha", func(cfg lab.Config) (*lab.Dev, error) {
		p, err := NewProfile(cfg)
		if err != nil {
			return nil, err
		}
		return p.Dev, nil
	})
	lab.RegisterTemporalBackend("cluster", ClusterBackend)
}

// ProfileHosts are the ha profile's hosts, each a network namespace
// <prefix><name> (ofn-pg1), at 10.201.1.<n> (n = 1, 2, ... in this order) of the
// profile's network.
var ProfileHosts = []string{"etcd1", "etcd2", "etcd3", "pg1", "pg2", "redis-1", "redis-2", "sentinel-1", "sentinel-2",
	"sentinel-3", "temporal-1", "temporal-2", "gateway-1", "gateway-2", "worker-1", "worker-2"}

// Port bases of the parts inside the ha profile's hosts. Every host has
// ports of its own; these give the usual numbers where the layouts allow.
// PostgreSQL avoids 5432: the members' sockets live in the shared
// /var/run/postgresql (deploy/postgres/patroni.yml), beside the machine's
// own cluster's.
const (
	profilePGBase       = 5400 // etcd 5400-5402 (peers 5410-5412), pg1 5420, pg2 5421, Patroni REST 5430, 5431
	profileRedisBase    = 6379 // redis-1 6379, redis-2 6380, Sentinels 6389-6391
	profileTemporalBase = 7233 // temporal-1 7233 (its services 7233-7239), temporal-2 7243
	profileGatewayBase  = 8080 // gateway-1 8080, gateway-2 8081; their operator listeners 8090, 8091
	profileWorkerHealth = 8085 // each worker's health listener
)

// Profile is the ha profile built from a lab configuration: the stack
// (its Kill, Start, Cut and Heal take the node names of ProfileHosts) and
// the parts, which answer who is the PostgreSQL primary (Postgres.Roles),
// the Redis master (Redis.Master), what the balancers route to
// (Gateways.Serving, Temporal.StatsAddr).
type Profile struct {
	*lab.Dev
	Postgres *PostgresHA
	Redis    *RedisHA
	Temporal *TemporalCluster
	Gateways *Gateways
}

// LoadProfile rebuilds the ha profile running under data.
func LoadProfile(data string) (*Profile, error) {
	data, _ = filepath.Abs(data)
	st, err := lab.LoadState(data)
	if err != nil {
		return nil, err
	}
	if st.Config.Topology != "ha" {
		return nil, fmt.Errorf("ha: the stack under %s is not the ha profile (topology %q)", data, st.Config.Topology)
	}
	return NewProfile(st.Config)
}

// hostsOf places each of ProfileHosts on the network.
func hostsOf(nw lab.Network) (map[string]lab.Host, error) {
	_, ipn, err := net.ParseCIDR(nw.Subnet)
	if err != nil {
		return nil, err
	}
	base := ipn.IP.To4()
	if base == nil {
		return nil, fmt.Errorf("ha: network %s is not IPv4", nw.Subnet)
	}
	prefix := nw.Prefix
	if prefix == "" {
		prefix = lab.DefaultNetwork.Prefix
	}
	out := map[string]lab.Host{}
	for i, name := range ProfileHosts {
		ip := net.IPv4(base[0], base[1], base[2]+1, base[3]+byte(i+1))
		if !ipn.Contains(ip) {
			return nil, fmt.Errorf("ha: network %s is too small for %d hosts", nw.Subnet, len(ProfileHosts))
		}
		out[name] = lab.Host{Addr: ip.String(), Netns: prefix + name}
	}
	return out, nil
}

// NewProfile builds the ha topology from cfg (lab.NewDev resolved it: the
// profile's ports, secrets, network): Patroni's pg1 and pg2 with etcd1-3,
// redis-1 and -2 with sentinel-1-3, the Temporal cluster's temporal-1 and
// -2, worker-1 and -2, gateway-1 and -2, each on a host of its own; in
// the lab's namespace the two balancers (temporal-lb on the stack's
// temporal port, gateway-lb on its api port), the Web UI, and the
// single-node stack's services (lab.Services). cfg's environment is
// pointed at them: the multi-host DSN, the Sentinels, the balancer.
func NewProfile(cfg lab.Config) (*Profile, error) {
	if cfg.Network == nil {
		return nil, errors.New("ha: the ha profile needs a network")
	}
	nw := *cfg.Network
	hosts, err := hostsOf(nw)
	if err != nil {
		return nil, err
	}
	bin, err := FindBinaries(context.Background(), cfg.Root)
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	for k, v := range cfg.Env {
		env[k] = v
	}
	front := func(name string) string { return net.JoinHostPort(nw.Gateway, strconv.Itoa(cfg.Ports[name])) }
	// The members' pgBackRest repository where make backup keeps the
	// single-node stack's: <stack>/backup/repo.
	pg := &PostgresHA{Root: cfg.Root, Data: filepath.Join(cfg.Data, "postgres-ha"), PortBase: profilePGBase, Hosts: hosts, Network: nw.Subnet,
		Repo: backup.Repo{Path: filepath.Join(cfg.Data, "backup", "repo")}}
	rd := &RedisHA{Root: cfg.Root, Data: filepath.Join(cfg.Data, "redis-ha"), PortBase: profileRedisBase, Hosts: hosts}
	gw := &Gateways{Root: cfg.Root, Data: filepath.Join(cfg.Data, "logs"), PortBase: profileGatewayBase, Binary: env["ORDERFLOW_BIN"],
		Hosts: hosts, Front: &Front{Host: nw.Gateway, Port: cfg.Ports["api"], Stats: cfg.Ports["api-lb-stats"]},
		TrustedProxies: nw.Gateway + "/32"}
	env["DATABASE_URL"] = pg.DSN("orderflow", "orderflow", "orderflow")
	env["REDIS_SENTINELS"] = strings.Join(rd.Sentinels(), ",")
	env["REDIS_MASTER_NAME"] = rd.MasterName
	env["REDIS_URL"] = "redis://" + rd.at(redisName(0), profileRedisBase) + "/0" // the first master; the Sentinels name the current one
	env["TEMPORAL_ADDRESS"] = front("temporal")
	// /codec is on the gateways' operator listeners, never behind the balancer.
	env["TEMPORAL_UI_CODEC_ENDPOINT"] = gw.OperatorURL(0) + "/codec"
	cfg.Env = env
	for _, k := range sortedKeys(env) {
		gw.Env = append(gw.Env, k+"="+env[k])
	}
	tc := &TemporalCluster{Root: cfg.Root, Data: filepath.Join(cfg.Data, "logs"), Bin: bin, PortBase: profileTemporalBase,
		DB:    Postgres{Addr: pg.Addrs(), User: "temporal", Password: "temporal", Database: "temporal", Visibility: "temporal_visibility"},
		Hosts: hosts, UI: true, CodecEndpoint: env["TEMPORAL_UI_CODEC_ENDPOINT"],
		Front: &Front{Host: nw.Gateway, Port: cfg.Ports["temporal"], UI: cfg.Ports["temporal-ui"], Stats: cfg.Ports["temporal-lb-stats"]}}
	tc.Before = tc.Schema

	pgNodes := pg.Stack().Nodes
	last := pgNodes[len(pgNodes)-1]
	synced := last.After
	last.After = func(ctx context.Context) error {
		if err := synced(ctx); err != nil {
			return err
		}
		for _, role := range []string{"orderflow", "temporal"} {
			if err := pg.CreateDatabase(ctx, role, role, role); err != nil {
				return err
			}
		}
		return nil
	}
	nodes := append(append(pgNodes, rd.Stack().Nodes...), tc.Stack().Nodes...)
	svc, err := lab.Services(cfg)
	if err != nil {
		return nil, err
	}
	nodes = append(nodes, svc...)
	for i := range 2 {
		name := fmt.Sprintf("worker-%d", i+1)
		h := hosts[name]
		w := &lab.Node{Name: name, Host: h.Addr, Netns: h.Netns, Ports: lab.Ports{"health": profileWorkerHealth},
			Proc: lab.App(cfg, name, env["ORDERFLOW_BIN"], "worker")}
		w.Proc.Env = append(w.Proc.Env, "WORKER_HEALTH_ADDR="+w.Addr("health"))
		w.Ready = lab.TCP{Addr: w.Addr("health")}
		nodes = append(nodes, w)
	}
	nodes = append(nodes, gw.Stack().Nodes...)
	return &Profile{Dev: lab.NewDevStack(cfg, nodes), Postgres: pg, Redis: rd, Temporal: tc, Gateways: gw}, nil
}

// ClusterBackend is TEMPORAL_BACKEND=cluster for the single-node stack:
// the two-server cluster on loopback (ports from cfg.Ports["temporal-cluster"],
// at lab.ClusterHost),
// its persistence and visibility in <database>_temporal and
// <database>_temporal_vis beside orderflow's on the stack's PostgreSQL,
// its balancer on the stack's temporal port and the Web UI on its
// temporal-ui port, where the dev server would be.
func ClusterBackend(cfg lab.Config) ([]*lab.Node, error) {
	e := cfg.Env
	u, err := url.Parse(e["DATABASE_URL"])
	if err != nil {
		return nil, fmt.Errorf("ha: DATABASE_URL: %w", err)
	}
	bin, err := FindBinaries(context.Background(), cfg.Root)
	if err != nil {
		return nil, err
	}
	pass, _ := u.User.Password()
	db := strings.TrimPrefix(u.Path, "/")
	tc := &TemporalCluster{Root: cfg.Root, Data: filepath.Join(cfg.Data, "run"), Bin: bin, PortBase: cfg.Ports["temporal-cluster"],
		Host: lab.ClusterHost(cfg.Ports),
		DB:   Postgres{Addr: u.Host, User: u.User.Username(), Password: pass, Database: db + "_temporal", Visibility: db + "_temporal_vis"},
		UI:   true, CodecEndpoint: e["TEMPORAL_UI_CODEC_ENDPOINT"],
		Front: &Front{Host: lab.Loopback, Port: cfg.Ports["temporal"], UI: cfg.Ports["temporal-ui"], Stats: cfg.Ports["temporal-lb-stats"]}}
	// The stack's role may not create databases: the lab creates both,
	// owned by it, as it creates orderflow's.
	tc.Before = func(ctx context.Context) error {
		for _, name := range []string{tc.DB.Database, tc.DB.Visibility} {
			v := *u
			v.Path = "/" + name
			if err := (lab.Postgres{URL: v.String(), Private: e["LAB_POSTGRES"] == "private"}).EnsureDatabase(ctx); err != nil {
				return err
			}
		}
		return tc.Schema(ctx)
	}
	return tc.Stack().Nodes, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
