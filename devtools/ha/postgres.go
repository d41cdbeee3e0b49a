package ha

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/orderflow/orderflow/devtools/backup"
	"github.com/orderflow/orderflow/devtools/lab"
)

// PostgresHA is PostgreSQL under Patroni (deploy/postgres/patroni.yml):
// two members, a primary and a synchronous standby, with a three-member
// etcd (deploy/postgres/etcd.yml) holding the leader key. Clients reach the
// primary through a multi-host DSN with target_session_attrs=read-write
// (DSN): pgx tries the members in order and keeps the one that takes
// writes; after a failover a new connection finds the new primary.
//
// Ports, from PortBase: etcd client +0..+2, etcd peer +10..+12, PostgreSQL
// pg1 +20 and pg2 +21, Patroni's REST API +30 and +31.
//
// Every member archives its WAL to one pgBackRest repository (Repo, the
// stanza backup.Stanza): the primary pushes each finished segment, a new
// or rebuilt member is restored from the repository before it streams
// (Patroni's create_replica_methods: pgbackrest, then basebackup), and the
// whole cluster goes back to a point in time through Patroni's bootstrap
// from the repository (Restore; docs/operations.md).
//
// Patroni and PostgreSQL run as the postgres user: Data and its parents
// must be traversable by it.
type PostgresHA struct {
	Root     string
	Data     string
	Host     string // default 127.0.0.1
	PortBase int
	// SuperuserPassword and ReplicationPassword (default "postgres" and
	// "replicator": a lab's).
	SuperuserPassword   string
	ReplicationPassword string
	// Hosts, when set, gives nodes (etcd1..3, pg1, pg2) hosts of their
	// own; Network is then the CIDR the members accept clients and
	// replication from, besides loopback (pg_hba).
	Hosts   map[string]lab.Host
	Network string
	// Repo is the pgBackRest repository every member archives its WAL to
	// and restores from (deploy/postgres/pgbackrest.conf); zero is a local
	// one under Data, which the members share because they share this
	// machine's disk (in production: a bucket, or a disk both hosts mount).
	Repo backup.Repo
	Out  io.Writer

	stack *lab.Stack
	// restoreTo, while set, gives the first member's configuration the
	// bootstrap from the repository (Restore).
	restoreTo *backup.Target
}

const pgMembers = 2

func (p *PostgresHA) defaults() {
	if p.Host == "" {
		p.Host = "127.0.0.1"
	}
	if p.SuperuserPassword == "" {
		p.SuperuserPassword = "postgres"
	}
	if p.ReplicationPassword == "" {
		p.ReplicationPassword = "replicator"
	}
}

// at is the address of port on the host of the node called name.
func (p *PostgresHA) at(name string, port int) string {
	return net.JoinHostPort(hostOf(p.Hosts, p.Host, name).Addr, strconv.Itoa(port))
}

// MemberName is member i's name: pg1, pg2.
func MemberName(i int) string { return fmt.Sprintf("pg%d", i+1) }

// MemberAddr is member i's PostgreSQL address.
func (p *PostgresHA) MemberAddr(i int) string {
	p.defaults()
	return p.at(MemberName(i), p.PortBase+20+i)
}

// RESTURL is member i's Patroni REST API.
func (p *PostgresHA) RESTURL(i int) string {
	p.defaults()
	return "http://" + p.at(MemberName(i), p.PortBase+30+i)
}

// Addrs is every member's address, the multi-host list: host1:p1,host2:p2.
func (p *PostgresHA) Addrs() string {
	var a []string
	for i := range pgMembers {
		a = append(a, p.MemberAddr(i))
	}
	return strings.Join(a, ",")
}

// DSN is a URL that reaches the primary whichever member it is.
func (p *PostgresHA) DSN(user, password, db string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(user, password), Host: p.Addrs(), Path: "/" + db,
		RawQuery: "sslmode=disable&target_session_attrs=read-write&connect_timeout=3"}
	return u.String()
}

func (p *PostgresHA) etcdHosts() string {
	var a []string
	for i := range 3 {
		a = append(a, p.at(etcdName(i), p.PortBase+i))
	}
	return strings.Join(a, ",")
}

func etcdName(i int) string { return fmt.Sprintf("etcd%d", i+1) }

// config is the Patroni configuration member i runs: a copy of deploy's,
// written by writeConfig.
func (p *PostgresHA) config(i int) string {
	return filepath.Join(p.Data, MemberName(i), "patroni.yml")
}

// deployBackupConf is the path deploy/postgres/patroni.yml gives
// pgBackRest's configuration: one file per host in production; a member's
// own file here, where the members share a disk.
const deployBackupConf = "/etc/pgbackrest/pgbackrest.conf"

// writeConfig writes member i's pgBackRest configuration (BackupServer)
// and its copy of deploy's patroni.yml: pgBackRest's configuration named
// where the member's is; with Network, each pg_hba line for 127.0.0.1/32
// followed by the same line for Network and the socket in the member's
// directory (members on hosts of their own may share a port, not
// /var/run/postgresql); while a restore runs (restoreTo), the first
// member's bootstrap from the repository.
func (p *PostgresHA) writeConfig(i int) error {
	srv, err := p.BackupServer(i)
	if err != nil {
		return err
	}
	if err := srv.Write(); err != nil {
		return err
	}
	b, err := os.ReadFile(filepath.Join(p.Root, "deploy", "postgres", "patroni.yml"))
	if err != nil {
		return err
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		t := strings.TrimSpace(l)
		if p.Network != "" && strings.HasPrefix(t, "unix_socket_directories:") {
			l = strings.Replace(l, strings.TrimSpace(strings.TrimPrefix(t, "unix_socket_directories:")), p.socketDir(i), 1)
		}
		l = strings.ReplaceAll(l, deployBackupConf, srv.ConfigFile())
		out = append(out, l)
		if p.Network != "" && strings.HasPrefix(t, "- host ") && strings.Contains(t, " 127.0.0.1/32 ") {
			out = append(out, strings.Replace(l, "127.0.0.1/32", p.Network, 1))
		}
		if l == "bootstrap:" && i == 0 && p.restoreTo != nil {
			out = append(out, bootstrapFromRepo(srv, *p.restoreTo)...)
		}
	}
	return os.WriteFile(p.config(i), []byte(strings.Join(out, "\n")), 0o644)
}

// socketDir is the directory of member i's Unix socket.
func (p *PostgresHA) socketDir(i int) string {
	if p.Network == "" {
		return "/var/run/postgresql"
	}
	return filepath.Join(p.Data, MemberName(i))
}

// Stack is the three etcd members and the two Patroni members as lab
// nodes; the last member's After waits until one member is the primary and
// the other its synchronous standby, then creates the pgBackRest stanza
// through the primary.
func (p *PostgresHA) Stack() *lab.Stack {
	if p.stack != nil {
		return p.stack
	}
	p.defaults()
	var nodes []*lab.Node
	var initial []string
	for i := range 3 {
		initial = append(initial, fmt.Sprintf("%s=http://%s", etcdName(i), p.at(etcdName(i), p.PortBase+10+i)))
	}
	for i := range 3 {
		name := etcdName(i)
		dir := filepath.Join(p.Data, name)
		conf := filepath.Join(dir, "etcd.yml")
		client, peer := "http://"+p.at(name, p.PortBase+i), "http://"+p.at(name, p.PortBase+10+i)
		extra := fmt.Sprintf("name: %s\ndata-dir: %s\nlisten-client-urls: %s\nadvertise-client-urls: %s\n"+
			"listen-peer-urls: %s\ninitial-advertise-peer-urls: %s\ninitial-cluster: %s\ninitial-cluster-state: new\n",
			name, filepath.Join(dir, "data"), client, client, peer, peer, strings.Join(initial, ","))
		nodes = append(nodes, place(&lab.Node{
			Name: name, Ports: lab.Ports{"client": p.PortBase + i, "peer": p.PortBase + 10 + i},
			Proc:   lab.Process{Command: []string{"etcd", "--config-file", conf}, Log: filepath.Join(p.Data, name+".log")},
			Before: writeWithHeader(conf, filepath.Join(p.Root, "deploy", "postgres", "etcd.yml"), extra),
		}, hostOf(p.Hosts, p.Host, name)))
	}
	// etcd members need each other for a quorum: the health wait is on the
	// last one, once all three run.
	nodes[2].Ready = lab.All{lab.HTTPGet{URL: "http://" + p.at(etcdName(0), p.PortBase) + "/health"},
		lab.HTTPGet{URL: "http://" + p.at(etcdName(2), p.PortBase+2) + "/health"}}
	pgUser, _ := user.Lookup("postgres")
	var cred *syscall.Credential
	var uid int
	if pgUser != nil {
		uid, _ = strconv.Atoi(pgUser.Uid)
		gid, _ := strconv.Atoi(pgUser.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	for i := range pgMembers {
		name := MemberName(i)
		dir := filepath.Join(p.Data, name)
		rest := p.at(name, p.PortBase+30+i)
		nodes = append(nodes, place(&lab.Node{
			Name: name, Ports: lab.Ports{"postgres": p.PortBase + 20 + i, "rest": p.PortBase + 30 + i},
			Proc: lab.Process{
				Command: []string{"patroni", p.config(i)},
				Env: []string{
					"PATRONI_NAME=" + name,
					"PATRONI_RESTAPI_LISTEN=" + rest, "PATRONI_RESTAPI_CONNECT_ADDRESS=" + rest,
					"PATRONI_POSTGRESQL_LISTEN=" + p.MemberAddr(i), "PATRONI_POSTGRESQL_CONNECT_ADDRESS=" + p.MemberAddr(i),
					"PATRONI_POSTGRESQL_DATA_DIR=" + filepath.Join(dir, "data"), "PATRONI_POSTGRESQL_BIN_DIR=" + pgBinDir(),
					"PATRONI_POSTGRESQL_PGPASS=" + filepath.Join(dir, "pgpass"),
					"PATRONI_ETCD3_HOSTS=" + p.etcdHosts(),
					"PATRONI_SUPERUSER_PASSWORD=" + p.SuperuserPassword, "PATRONI_REPLICATION_PASSWORD=" + p.ReplicationPassword,
					"HOME=" + dir,
				},
				Log: filepath.Join(p.Data, name+".log"), Credential: cred, Grace: 30 * time.Second,
			},
			Before: func(ctx context.Context) error {
				if err := ownedDir(dir, uid)(ctx); err != nil {
					return err
				}
				return p.writeConfig(i)
			},
			Ready:        lab.HTTPGet{URL: p.RESTURL(i) + "/health"},
			ReadyTimeout: 2 * time.Minute,
		}, hostOf(p.Hosts, p.Host, name)))
	}
	nodes[len(nodes)-1].After = func(ctx context.Context) error {
		err := waitFor(ctx, checkFunc{"a primary and a synchronous standby", func(ctx context.Context) error {
			_, _, err := p.Roles(ctx)
			return err
		}}, 2*time.Minute)
		if err != nil {
			return err
		}
		// The primary archived its WAL from its first segment; what it
		// could not push while the stanza was missing it pushes now.
		return p.CreateStanza(ctx)
	}
	p.stack = lab.NewStack(lab.Config{Profile: "postgres-ha", Root: p.Root, Data: p.Data}, nodes)
	p.stack.Out = p.Out
	return p.stack
}

// Roles returns the primary's and the synchronous standby's member index,
// as their Patroni REST APIs report them (/primary, /sync answer 200); an
// error while the cluster has not both.
func (p *PostgresHA) Roles(ctx context.Context) (primary, standby int, err error) {
	primary, standby = -1, -1
	for i := range pgMembers {
		if (lab.HTTPGet{URL: p.RESTURL(i) + "/primary"}).Check(ctx) == nil {
			primary = i
		} else if (lab.HTTPGet{URL: p.RESTURL(i) + "/sync"}).Check(ctx) == nil {
			standby = i
		}
	}
	if primary < 0 || standby < 0 {
		return primary, standby, fmt.Errorf("primary %d, synchronous standby %d", primary, standby)
	}
	return primary, standby, nil
}

// Primary is the member whose Patroni says it is the primary.
func (p *PostgresHA) Primary(ctx context.Context) (int, error) {
	for i := range pgMembers {
		if (lab.HTTPGet{URL: p.RESTURL(i) + "/primary"}).Check(ctx) == nil {
			return i, nil
		}
	}
	return -1, fmt.Errorf("no member is the primary")
}

// Up starts etcd and both members and waits for a primary and its
// synchronous standby.
func (p *PostgresHA) Up(ctx context.Context) error { return p.Stack().Up(ctx) }

// Down stops every member (Patroni stops its PostgreSQL) and etcd.
func (p *PostgresHA) Down() error {
	err := p.Stack().Down()
	for i := range pgMembers {
		p.killPostmaster(i) // one a killed Patroni left behind
	}
	return err
}

// KillMember is the loss of member i's host: SIGKILL of Patroni and of the
// PostgreSQL it runs (Patroni starts PostgreSQL in a session of its own, so
// that a signal to Patroni does not reach it).
func (p *PostgresHA) KillMember(i int) error {
	if err := p.Stack().Kill(MemberName(i)); err != nil {
		return err
	}
	p.killPostmaster(i)
	return nil
}

func (p *PostgresHA) killPostmaster(i int) {
	b, err := os.ReadFile(filepath.Join(p.Data, MemberName(i), "data", "postmaster.pid"))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil || !lab.Alive(pid) {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for range 100 {
		if !lab.Alive(pid) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// CreateDatabase creates a login role and a database it owns on the
// primary, unless they exist. psql quotes the names and the password (its
// :'var' and format's %I and %L): the statements stay constant text.
func (p *PostgresHA) CreateDatabase(ctx context.Context, owner, password, db string) error {
	const script = `SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', :'role', :'pass')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
`
	if err := psqlScript(ctx, p.DSN("postgres", p.SuperuserPassword, "postgres"), script, "role="+owner, "pass="+password, "db="+db); err != nil {
		return fmt.Errorf("create database %s: %w", db, err)
	}
	return nil
}

// psqlScript runs a constant psql script on dsn with the variables vars
// ("name=value"), stopping at the first error.
func psqlScript(ctx context.Context, dsn, script string, vars ...string) error {
	argv := []string{"psql", dsn, "-v", "ON_ERROR_STOP=1", "-qAt"}
	for _, v := range vars {
		argv = append(argv, "-v", v)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("psql: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// pgBinDir is the newest installed PostgreSQL's bin directory.
func pgBinDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	best := ""
	for _, d := range dirs {
		if best == "" || versionOf(d) > versionOf(best) {
			best = d
		}
	}
	return best
}

func versionOf(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// ownedDir makes dir, owned by uid (PostgreSQL refuses a data directory it
// does not own).
func ownedDir(dir string, uid int) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		_, err := run(ctx, "", nil, "chown", "-R", strconv.Itoa(uid), dir)
		return err
	}
}

// writeWithHeader writes an instance's own config file, unless it exists:
// its own lines (header) first, then the shared file from deploy/. An
// existing file is kept: after a failover Sentinel has rewritten it, and
// that is the truth to restart from.
func writeWithHeader(path, shared, header string) func(context.Context) error {
	return func(context.Context) error {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		b, err := os.ReadFile(shared)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		return os.WriteFile(path, append([]byte(header), b...), 0o644)
	}
}
