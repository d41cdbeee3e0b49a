package testkit

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/orderflow/orderflow/activities/payment/paysim"
	"github.com/orderflow/orderflow/devtools/lab"
)

// EnvBinary and EnvDevBinary name the orderflow and orderflow-dev binaries
// scripts/test.sh built once for the suite; without them, Binary and
// DevBinary build their own.
const (
	EnvBinary    = "ORDERFLOW_TEST_BIN"
	EnvDevBinary = "ORDERFLOW_TEST_DEV_BIN"
)

// builds holds one build per package path for the test binary's lifetime.
var builds sync.Map // package path -> *build

type build struct {
	once sync.Once
	path string
	err  error
}

// Binary returns the path of an orderflow binary built from this checkout.
func Binary(t testing.TB) string { return binary(t, EnvBinary, "./cmd/orderflow") }

// DevBinary returns the path of an orderflow-dev binary (the payment
// simulator, seed, bench and chaos) built from this checkout.
func DevBinary(t testing.TB) string { return binary(t, EnvDevBinary, "./devtools/cmd/orderflow-dev") }

func binary(t testing.TB, env, pkg string) string {
	t.Helper()
	path, err := cached(env, pkg, func(root string) (string, error) {
		out := filepath.Join(os.TempDir(), fmt.Sprintf("%s-test-%d", filepath.Base(pkg), os.Getpid()))
		cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
		cmd.Dir = root
		if msg, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build %s: %w: %s", pkg, err, msg)
		}
		return out, nil
	})
	if err != nil {
		t.Fatalf("build %s: %v", pkg, err)
	}
	return path
}

// cached returns the path produce makes from the module root, made once per
// test binary and key; envVar, when set, names the path instead.
func cached(envVar, key string, produce func(root string) (string, error)) (string, error) {
	if path := os.Getenv(envVar); path != "" {
		return path, nil
	}
	v, _ := builds.LoadOrStore(key, &build{})
	b := v.(*build)
	b.once.Do(func() {
		root, err := moduleRoot()
		if err == nil {
			b.path, err = produce(root)
		}
		b.err = err
	})
	return b.path, b.err
}

// PaysimProc is an `orderflow-dev paysim` process owned by one test: a provider
// that can really be killed and started again on the same port.
type PaysimProc struct {
	Name string
	URL  string

	t    testing.TB
	proc lab.Process
	mu   sync.Mutex
	run  *lab.Running
}

// StartPaysim starts `orderflow-dev paysim` instance name on a free loopback
// port, with its ledger in the test database and the given PAYSIM_* fault
// settings ("PAYSIM_LATENCY=200ms"), and kills it when the test ends.
func StartPaysim(t testing.TB, name string, faults ...string) *PaysimProc {
	t.Helper()
	dbURL := Require(t, EnvDatabase)
	DB(t) // the ledger's table comes with the migrations
	addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	p := &PaysimProc{Name: name, URL: "http://" + addr, t: t, proc: lab.Process{
		Command:       []string{DevBinary(t), "paysim", "--name", name, "--addr", addr},
		Env:           append([]string{"DATABASE_URL=" + dbURL, "LOG_LEVEL=warn"}, faults...),
		Output:        os.Stderr,
		DieWithParent: true,
	}}
	p.Start()
	t.Cleanup(p.Kill)
	return p
}

// Client returns a provider client of the process, each call bounded by timeout.
func (p *PaysimProc) Client(timeout time.Duration) *paysim.Client {
	return paysim.NewClient(p.Name, p.URL, timeout)
}

// Start starts the process and waits until its /health answers.
func (p *PaysimProc) Start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	r := StartProcess(p.t, p.proc, p.URL+"/health", 15*time.Second, "paysim "+p.Name)
	p.run = r
}

// StartProcess starts proc (in a process group of its own, killed with the
// test binary when DieWithParent is set) and waits until health answers 200;
// it fails the test at once when the process exits first, and otherwise
// after timeout, naming what. The caller stops it (Stop, or Kill on a
// PaysimProc).
func StartProcess(t testing.TB, proc lab.Process, health string, timeout time.Duration, what string) *lab.Running {
	t.Helper()
	r, err := proc.Start()
	if err != nil {
		t.Fatalf("start %s: %v", what, err)
	}
	if err := lab.Wait(context.Background(), lab.HTTPGet{URL: health}, timeout, r); err != nil {
		_ = lab.StopGroup(r.Pid, syscall.SIGKILL, time.Second)
		t.Fatalf("%s did not answer on %s: %v", what, health, err)
	}
	return r
}

// Stop ends a process StartProcess started, with SIGTERM (SIGKILL after
// grace), and reaps it.
func Stop(r *lab.Running, grace time.Duration) {
	_ = lab.StopGroup(r.Pid, syscall.SIGTERM, grace)
	_ = r.Wait()
}

// WaitHealthy polls url until it answers 200, and fails the test (naming
// what) if it has not within timeout.
func WaitHealthy(t testing.TB, url string, timeout time.Duration, what string) {
	t.Helper()
	if err := lab.Wait(context.Background(), lab.HTTPGet{URL: url}, timeout, nil); err != nil {
		t.Fatalf("%s did not answer on %s: %v", what, url, err)
	}
}

// Kill ends the process with SIGKILL, as a crash would: requests in flight
// get their connection reset, and new ones are refused.
func (p *PaysimProc) Kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.run == nil {
		return
	}
	_ = lab.StopGroup(p.run.Pid, syscall.SIGKILL, time.Second)
	_ = p.run.Wait()
	p.run = nil
}
