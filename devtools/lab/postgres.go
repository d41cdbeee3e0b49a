package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Postgres describes the PostgreSQL node of a stack. The server behind URL
// is used when it answers; otherwise the lab starts one on the URL's port,
// and stops only that at down:
//   - Private: a cluster of its own under Dir (initdb the first time), for
//     a stack whose faults restart PostgreSQL (chaos) without touching a
//     server others use;
//   - else the machine's Debian cluster (pg_createcluster the first time),
//     as `make run` on a fresh machine.
//
// Either way the URL's role and database are created when missing.
type Postgres struct {
	URL     string
	Private bool
	Dir     string // Private: the cluster's directory
	Log     string
}

// PostgresBin is the newest installed PostgreSQL server's bin directory.
func PostgresBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(dirs) == 0 {
		return "", fmt.Errorf("postgres: no server installed under /usr/lib/postgresql (devtools/install.sh postgres)")
	}
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) < pgVersion(dirs[j]) })
	return filepath.Dir(dirs[len(dirs)-1]), nil
}

func pgVersion(bin string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(bin))))
	return v
}

// Node returns PostgreSQL as a node.
func (p Postgres) Node() (*Node, error) {
	u, err := url.Parse(p.URL)
	if err != nil {
		return nil, fmt.Errorf("postgres: DATABASE_URL: %w", err)
	}
	port := 5432
	if u.Port() != "" {
		port, _ = strconv.Atoi(u.Port())
	}
	n := &Node{Name: "postgres", Host: u.Hostname(), Ports: Ports{"sql": port}, ReadyTimeout: 30 * time.Second}
	n.Ready = accepting{url: p.URL}
	// A server that answers is used as it is; one that listens but lacks
	// the role or database (the Debian cluster of a fresh machine) gets them.
	n.Reuse = TCP{Addr: n.Addr("sql")}
	n.After = func(ctx context.Context) error { return p.EnsureDatabase(ctx) }
	bin, err := PostgresBin()
	if err != nil {
		// Nothing to start with: only a server already running can serve.
		n.Proc = Process{Command: []string{"false"}}
		n.Before = func(context.Context) error { return err }
		return n, nil
	}
	cred, err := PostgresUser()
	if err != nil {
		return nil, err
	}
	// SIGINT is PostgreSQL's fast shutdown: open sessions are cut, the
	// server checkpoints and exits.
	n.Proc = Process{Log: p.Log, StopSignal: syscall.SIGINT, Grace: 30 * time.Second, Credential: cred}
	if p.Private {
		sock := filepath.Join(p.Dir, "sock")
		n.Proc.Command = []string{filepath.Join(bin, "postgres"), "-D", filepath.Join(p.Dir, "data"), "-p", strconv.Itoa(port),
			"-k", sock, "-c", "listen_addresses=" + n.HostAddr()}
		n.Before = func(ctx context.Context) error { return p.initPrivate(ctx, bin, cred) }
		return n, nil
	}
	ver := filepath.Base(filepath.Dir(bin))
	// Debian's cluster keeps its configuration in /etc, which names the
	// data directory and the socket directory.
	n.Proc.Command = []string{filepath.Join(bin, "postgres"), "-D", "/etc/postgresql/" + ver + "/main", "-p", strconv.Itoa(port)}
	n.Before = func(ctx context.Context) error {
		if _, err := os.Stat("/etc/postgresql/" + ver + "/main/postgresql.conf"); err != nil {
			if err := run(ctx, "pg_createcluster", ver, "main"); err != nil {
				return err
			}
		}
		if err := os.MkdirAll("/var/run/postgresql", 0o2775); err != nil {
			return err
		}
		if cred != nil {
			return os.Chown("/var/run/postgresql", int(cred.Uid), int(cred.Gid))
		}
		return nil
	}
	return n, nil
}

// PostgresUser is the postgres account when the lab runs as root
// (PostgreSQL refuses to run as root), else nil: the credential of its
// processes and of the tools that write its files (pgBackRest).
func PostgresUser() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("postgres: the postgres user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	// The account's other groups come along: Debian's cluster reads its
	// TLS key through ssl-cert, and a process started with only the
	// primary group cannot open it.
	var groups []uint32
	ids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("postgres: the postgres user's groups: %w", err)
	}
	for _, id := range ids {
		g, err := strconv.Atoi(id)
		if err != nil {
			return nil, fmt.Errorf("postgres: group id %q: %w", id, err)
		}
		groups = append(groups, uint32(g))
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: groups}, nil
}

func (p Postgres) initPrivate(ctx context.Context, bin string, cred *syscall.Credential) error {
	data := filepath.Join(p.Dir, "data")
	if err := os.MkdirAll(filepath.Join(p.Dir, "sock"), 0o700); err != nil {
		return err
	}
	if cred != nil {
		for _, d := range []string{p.Dir, filepath.Join(p.Dir, "sock")} {
			if err := os.Chown(d, int(cred.Uid), int(cred.Gid)); err != nil {
				return err
			}
		}
		if p.Log != "" {
			_ = os.MkdirAll(filepath.Dir(p.Log), 0o755)
			f, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				return err
			}
			f.Close()
		}
	}
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err == nil {
		return nil
	}
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust",
		"-E", "UTF8", "--no-instructions")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb %s: %w: %s", data, err, bytes.TrimSpace(out))
	}
	return nil
}

// Statements run as the superuser through psql, whose variables quote the
// names (:"db") and values (:'pass'): the text stays constant.
const (
	createRoleAndDatabase = `SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'role', :'pass')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
`
	recreateDatabase = `SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE)', :'db') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role') \gexec
`
)

// EnsureDatabase creates the URL's role and database when the URL does not
// connect yet.
func (p Postgres) EnsureDatabase(ctx context.Context) error {
	if Ping(ctx, p.URL) == nil {
		return nil
	}
	if err := p.superuser(ctx, createRoleAndDatabase); err != nil {
		return err
	}
	db := strings.TrimPrefix(mustURL(p.URL).Path, "/")
	return Wait(ctx, checkFunc{"database " + db, func(ctx context.Context) error { return Ping(ctx, p.URL) }}, 15*time.Second, nil)
}

// RecreateDatabase drops the URL's database (closing its sessions) and
// creates it again, empty: a fresh stack starts clean.
func (p Postgres) RecreateDatabase(ctx context.Context) error {
	if err := p.EnsureDatabase(ctx); err != nil {
		return err
	}
	return p.superuser(ctx, recreateDatabase)
}

func mustURL(raw string) *url.URL {
	u, err := url.Parse(raw)
	if err != nil {
		return &url.URL{}
	}
	return u
}

// Ping connects to url and runs SELECT 1.
func Ping(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	return c.Ping(ctx)
}

// superuser runs a psql script as the superuser, with the URL's role,
// password and database as the variables role, pass and db: over TCP on a
// private cluster (trust), else on the local socket as the postgres account.
func (p Postgres) superuser(ctx context.Context, script string) error {
	u, err := url.Parse(p.URL)
	if err != nil {
		return err
	}
	pass, _ := u.User.Password()
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	argv := []string{"psql", "-p", port, "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qAt",
		"-v", "role=" + u.User.Username(), "-v", "pass=" + pass, "-v", "db=" + strings.TrimPrefix(u.Path, "/")}
	switch {
	case p.Private:
		argv = append(argv, "-h", u.Hostname(), "-U", "postgres")
	case os.Geteuid() == 0:
		argv = append([]string{"runuser", "-u", "postgres", "--"}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = "/"
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("postgres: psql as the superuser: %w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// accepting passes once the server accepts sessions: a connection that
// succeeds, or one refused for a reason other than the server starting up
// or shutting down (the role or database not created yet).
type accepting struct{ url string }

func (a accepting) Check(ctx context.Context) error {
	err := Ping(ctx, a.url)
	var pe *pgconn.PgError
	if err == nil || (errors.As(err, &pe) && !strings.HasPrefix(pe.Code, "57")) {
		return nil
	}
	return err
}

func (a accepting) String() string {
	u, err := url.Parse(a.url)
	if err != nil {
		return "postgres"
	}
	return "postgres at " + u.Host
}

// checkFunc is a Check made of a function.
type checkFunc struct {
	name string
	fn   func(ctx context.Context) error
}

func (c checkFunc) Check(ctx context.Context) error { return c.fn(ctx) }
func (c checkFunc) String() string                  { return c.name }

func run(ctx context.Context, argv ...string) error {
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, bytes.TrimSpace(out))
	}
	return nil
}
