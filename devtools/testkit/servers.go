package testkit

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
)

// The shared test PostgreSQL and Redis must keep running while a test takes
// a dependency down, so such tests start private servers of their own, which
// they may stop and start at will.

// need skips the test outside CI, and fails it under CI, when something the
// test needs is not installed (make test installs it).
func need(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// FreePort returns a TCP port on 127.0.0.1 that nothing listened on a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// PrivatePostgres is a throwaway PostgreSQL cluster owned by one test.
type PrivatePostgres struct {
	// URL connects as the superuser to the postgres database.
	URL string

	t       testing.TB
	bin     string
	dataDir string
	logFile string
	port    int
	sockDir string
}

// PostgresServer initialises a PostgreSQL cluster in a temporary directory,
// starts it on a free port and stops and removes it when the test ends.
// PostgreSQL refuses to run as root, so as root it runs as the postgres user
// (through runuser) in a directory chowned to it.
func PostgresServer(t testing.TB) *PrivatePostgres {
	t.Helper()
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(dirs) == 0 {
		need(t, "PostgreSQL server binaries are not installed (/usr/lib/postgresql/*/bin): run the suite with `make test`")
	}
	sort.Strings(dirs)
	root, err := os.MkdirTemp("", "orderflow-pg-")
	if err != nil {
		t.Fatalf("temp dir: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(root) })
	p := &PrivatePostgres{t: t, bin: filepath.Dir(dirs[len(dirs)-1]), dataDir: filepath.Join(root, "data"),
		logFile: filepath.Join(root, "postgres.log"), sockDir: root, port: FreePort(t)}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			need(t, "the postgres user does not exist: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(root, uid, gid); err != nil {
			t.Fatalf("chown %s: %v", root, err)
		}
	}
	p.run("initdb", "-D", p.dataDir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions")
	p.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port)
	p.Start()
	t.Cleanup(func() {
		_ = p.command("pg_ctl", "-D", p.dataDir, "-m", "immediate", "-w", "stop").Run()
	})
	return p
}

// Start starts the cluster and waits until it accepts connections.
func (p *PrivatePostgres) Start() {
	p.t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off", p.port, p.sockDir)
	p.run("pg_ctl", "-D", p.dataDir, "-l", p.logFile, "-o", opts, "-w", "-t", "30", "start")
}

// Stop shuts the cluster down (fast mode: open connections are cut) and
// waits until it has exited.
func (p *PrivatePostgres) Stop() {
	p.t.Helper()
	p.run("pg_ctl", "-D", p.dataDir, "-m", "fast", "-w", "-t", "30", "stop")
}

func (p *PrivatePostgres) command(tool string, args ...string) *exec.Cmd {
	path := filepath.Join(p.bin, tool)
	if os.Geteuid() == 0 {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	}
	return exec.Command(path, args...)
}

func (p *PrivatePostgres) run(tool string, args ...string) {
	p.t.Helper()
	out, err := p.command(tool, args...).CombinedOutput()
	if err != nil {
		logTail, _ := os.ReadFile(p.logFile)
		p.t.Fatalf("%s %v: %v\n%s\n%s", tool, args, err, out, logTail)
	}
}
