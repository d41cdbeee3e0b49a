package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func nodeNames(s *Stack) []string {
	var out []string
	for _, n := range s.Nodes {
		out = append(out, n.Name)
	}
	return out
}

func checkoutRoot(t *testing.T) string {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// The temporal CLI is only named by the topologies built here, never run.
func fakeCLI(t *testing.T) { t.Setenv("TEMPORAL_CLI", "/bin/true") }

func TestDevTopologyKeepsMakeRunsPortsAndOrder(t *testing.T) {
	fakeCLI(t)
	root, _ := filepath.Abs("../..")
	d, err := NewDev(Options{Root: root, Data: t.TempDir(), Getenv: envOf(nil)})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"postgres", "redis", "temporal", "migrate", "seed", "paysim-a", "paysim-b", "carrier", "mailpit", "nats", "worker", "api"}
	if got := nodeNames(d.Stack); !slices.Equal(got, want) {
		t.Fatalf("nodes %v, want %v", got, want)
	}
	for name, port := range DefaultPorts {
		if d.Config.Ports[name] != port {
			t.Errorf("port %s = %d, want %d", name, d.Config.Ports[name], port)
		}
	}
	e := d.Config.Env
	for k, v := range map[string]string{
		"API_ADDR":                   ":8080",
		"TEMPORAL_ADDRESS":           "127.0.0.1:7233",
		"REDIS_URL":                  "redis://127.0.0.1:6379/0",
		"DATABASE_URL":               defaultDatabaseURL,
		"PAYMENT_PROVIDERS":          "paysim-a=paysim:http://127.0.0.1:8090,paysim-b=paysim:http://127.0.0.1:8093",
		"TEMPORAL_UI_CODEC_ENDPOINT": "http://127.0.0.1:8080/codec",
		"API_EMBED_WORKER":           "true",
		"FULFILLMENT_ENABLED":        "true",
		"CARRIER_URL":                "http://127.0.0.1:8096",
	} {
		if e[k] != v {
			t.Errorf("%s = %q, want %q", k, e[k], v)
		}
	}
	if e["AUTH_HS256_SECRET"] == "" || e["PII_KEYS_FILE"] == "" {
		t.Fatal("no development secret or PII key made")
	}
	if fi, err := os.Stat(filepath.Join(d.Config.Data, "auth-hs256.secret")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret file: %v %v", fi, err)
	}
	// The carrier and the gateway share a webhook secret made once per
	// data dir: a second stack on the same dir keeps it.
	secret := e["CARRIER_WEBHOOK_SECRET"]
	if !strings.HasPrefix(secret, "whsec-") {
		t.Fatalf("CARRIER_WEBHOOK_SECRET = %q", secret)
	}
	again, err := NewDev(Options{Root: root, Data: d.Config.Data, Getenv: envOf(nil)})
	if err != nil || again.Config.Env["CARRIER_WEBHOOK_SECRET"] != secret {
		t.Fatalf("the carrier secret changed on the same data dir: %v", err)
	}
	cr, _ := d.Node("carrier")
	if args := strings.Join(cr.Proc.Command, " "); !strings.HasSuffix(args, "carrier --addr 127.0.0.1:8096 --gateway http://127.0.0.1:8080") {
		t.Errorf("carrier's command: %s", args)
	}
	if r, ok := cr.Ready.(HTTPGet); !ok || r.URL != "http://127.0.0.1:8096/health" {
		t.Errorf("carrier ready = %v", cr.Ready)
	}
	tp, _ := d.Node("temporal")
	args := strings.Join(tp.Proc.Command, " ")
	for _, f := range []string{"--port 7233", "--ui-port 8233", "--db-filename", "--dynamic-config-value frontend.enableUpdateWorkflowExecution=true",
		"--search-attribute OrderStatus=Keyword", "--sqlite-pragma journal_mode=wal", "--ui-codec-endpoint http://127.0.0.1:8080/codec"} {
		if !strings.Contains(args, f) {
			t.Errorf("temporal's command lacks %q: %s", f, args)
		}
	}
	if !slices.Contains(tp.Proc.Env, "GOGC=400") {
		t.Errorf("temporal's env %v lacks GOGC=400", tp.Proc.Env)
	}
}

func TestDevTopologyTakesTheEnvironmentsOverrides(t *testing.T) {
	fakeCLI(t)
	d, err := NewDev(Options{Root: checkoutRoot(t), Data: t.TempDir(), Getenv: envOf(map[string]string{
		"API_ADDR": "127.0.0.1:21500", "DATABASE_URL": "postgres://u:p@127.0.0.1:5433/x", "REDIS_URL": "redis://127.0.0.1:21501/2",
		"TEMPORAL_PORT": "21502", "TEMPORAL_UI_PORT": "21503", "PAYSIM_A_PORT": "21504", "PAYSIM_B_PORT": "21505",
		"WORKER_HEALTH_ADDR": "127.0.0.1:21506", "AUTH_HS256_SECRET": "given", "LOG_LEVEL": "debug", "CARRIER_PORT": "21507",
	})})
	if err != nil {
		t.Fatal(err)
	}
	want := Ports{"api": 21500, "postgres": 5433, "redis": 21501, "temporal": 21502, "temporal-ui": 21503,
		"paysim-a": 21504, "paysim-b": 21505, "worker": 21506, "carrier": 21507}
	for k, v := range want {
		if d.Config.Ports[k] != v {
			t.Errorf("port %s = %d, want %d", k, d.Config.Ports[k], v)
		}
	}
	if d.Config.Env["API_ADDR"] != "127.0.0.1:21500" || d.Config.Env["REDIS_URL"] != "redis://127.0.0.1:21501/2" ||
		d.Config.Env["TEMPORAL_ADDRESS"] != "127.0.0.1:21502" {
		t.Errorf("env %v", d.Config.Env)
	}
	if _, ok := d.Config.Env["AUTH_HS256_SECRET"]; ok {
		t.Error("a secret was made although AUTH_HS256_SECRET is set")
	}
	api, _ := d.Node("api")
	if r, ok := api.Ready.(HTTPGet); !ok || r.URL != "http://127.0.0.1:21500/health/ready" {
		t.Errorf("api ready = %v", api.Ready)
	}
}

func TestOtherProfilesTakeTheirOwnPortsAndDatabase(t *testing.T) {
	fakeCLI(t)
	// The environment's make-run overrides do not reach them.
	env := envOf(map[string]string{"DATABASE_URL": "postgres://u:p@127.0.0.1:5432/mine", "API_ADDR": ":8080",
		"LAB_DATABASE_URL": "postgres://o:o@127.0.0.1:5432/orderflow_l?sslmode=disable"})
	d, err := NewDev(Options{Profile: "smoke", Root: checkoutRoot(t), Data: t.TempDir(), Getenv: env})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(d.Config.Env["DATABASE_URL"], "/orderflow_l_smoke?") {
		t.Errorf("smoke's database %s", d.Config.Env["DATABASE_URL"])
	}
	if d.Config.Ports["api"] == 8080 || d.Config.Env["RATE_LIMIT_PER_IP"] == "" {
		t.Errorf("smoke: ports %v, env %v", d.Config.Ports, d.Config.Env)
	}
	c, err := NewDev(Options{Profile: "chaos", Root: checkoutRoot(t), Data: t.TempDir(), Ports: "base:21600", Getenv: env})
	if err != nil {
		t.Fatal(err)
	}
	// Chaos is the third slot: under one base, the smoke test and the
	// chaos run never share a port.
	for i, name := range PortNames {
		if want := 21600 + 2*slotPorts + i; c.Config.Ports[name] != want {
			t.Errorf("chaos port %s = %d, want %d", name, c.Config.Ports[name], want)
		}
	}
	sm, err := NewDev(Options{Profile: "smoke", Root: checkoutRoot(t), Data: t.TempDir(), Ports: "base:21600", Getenv: env})
	if err != nil || sm.Config.Ports["api"] != 21600+slotPorts {
		t.Errorf("smoke under base:21600: %v, %v", sm.Config.Ports, err)
	}
	if c.Config.Env["LAB_POSTGRES"] != "private" || !strings.Contains(c.Config.Env["DATABASE_URL"], fmt.Sprintf("127.0.0.1:%d/orderflow_l_chaos", c.Config.Ports["postgres"])) ||
		c.Config.Env["API_EMBED_WORKER"] != "false" {
		t.Errorf("chaos env %v", c.Config.Env)
	}
	if _, err := NewDev(Options{Profile: "nope", Root: t.TempDir()}); err == nil {
		t.Error("an unknown profile was accepted")
	}
}

func TestLoadDevRebuildsTheStackFromItsState(t *testing.T) {
	fakeCLI(t)
	d, err := NewDev(Options{Profile: "bench", Root: checkoutRoot(t), Data: t.TempDir(), Getenv: envOf(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.save(); err != nil {
		t.Fatal(err)
	}
	got, err := LoadDev(d.Config.Data)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(nodeNames(got.Stack), nodeNames(d.Stack)) || got.APIURL() != d.APIURL() {
		t.Fatalf("rebuilt %v %s, want %v %s", nodeNames(got.Stack), got.APIURL(), nodeNames(d.Stack), d.APIURL())
	}
	w1, _ := d.Node("worker")
	w2, _ := got.Node("worker")
	if !slices.Equal(w1.Proc.Env, w2.Proc.Env) || !slices.Equal(w1.Proc.Command, w2.Proc.Command) {
		t.Fatalf("worker rebuilt as %v %v, want %v %v", w2.Proc.Command, w2.Proc.Env, w1.Proc.Command, w1.Proc.Env)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func needBin(t *testing.T, name string) {
	t.Helper()
	if _, err := os.Stat(name); err == nil {
		return
	}
	if _, err := execLookPath(name); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed: run the suite with make test", name)
		}
		t.Skipf("%s is not installed", name)
	}
}

// A topology of small real servers: Redis started by the lab, a second
// Redis node on the same port reused and left alone, and a web server that
// needs Redis. Killing and healing Redis, then down, leaves nothing running.
func TestRealTopologyUpKillHealDown(t *testing.T) {
	needBin(t, "redis-server")
	dir := t.TempDir()
	port := freePort(t)
	rd, err := Redis{URL: "redis://127.0.0.1:" + itoa(port) + "/0", Dir: filepath.Join(dir, "redis"), Log: filepath.Join(dir, "redis.log")}.Node()
	if err != nil {
		t.Fatal(err)
	}
	webPort := freePort(t)
	web := &Node{Name: "web", Ports: Ports{"http": webPort},
		Proc:  Process{Command: []string{"python3", "-m", "http.server", itoa(webPort), "--bind", "127.0.0.1"}, Dir: dir, Log: filepath.Join(dir, "web.log")},
		Ready: HTTPGet{URL: "http://127.0.0.1:" + itoa(webPort) + "/"}}
	var afterRuns int
	web.After = func(context.Context) error { afterRuns++; return nil }
	s := NewStack(Config{Profile: "t", Root: dir, Data: dir}, []*Node{rd, web})
	s.Out = new(discard)
	t.Cleanup(func() { _ = s.Down() })
	if err := s.Up(context.Background()); err != nil {
		t.Fatal(err)
	}
	redisPid, webPid := s.State("redis").Pid, s.State("web").Pid
	if !Alive(redisPid) || !Alive(webPid) || afterRuns != 1 {
		t.Fatalf("up: redis %d alive %v, web %d alive %v, after ran %d times", redisPid, Alive(redisPid), webPid, Alive(webPid), afterRuns)
	}
	// Another stack on the same Redis uses it and never stops it.
	rd2, _ := Redis{Name: "redis", URL: "redis://127.0.0.1:" + itoa(port) + "/0", Dir: filepath.Join(dir, "r2")}.Node()
	other := NewStack(Config{Profile: "t", Root: dir, Data: filepath.Join(dir, "other")}, []*Node{rd2})
	other.Out = new(discard)
	if err := other.Up(context.Background()); err != nil || other.State("redis").Started {
		t.Fatalf("reuse: %v, started %v", err, other.State("redis").Started)
	}
	if err := other.Down(); err != nil || !Alive(redisPid) {
		t.Fatalf("the reusing stack's down: %v; redis alive %v", err, Alive(redisPid))
	}
	if err := (RestartNode{Stack: other, Name: "redis"}).Inject(context.Background()); err == nil {
		t.Fatal("a stack restarted a server it did not start")
	}
	f := KillNode{Stack: s, Name: "redis"}
	if err := f.Inject(context.Background()); err != nil || Alive(redisPid) {
		t.Fatalf("kill: %v, alive %v", err, Alive(redisPid))
	}
	if err := (RedisPing{Addr: rd.Addr("redis")}).Check(context.Background()); err == nil {
		t.Fatal("redis answers after its kill")
	}
	if err := f.Heal(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := (RedisPing{Addr: rd.Addr("redis")}).Check(context.Background()); err != nil {
		t.Fatalf("redis after heal: %v", err)
	}
	newPid := s.State("redis").Pid
	if err := s.Down(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range []int{newPid, webPid} {
		if Alive(pid) {
			t.Fatalf("pid %d outlived down", pid)
		}
	}
}

// A node whose process exits is reported: Up fails at once naming it and
// its log, and status says exited rather than running.
func TestANodeThatExitsIsReported(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	n := &Node{Name: "crasher", Ports: Ports{"http": port},
		Proc:  Process{Command: []string{"sh", "-c", "echo boom-from-crasher; exit 3"}, Log: filepath.Join(dir, "crasher.log")},
		Ready: TCP{Addr: "127.0.0.1:" + itoa(port)}, ReadyTimeout: time.Minute}
	s := NewStack(Config{Profile: "t", Root: dir, Data: dir}, []*Node{n})
	s.Out = new(discard)
	t.Cleanup(func() { _ = s.Down() })
	err := s.Up(context.Background())
	if !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "crasher") || !strings.Contains(err.Error(), "boom-from-crasher") {
		t.Fatalf("Up = %v, want ErrExited naming the node and its log's tail", err)
	}

	sl := &Node{Name: "sleeper", Proc: Process{Command: []string{"sleep", "300"}}}
	s2 := NewStack(Config{Profile: "t", Root: dir, Data: filepath.Join(dir, "s2")}, []*Node{sl})
	s2.Out = new(discard)
	t.Cleanup(func() { _ = s2.Down() })
	if err := s2.Up(context.Background()); err != nil {
		t.Fatal(err)
	}
	pid := s2.State("sleeper").Pid
	_ = syscall.Kill(pid, syscall.SIGKILL)
	waitGone(pid, 5*time.Second)
	st := s2.Status()
	if len(st) != 1 || !st[0].Started || st[0].Running {
		t.Fatalf("status after the process died: %+v, want started and not running", st)
	}
}

func TestPortsNeverCollide(t *testing.T) {
	got, err := Allocate(PortNames, DefaultPorts, PortMode{Kind: "free"}, Ports{"postgres": 5432})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, name := range PortNames {
		if seen[got[name]] || got[name] == 0 {
			t.Fatalf("ports %v: %s repeats or is zero", got, name)
		}
		seen[got[name]] = true
	}
	if got["postgres"] != 5432 {
		t.Fatalf("the override was not kept: %v", got)
	}
	if _, err := Allocate(PortNames, DefaultPorts, PortMode{Kind: "base", Base: 21000}, Ports{"redis": 21000}); err == nil {
		t.Fatal("an override on a base port another name gets was allowed")
	}
}

var execLookPath = exec.LookPath

// Two processes on one stack: what one restarts, the other's down stops
// (the chaos run restarts nodes; `lab with` brings the stack down).
func TestDownStopsWhatAnotherProcessRestarted(t *testing.T) {
	dir := t.TempDir()
	n := &Node{Name: "sleeper", Proc: Process{Command: []string{"sleep", "300"}}}
	a := NewStack(Config{Profile: "t", Root: dir, Data: dir}, []*Node{n})
	a.Out = new(discard)
	if err := a.Up(context.Background()); err != nil {
		t.Fatal(err)
	}
	b := NewStack(Config{Profile: "t", Root: dir, Data: dir}, []*Node{n})
	b.Out = new(discard)
	old := b.State("sleeper").Pid
	if err := b.Restart(context.Background(), "sleeper"); err != nil {
		t.Fatal(err)
	}
	restarted := b.State("sleeper").Pid
	if restarted == old || !Alive(restarted) {
		t.Fatalf("restart: pid %d (was %d)", restarted, old)
	}
	if err := a.Down(); err != nil {
		t.Fatal(err)
	}
	if Alive(restarted) {
		_ = StopGroup(restarted, syscall.SIGKILL, time.Second)
		t.Fatal("down left running the process another stack restarted")
	}
}

// A PostgreSQL cluster of the stack's own: initialised, started, given the
// URL's role and database, emptied, restarted (the chaos run's fault) and
// stopped at down.
func TestPrivatePostgresStartsRestartsAndStops(t *testing.T) {
	if _, err := PostgresBin(); err != nil {
		needBin(t, "/usr/lib/postgresql/none")
	}
	needBin(t, "psql")
	dir := t.TempDir()
	if os.Geteuid() == 0 {
		// The cluster runs as postgres, which must reach its directory.
		_ = os.Chmod(filepath.Dir(dir), 0o755)
		_ = os.Chmod(dir, 0o755)
	}
	url := "postgres://lab_u:lab'p@127.0.0.1:" + itoa(freePort(t)) + "/lab_db?sslmode=disable"
	pg, err := Postgres{URL: url, Private: true, Dir: filepath.Join(dir, "pg"), Log: filepath.Join(dir, "pg.log")}.Node()
	if err != nil {
		t.Fatal(err)
	}
	s := NewStack(Config{Profile: "t", Root: dir, Data: dir}, []*Node{pg})
	s.Out = new(discard)
	t.Cleanup(func() { _ = s.Down() })
	ctx := context.Background()
	if err := s.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if err := Ping(ctx, url); err != nil {
		t.Fatalf("the URL's role and database: %v", err)
	}
	if err := (Postgres{URL: url, Private: true}).RecreateDatabase(ctx); err != nil {
		t.Fatal(err)
	}
	old := s.State("postgres").Pid
	if err := (RestartNode{Stack: s, Name: "postgres"}).Inject(ctx); err != nil {
		t.Fatal(err)
	}
	if err := Ping(ctx, url); err != nil || s.State("postgres").Pid == old {
		t.Fatalf("after restart: %v, pid %d (was %d)", err, s.State("postgres").Pid, old)
	}
	pid := s.State("postgres").Pid
	if err := s.Down(); err != nil || Alive(pid) {
		t.Fatalf("down: %v, alive %v", err, Alive(pid))
	}
}

func TestTemporalBackendAndTopologyAreCheckedAndBuiltByWhatRegisteredThem(t *testing.T) {
	fakeCLI(t)
	env := envOf(map[string]string{"TEMPORAL_BACKEND": "sqlite"})
	if _, err := NewDev(Options{Profile: "smoke", Root: checkoutRoot(t), Data: t.TempDir(), Getenv: env}); err == nil ||
		!strings.Contains(err.Error(), "TEMPORAL_BACKEND") {
		t.Errorf("an unknown backend: %v", err)
	}
	if _, err := NewDev(Options{Profile: "ha", Root: checkoutRoot(t), Data: t.TempDir(), TemporalBackend: "dev"}); err == nil {
		t.Error("the ha profile took the dev server")
	}
	// devtools/ha is not linked into this test: both fail, naming it.
	for _, o := range []Options{{Profile: "ha"}, {Profile: "smoke", TemporalBackend: "cluster"}} {
		o.Root, o.Data, o.Getenv = checkoutRoot(t), t.TempDir(), envOf(nil)
		if _, err := NewDev(o); err == nil || !strings.Contains(err.Error(), "devtools/ha") {
			t.Errorf("%+v without devtools/ha: %v", o, err)
		}
	}
	var got Config
	RegisterTopology("test-topology", func(cfg Config) (*Dev, error) { got = cfg; return NewDevStack(cfg, nil), nil })
	t.Cleanup(func() { buildersMu.Lock(); delete(topologies, "test-topology"); buildersMu.Unlock() })
	Profiles["test-topology"] = Profile{Name: "test-topology", Ports: "free", Topology: "test-topology", TemporalBackend: "cluster"}
	t.Cleanup(func() { delete(Profiles, "test-topology") })
	nw := Network{Bridge: "ofn-brx", Subnet: "10.201.240.0/24", Gateway: "10.201.240.1", Prefix: "ofn-x"}
	if _, err := NewDev(Options{Profile: "test-topology", Root: checkoutRoot(t), Data: t.TempDir(), Getenv: envOf(nil), Network: &nw}); err != nil {
		t.Fatal(err)
	}
	if got.Network == nil || *got.Network != nw || got.TemporalBackend != "cluster" {
		t.Errorf("the topology was built from network %v, backend %q", got.Network, got.TemporalBackend)
	}
	// Its processes reach the lab's own services at the bridge's address.
	if !strings.Contains(got.Env["PAYMENT_PROVIDERS"], "http://10.201.240.1:") || !strings.HasPrefix(got.Env["TEMPORAL_ADDRESS"], "10.201.240.1:") {
		t.Errorf("env of a topology with hosts: %v", got.Env)
	}
	for _, name := range []string{"temporal-lb-stats", "api-lb-stats"} {
		if got.Ports[name] == 0 {
			t.Errorf("no %s port", name)
		}
	}
}

// The chaos stack's payment simulators send their webhooks to its gateway,
// signed with the secret the gateway verifies them with; other stacks'
// send none.
func TestChaosPaysimsSignWebhooksWithTheGatewaysSecrets(t *testing.T) {
	fakeCLI(t)
	env := envOf(map[string]string{"LAB_DATABASE_URL": "postgres://o:o@127.0.0.1:5432/orderflow_l?sslmode=disable"})
	for _, profile := range []string{"chaos", "smoke"} {
		d, err := NewDev(Options{Profile: profile, Root: checkoutRoot(t), Data: t.TempDir(), Ports: "base:21600", Getenv: env})
		if err != nil {
			t.Fatal(err)
		}
		nodes, err := Services(d.Config)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes {
			if !strings.HasPrefix(n.Name, "paysim-") {
				continue
			}
			got := map[string]string{}
			for _, kv := range n.Proc.Env {
				if k, v, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "PAYSIM_WEBHOOK_") {
					got[k] = v
				}
			}
			want := map[string]string{}
			if profile == "chaos" {
				secret := providerWebhookSecret(d.Config.Env["PAYMENT_WEBHOOK_SECRETS"], n.Name)
				if len(secret) < 16 {
					t.Fatalf("chaos: %s's secret %q in PAYMENT_WEBHOOK_SECRETS %q", n.Name, secret, d.Config.Env["PAYMENT_WEBHOOK_SECRETS"])
				}
				want["PAYSIM_WEBHOOK_SECRET"] = secret
				want["PAYSIM_WEBHOOK_URL"] = fmt.Sprintf("http://127.0.0.1:%d/v1/webhooks/payments/%s", d.Config.Ports["api"], n.Name)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s %s: webhook settings %v, want %v", profile, n.Name, got, want)
			}
		}
	}
}
