// Package regions builds the lab's regions profile: orderflow in two
// regions, east and west, each region's hosts Linux network namespaces on
// the lab's network (lab.Network), as issue 14's topology
// (docs/regions.md). Per region: PostgreSQL (orderflow's database and
// Temporal's persistence on one instance: the region's primary), a
// streaming standby of the other region's PostgreSQL (promotable), Redis, a
// one-node Temporal cluster joined to the other region's by multi-cluster
// replication, a gateway and a worker. In the lab's own namespace: HAProxy,
// the global entry point that routes each customer to their home region,
// and the services every topology shares (lab.Services: payment
// simulators, carrier, mailpit, NATS).
//
// The bring-up does, in order, what an operator would: both primaries,
// their databases and Temporal schemas; each standby from a base backup of
// the other region's primary, streaming, then named in that primary's
// synchronous_standby_names; Redis; both Temporal servers, connected with
// `temporal operator cluster upsert` on both sides; the global namespaces
// orders-east (active in east) and orders-west (active in west), each
// replicated to both clusters, with the saga's search attributes; the
// product's migrations and demo catalog in each region's database; the
// workers, the gateways and the balancer.
package regions

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orderflow/orderflow/devtools/lab"
	regionsx "github.com/orderflow/orderflow/internal/regions"
)

// The lab builds the regions profile through this: a program that brings
// it up, or loads one (`orderflow-dev lab cut east`), imports this package.
func init() {
	lab.RegisterTopology("regions", func(cfg lab.Config) (*lab.Dev, error) {
		p, err := NewProfile(cfg)
		if err != nil {
			return nil, err
		}
		return p.Dev, nil
	})
}

// Names are the regions, in bring-up order. A region's name is also its
// Temporal cluster's name and the application_name of the standby that
// lives in it.
var Names = []string{"east", "west"}

// Other is the region that is not r.
func Other(r string) string {
	if r == Names[0] {
		return Names[1]
	}
	return Names[0]
}

// Roles of a region's hosts. Host names are <region>-<role> (east-pg),
// their namespaces the network's prefix and that name (ofr-east-pg).
const (
	RolePostgres = "pg"    // the region's primary: orderflow's database and Temporal's
	RoleStandby  = "sb"    // a streaming standby of the other region's primary
	RoleRedis    = "redis" // the region's Redis
	RoleTemporal = "tmprl" // the region's Temporal cluster (one server)
	RoleGateway  = "gw"    // the region's gateway (orderflow api) for its own customers
	RoleWorker   = "wk"    // the region's worker (orderflow worker) for its own namespace
	// The region's standby set for the other home region: a gateway and a
	// worker with that home's environment (its database through this
	// region's standby, its namespace on this region's cluster), idle until
	// a failover makes them serve it (docs/regions.md).
	RoleStandbyGateway = "sgw"
	RoleStandbyWorker  = "swk"
	// RoleTemporalPostgres is not a host: Temporal's PostgreSQL runs on the
	// primary's (<region>-pg), as the node <region>-tpg.
	RoleTemporalPostgres = "tpg"
)

// Roles are the hosts of a region, in bring-up order; the n-th (from 0)
// of region i is at 10.X.(i+1).(n+1) of the network.
var Roles = []string{RolePostgres, RoleStandby, RoleRedis, RoleTemporal, RoleWorker, RoleGateway, RoleStandbyWorker, RoleStandbyGateway}

// HomeOf is the home region that the host of role in region r serves:
// the other region for the standby set, else r.
func HomeOf(r, role string) string {
	if role == RoleStandbyGateway || role == RoleStandbyWorker {
		return Other(r)
	}
	return r
}

// Host is the node (and host) name of a region's role: east-pg.
func Host(region, role string) string { return region + "-" + role }

// Ports inside each host. Every host is a namespace of its own, so these
// are the usual numbers and collide with nothing on the machine; only the
// balancer and the shared services take ports of the lab's namespace.
const (
	PostgresPort = 5432
	// TemporalPostgresPort is Temporal's own PostgreSQL, on the primary's
	// host (TemporalDB).
	TemporalPostgresPort = 5433
	RedisPort            = 6379
	TemporalPort         = 7233 // the frontend; the server's other services from there (region.yaml)
	GatewayPort          = 8080
	OperatorPort         = 8090 // the gateway's /metrics and /codec
	WorkerHealthPort     = 8085
)

// Lab credentials: orderflow's role, Temporal's, and the superuser the
// failover steps use (the hosts' pg_hba trusts the lab's network).
const (
	appRole      = "orderflow"
	temporalRole = "temporal"
	superuser    = "postgres"
)

// Namespace is the global namespace whose home is region r.
func Namespace(r string) string { return "orders-" + r }

// Profile is the regions profile built from a lab configuration: the stack
// (Kill, Start, Cut and Heal take a host's name, or a region's to cut all
// of its hosts) and the addresses of every part.
type Profile struct {
	*lab.Dev
	Network lab.Network
	Bin     lab.TemporalBinaries
	hosts   map[string]lab.Host
}

// LoadProfile rebuilds the regions profile running under data.
func LoadProfile(data string) (*Profile, error) {
	cfg, err := lab.LoadTopology(data, "regions")
	if err != nil {
		return nil, err
	}
	return NewProfile(cfg)
}

// hostsOf places each region's hosts: region i's n-th role at
// +(i+1).(n+1) of the network.
func hostsOf(nw lab.Network) (map[string]lab.Host, error) {
	out := map[string]lab.Host{}
	for i, r := range Names {
		for n, role := range Roles {
			addr, err := nw.HostAddr(i+1, n+1)
			if err != nil {
				return nil, fmt.Errorf("regions: %w", err)
			}
			out[Host(r, role)] = lab.Host{Addr: addr, Netns: nw.Prefix + Host(r, role)}
		}
	}
	return out, nil
}

// Addr is the address of a region's host.
func (p *Profile) Addr(region, role string) string { return p.hosts[Host(region, role)].Addr }

func (p *Profile) at(region, role string, port int) string {
	return net.JoinHostPort(p.Addr(region, role), strconv.Itoa(port))
}

func pgURL(user, pass, hostport, db string) string {
	q := "sslmode=disable&connect_timeout=3"
	if strings.Contains(hostport, ",") {
		q += "&target_session_attrs=read-write"
	}
	u := url.URL{Scheme: "postgres", User: url.UserPassword(user, pass), Host: hostport, Path: "/" + db, RawQuery: q}
	if pass == "" {
		u.User = url.User(user)
	}
	return u.String()
}

// DatabaseURL is orderflow's database on region r's primary (the region's
// DATABASE_URL).
func (p *Profile) DatabaseURL(r string) string {
	return pgURL(appRole, appRole, p.at(r, RolePostgres, PostgresPort), "orderflow")
}

// HomeDatabaseURL is home's orderflow database as the processes in region
// here reach it: a multi-host URL of its primary and the standby of it in
// the other region, with target_session_attrs=read-write, so it reaches
// whichever of the two takes writes, the copy in here first. For the
// standby set (here is not home) that is here's standby: after a failover
// promotes it, a new connection takes it at once instead of waiting out a
// connect timeout on the lost primary, and a lost primary that comes back
// writable (its own timeline, fenced by nobody yet) is not chosen over it.
func (p *Profile) HomeDatabaseURL(here, home string) string {
	hosts := []string{p.at(home, RolePostgres, PostgresPort), p.at(Other(home), RoleStandby, PostgresPort)}
	if here != home {
		hosts[0], hosts[1] = hosts[1], hosts[0]
	}
	return pgURL(appRole, appRole, strings.Join(hosts, ","), "orderflow")
}

// PrimaryAdminURL is region r's primary as the superuser, database db:
// what DropSyncStandby and RequireSyncStandby need.
func (p *Profile) PrimaryAdminURL(r, db string) string {
	return pgURL(superuser, "", p.at(r, RolePostgres, PostgresPort), db)
}

// StandbyURL is the standby that lives in region r (a copy of the other
// region's primary) as the superuser, database db: what Promote needs.
func (p *Profile) StandbyURL(r, db string) string {
	return pgURL(superuser, "", p.at(r, RoleStandby, PostgresPort), db)
}

// TemporalAddress is region r's Temporal frontend (gRPC).
func (p *Profile) TemporalAddress(r string) string { return p.at(r, RoleTemporal, TemporalPort) }

// RedisURL is region r's Redis.
func (p *Profile) RedisURL(r string) string { return "redis://" + p.at(r, RoleRedis, RedisPort) + "/0" }

// GatewayURL is region r's gateway, not through the balancer.
func (p *Profile) GatewayURL(r string) string { return "http://" + p.at(r, RoleGateway, GatewayPort) }

// StatsURL is the balancer's status page.
func (p *Profile) StatsURL() string {
	return "http://" + net.JoinHostPort(lab.Loopback, strconv.Itoa(p.Config.Ports["api-lb-stats"])) + "/stats;csv"
}

// NewProfile builds the regions topology from cfg (lab.NewDev resolved
// it: ports, secrets, network). cfg's environment is pointed at east for
// the commands run against the stack (`lab with`, `lab env`), with each
// region's addresses as REGION_<R>_... (docs/regions.md).
func NewProfile(cfg lab.Config) (*Profile, error) {
	if cfg.Network == nil {
		return nil, errors.New("regions: the regions profile needs a network")
	}
	hosts, err := hostsOf(*cfg.Network)
	if err != nil {
		return nil, err
	}
	bin, err := lab.FindTemporalBinaries(context.Background(), cfg.Root)
	if err != nil {
		return nil, err
	}
	p := &Profile{Network: *cfg.Network, Bin: bin, hosts: hosts}
	env := map[string]string{}
	for k, v := range cfg.Env {
		env[k] = v
	}
	env["REGIONS"] = strings.Join(Names, ",")
	env["ORDERFLOW_REGIONS"] = strings.Join(Names, ",")
	for _, r := range Names {
		R := "REGION_" + strings.ToUpper(r) + "_"
		env[R+"DATABASE_URL"] = p.DatabaseURL(r)
		env[R+"PRIMARY_ADMIN_URL"] = p.PrimaryAdminURL(r, "orderflow")
		env[R+"STANDBY_URL"] = p.StandbyURL(r, "orderflow")
		env[R+"TEMPORAL_ADDRESS"] = p.TemporalAddress(r)
		env[R+"TEMPORAL_NAMESPACE"] = Namespace(r)
		env[R+"REDIS_URL"] = p.RedisURL(r)
		env[R+"GATEWAY_URL"] = p.GatewayURL(r)
	}
	first := Names[0]
	env["DATABASE_URL"] = p.DatabaseURL(first)
	env["REDIS_URL"] = p.RedisURL(first)
	env["TEMPORAL_ADDRESS"] = p.TemporalAddress(first)
	env["TEMPORAL_NAMESPACE"] = Namespace(first)
	env["ORDERFLOW_REGION"] = first
	env["TEMPORAL_UI_CODEC_ENDPOINT"] = "http://" + p.at(first, RoleGateway, OperatorPort) + "/codec"
	cfg.Env = env

	var nodes []*lab.Node
	for _, r := range Names {
		n, err := p.primary(cfg, r)
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	for _, r := range Names {
		n, err := p.temporalPostgres(cfg, r)
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	for _, r := range Names {
		n, err := p.standby(cfg, r)
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	nodes[len(nodes)-1].After = p.syncStandbys
	for _, r := range Names {
		n, err := lab.Redis{Name: Host(r, RoleRedis), URL: p.RedisURL(r), Dir: filepath.Join(cfg.Data, Host(r, RoleRedis)),
			Log: filepath.Join(cfg.Data, "logs", Host(r, RoleRedis)+".log")}.Node()
		if err != nil {
			return nil, err
		}
		n.Netns, n.Reuse = hosts[n.Name].Netns, nil
		// Its clients are on other hosts: Redis's protected mode would
		// refuse all but loopback (no password in the lab, as make run).
		n.Proc.Command = append(n.Proc.Command, "--protected-mode", "no")
		nodes = append(nodes, n)
	}
	for _, r := range Names {
		nodes = append(nodes, p.temporal(cfg, r))
	}
	nodes[len(nodes)-1].After = p.connect
	provider, err := p.postgres(cfg, ProviderPostgres, lab.Postgres{URL: p.ProviderDatabaseURL()})
	if err != nil {
		return nil, err
	}
	nodes = append(nodes, provider)
	svc, err := lab.Services(cfg)
	if err != nil {
		return nil, err
	}
	for _, n := range svc {
		if strings.HasPrefix(n.Name, "paysim-") {
			// The last DATABASE_URL of a process's environment wins.
			n.Proc.Env = append(n.Proc.Env, "DATABASE_URL="+p.ProviderDatabaseURL())
		}
	}
	nodes = append(nodes, p.jobs(svc)...)
	for _, role := range []string{RoleWorker, RoleStandbyWorker, RoleGateway, RoleStandbyGateway} {
		for _, r := range Names {
			nodes = append(nodes, p.app(cfg, r, role))
		}
	}
	nodes = append(nodes, p.balancer(cfg))
	p.Dev = lab.NewDevStack(cfg, nodes)
	p.Groups = map[string][]string{}
	for _, r := range Names {
		for _, role := range append(Roles[:len(Roles):len(Roles)], RoleTemporalPostgres) {
			p.Groups[r] = append(p.Groups[r], Host(r, role))
		}
	}
	return p, nil
}

// hba is every host's pg_hba.conf: the lab's network is trusted (a lab's
// servers, as the lab's private PostgreSQL), replication included.
func (p *Profile) hba(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	lines := "local all all trust\nhost all all 127.0.0.1/32 trust\n" +
		"host all all " + p.Network.Subnet + " trust\nhost replication all " + p.Network.Subnet + " trust\n"
	return os.WriteFile(path, []byte(lines), 0o644)
}

// pgSettings are the command-line settings of every PostgreSQL of the
// profile, primary or standby (the standby's data directory is the
// primary's copy; the command line wins over its files, except
// synchronous_standby_names, which ALTER SYSTEM must be able to change).
func pgSettings(hba string) []string {
	return []string{"-c", "hba_file=" + hba, "-c", "wal_level=replica", "-c", "max_wal_senders=10",
		"-c", "wal_keep_size=1GB", "-c", "hot_standby=on", "-c", "max_connections=200"}
}

// primary is region r's PostgreSQL of orderflow's database: initdb the
// first time, orderflow's role and database, commits local by default.
func (p *Profile) primary(cfg lab.Config, r string) (*lab.Node, error) {
	name := Host(r, RolePostgres)
	pg := lab.Postgres{URL: p.DatabaseURL(r)}
	n, err := p.postgres(cfg, name, pg)
	if err != nil {
		return nil, err
	}
	n.After = func(ctx context.Context) error {
		// Rebuilt as a standby (RebuildAsStandby), it has it all already.
		if standby, err := InRecovery(ctx, p.PrimaryAdminURL(r, "postgres")); err != nil || standby {
			return err
		}
		if err := (lab.Postgres{URL: pg.URL, Private: true}).EnsureDatabase(ctx); err != nil {
			return err
		}
		// Commits are local by default: orderflow's one record that must
		// be in both regions before a 2xx (the acceptance record) asks for
		// remote_apply in its own transaction (docs/regions.md).
		return localCommit(ctx, p.PrimaryAdminURL(r, "postgres"))
	}
	return n, nil
}

// ProviderPostgres is the payment simulators' own PostgreSQL: in the lab's
// namespace, at the bridge's address, apart from both regions. The
// simulators stand for the external payment provider, which a region's
// loss does not take down; with their ledger in a region's primary (the
// stack's DATABASE_URL, as the other profiles have it) losing that region
// would lose the provider and every charge's record with it.
const (
	ProviderPostgres     = "provider-pg"
	ProviderPostgresPort = 5434
)

// ProviderDatabaseURL is the payment simulators' ledger database
// (ProviderPostgres).
func (p *Profile) ProviderDatabaseURL() string {
	return pgURL(appRole, appRole, net.JoinHostPort(p.Network.Gateway, strconv.Itoa(ProviderPostgresPort)), "paysim")
}

// TemporalDB is region r's Temporal persistence: an instance of its own
// beside the primary, on the same host (lost with it) but not replicated
// to the other region (Temporal replicates its own data), so that the
// primary's physical standby carries orderflow's data only, and a lost
// region's primary can be rebuilt as a standby of its promoted copy while
// the region's Temporal keeps its database.
func (p *Profile) TemporalDB(r string) lab.TemporalDB {
	return lab.TemporalDB{Addr: p.at(r, RolePostgres, TemporalPostgresPort), User: temporalRole, Password: temporalRole,
		Database: "temporal", Visibility: "temporal_visibility"}
}

// temporalPostgres is region r's Temporal instance (TemporalDB): its
// role, its two databases and their schema.
func (p *Profile) temporalPostgres(cfg lab.Config, r string) (*lab.Node, error) {
	tdb := p.TemporalDB(r)
	n, err := p.postgres(cfg, Host(r, RoleTemporalPostgres), lab.Postgres{URL: tdb.URL(tdb.Database)})
	if err != nil {
		return nil, err
	}
	n.Netns = p.hosts[Host(r, RolePostgres)].Netns
	n.After = func(ctx context.Context) error {
		for _, u := range []string{tdb.URL(tdb.Database), tdb.URL(tdb.Visibility)} {
			if err := (lab.Postgres{URL: u, Private: true}).EnsureDatabase(ctx); err != nil {
				return err
			}
		}
		return tdb.Schema(ctx, p.Bin)
	}
	return n, nil
}

// postgres is a PostgreSQL node of the profile called name, a private
// cluster under the data directory (initdb the first time) listening where
// pg.URL says, with the profile's settings (pgSettings).
func (p *Profile) postgres(cfg lab.Config, name string, pg lab.Postgres) (*lab.Node, error) {
	dir := filepath.Join(cfg.Data, name)
	pg.Private, pg.Dir, pg.Log = true, dir, filepath.Join(cfg.Data, "logs", name+".log")
	n, err := pg.Node()
	if err != nil {
		return nil, err
	}
	n.Name, n.Netns, n.Reuse = name, p.hosts[name].Netns, nil
	hba := filepath.Join(dir, "pg_hba.conf")
	n.Proc.Command = append(n.Proc.Command, pgSettings(hba)...)
	initdb := n.Before
	n.Before = func(ctx context.Context) error {
		if err := p.hba(hba); err != nil {
			return err
		}
		return initdb(ctx)
	}
	return n, nil
}

// RebuildAsStandby makes region r's primary, after a failover promoted its
// copy in the other region, a standby of that copy: the failback's first
// step once r is back. It stops the node, drops its data directory (the
// old timeline, which nothing must write to again), takes a base backup of
// the promoted copy and starts the node again, streaming from it under the
// application_name r; the failback's next step is the promoted copy's
// RequireSyncStandby(r). Region r's Temporal instance (a node of its own)
// is left alone.
func (p *Profile) RebuildAsStandby(ctx context.Context, r string) error {
	name := Host(r, RolePostgres)
	if err := p.Stop(name); err != nil {
		return err
	}
	dir := filepath.Join(p.Config.Data, name)
	if err := os.RemoveAll(filepath.Join(dir, "data")); err != nil {
		return err
	}
	if err := p.baseBackup(ctx, Host(Other(r), RoleStandby), r, dir); err != nil {
		return err
	}
	return p.Start(ctx, name)
}

const qInRecovery = "SELECT pg_is_in_recovery()"

// InRecovery reports whether the server at dsn is a standby (a region's
// old primary once rebuilt: the fence of a failback).
func InRecovery(ctx context.Context, dsn string) (bool, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return false, err
	}
	defer conn.Close(context.Background())
	var b bool
	err = conn.QueryRow(ctx, qInRecovery).Scan(&b)
	return b, err
}

// qOrderflowLocal makes orderflow's commits local by default.
const qOrderflowLocal = "ALTER DATABASE orderflow SET synchronous_commit = local"

// localCommit makes orderflow's commits on the primary at dsn local by
// default.
func localCommit(ctx context.Context, dsn string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, qOrderflowLocal)
	return err
}

// standby is the standby that lives in region r: a copy of the other
// region's primary, made with pg_basebackup the first time, streaming from
// it under the application_name r.
func (p *Profile) standby(cfg lab.Config, r string) (*lab.Node, error) {
	name := Host(r, RoleStandby)
	n, err := p.postgres(cfg, name, lab.Postgres{URL: p.StandbyURL(r, "postgres")})
	if err != nil {
		return nil, err
	}
	n.After, n.ReadyTimeout = nil, time.Minute
	dir := filepath.Join(cfg.Data, name)
	n.Before = func(ctx context.Context) error {
		if err := p.hba(filepath.Join(dir, "pg_hba.conf")); err != nil {
			return err
		}
		return p.baseBackup(ctx, Host(Other(r), RolePostgres), r, dir)
	}
	return n, nil
}

// baseBackup copies the server at src (a host of the profile: the other
// region's primary, or after a failover the promoted copy) into dir/data,
// unless a copy is there, and makes it a standby streaming from src under
// the application_name r (the region it lives in).
func (p *Profile) baseBackup(ctx context.Context, src, r, dir string) error {
	cred, err := lab.PostgresUser()
	if err != nil {
		return err
	}
	data := filepath.Join(dir, "data")
	for _, d := range []string{dir, filepath.Join(dir, "sock")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
		if cred != nil {
			if err := os.Chown(d, int(cred.Uid), int(cred.Gid)); err != nil {
				return err
			}
		}
	}
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err == nil {
		return nil
	}
	bin, err := lab.PostgresBin()
	if err != nil {
		return err
	}
	srcAddr := p.hosts[src].Addr
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "pg_basebackup"), "-h", srcAddr, "-p", strconv.Itoa(PostgresPort),
		"-U", superuser, "-D", data, "-X", "stream", "-c", "fast")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Dir = "/" // the postgres account may not enter the caller's directory
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pg_basebackup of %s: %w: %s", src, err, strings.TrimSpace(string(out)))
	}
	// The copy's postgresql.auto.conf is the source's: its own standbys
	// are not this one's (a promoted copy must not wait for them), nor is
	// its own primary, if it was a standby once.
	auto := filepath.Join(data, "postgresql.auto.conf")
	b, err := os.ReadFile(auto)
	if err != nil {
		return err
	}
	var keep []string
	for _, l := range strings.Split(string(b), "\n") {
		t := strings.TrimSpace(l)
		if !strings.HasPrefix(t, "synchronous_standby_names") && !strings.HasPrefix(t, "primary_conninfo") && l != "" {
			keep = append(keep, l)
		}
	}
	keep = append(keep, fmt.Sprintf("primary_conninfo = 'host=%s port=%d user=%s application_name=%s'",
		srcAddr, PostgresPort, superuser, r))
	files := map[string]string{auto: strings.Join(keep, "\n") + "\n", filepath.Join(data, "standby.signal"): ""}
	for path, content := range files {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			return err
		}
		if cred != nil {
			if err := os.Chown(path, int(cred.Uid), int(cred.Gid)); err != nil {
				return err
			}
		}
	}
	return nil
}

// syncStandbys waits until each primary streams to its standby in the
// other region, then names that standby in its synchronous_standby_names:
// from then on a transaction that asks for it (synchronous_commit
// remote_apply or on: the acceptance record) returns only once the other
// region has it.
func (p *Profile) syncStandbys(ctx context.Context) error {
	for _, r := range Names {
		standby := Other(r) // the standby of r's primary lives in the other region, named after it
		admin := p.PrimaryAdminURL(r, "postgres")
		streaming := checkFunc{Host(standby, RoleStandby) + " streams from " + Host(r, RolePostgres), func(ctx context.Context) error {
			state, err := regionsx.SyncState(ctx, admin, standby)
			if err == nil && state == "" {
				err = errors.New("not streaming")
			}
			return err
		}}
		if err := lab.Wait(ctx, streaming, time.Minute, nil); err != nil {
			return err
		}
		if _, err := regionsx.RequireSyncStandby(ctx, admin, standby); err != nil {
			return err
		}
		sync := checkFunc{Host(standby, RoleStandby) + " is " + Host(r, RolePostgres) + "'s synchronous standby", func(ctx context.Context) error {
			state, err := regionsx.SyncState(ctx, admin, standby)
			if err == nil && state != "sync" {
				err = fmt.Errorf("sync_state %q", state)
			}
			return err
		}}
		if err := lab.Wait(ctx, sync, 30*time.Second, nil); err != nil {
			return err
		}
	}
	return nil
}

// ServedBy asks the balancer for /health/ready as a customer of home and
// returns the gateway that answered.
func (p *Profile) ServedBy(ctx context.Context, home string) (string, error) {
	return p.ServedWith(ctx, "X-Orderflow-Region", home)
}

// ServedWith is ServedBy with the request's one header given.
func (p *Profile) ServedWith(ctx context.Context, header, value string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.APIURL()+"/health/ready", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set(header, value)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return "", errors.New(res.Status)
	}
	return res.Header.Get("X-Orderflow-Served-By"), nil
}

// Check is a lab.Check made of a function, called name.
func Check(name string, f func(ctx context.Context) error) lab.Check { return checkFunc{name, f} }

// checkFunc is a lab.Check made of a function.
type checkFunc struct {
	name string
	f    func(ctx context.Context) error
}

func (c checkFunc) Check(ctx context.Context) error { return c.f(ctx) }
func (c checkFunc) String() string                  { return c.name }
