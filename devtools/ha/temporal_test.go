package ha

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// haEnv skips the test unless ORDERFLOW_TEST_HA=1: these tests start real
// clusters (Temporal, Patroni, Sentinel) on ports from
// ORDERFLOW_TEST_HA_PORT_BASE, which take minutes.
func haEnv(t *testing.T) (root string, base int) {
	t.Helper()
	if os.Getenv("ORDERFLOW_TEST_HA") != "1" {
		t.Skip("ORDERFLOW_TEST_HA=1 runs the HA tests (they start real clusters)")
	}
	base, err := strconv.Atoi(os.Getenv("ORDERFLOW_TEST_HA_PORT_BASE"))
	if err != nil {
		t.Fatal("ORDERFLOW_TEST_HA_PORT_BASE: a port base with 100 free ports above it is required")
	}
	root, err = filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root, base
}

// testPostgres is the PostgreSQL the Temporal cluster test uses, from
// ORDERFLOW_TEST_HA_TEMPORAL_DATABASE_URL (a role that may create
// databases; the test drops and creates <name> and <name>_vis).
func testPostgres(t *testing.T) Postgres {
	t.Helper()
	raw := os.Getenv("ORDERFLOW_TEST_HA_TEMPORAL_DATABASE_URL")
	u, err := url.Parse(raw)
	if raw == "" || err != nil || u.User == nil {
		t.Fatalf("ORDERFLOW_TEST_HA_TEMPORAL_DATABASE_URL=%q: want postgres://user:password@host:port/name", raw)
	}
	pw, _ := u.User.Password()
	name := strings.TrimPrefix(u.Path, "/")
	return Postgres{Addr: u.Host, User: u.User.Username(), Password: pw, Database: name, Visibility: name + "_vis"}
}

// waitSignal is the saga stand-in: it parks on a signal, so it is in flight
// on its shard's history host when that host dies, then runs a timer.
func waitSignal(ctx workflow.Context) (string, error) {
	var v string
	workflow.GetSignalChannel(ctx, "go").Receive(ctx, &v)
	if err := workflow.Sleep(ctx, time.Second); err != nil {
		return "", err
	}
	return "done:" + v, nil
}

// temporalEnv is haEnv for the Temporal tests: a 10-minute context and the
// pinned binaries.
func temporalEnv(t *testing.T) (ctx context.Context, root string, base int, bin Binaries) {
	t.Helper()
	root, base = haEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	bin, err := FindBinaries(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	return ctx, root, base, bin
}

func TestTemporalClusterKeepsServingWhenAServerIsKilled(t *testing.T) {
	ctx, root, base, bin := temporalEnv(t)
	c := &TemporalCluster{Root: root, Data: t.TempDir(), Bin: bin, DB: testPostgres(t), PortBase: base, UI: true}
	if err := c.DropDatabases(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Down(); err != nil {
			t.Error(err)
		}
		for i := range c.Servers {
			t.Logf("%s log tail:\n%s", ServerName(i), lastLines(readFile(filepath.Join(c.Data, ServerName(i)+".log")), 5))
		}
	})
	start := time.Now()
	if err := c.Up(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("cluster up in %s", time.Since(start).Round(time.Second))

	out, err := run(ctx, "", nil, bin.CLI, "operator", "cluster", "describe", "--address", c.Address(), "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var desc struct {
		PersistenceStore  string `json:"persistenceStore"`
		VisibilityStore   string `json:"visibilityStore"`
		HistoryShardCount int    `json:"historyShardCount"`
	}
	if err := json.Unmarshal([]byte(out), &desc); err != nil {
		t.Fatalf("cluster describe: %v: %s", err, out)
	}
	if !strings.HasPrefix(desc.PersistenceStore, "postgres") || !strings.HasPrefix(desc.VisibilityStore, "postgres") || desc.HistoryShardCount != 512 {
		t.Fatalf("cluster describe = %+v, want PostgreSQL persistence and visibility and 512 shards", desc)
	}

	took := survives(ctx, t, c, func() error { return c.Stack().Kill(ServerName(0)) })
	t.Logf("every in-flight workflow completed %s after %s was killed", took.Round(100*time.Millisecond), ServerName(0))
	// The killed server rejoins the ring.
	if err := c.Stack().Start(ctx, ServerName(0)); err != nil {
		t.Fatal(err)
	}
}

// survives runs 16 workflows to their signal, injects fault, signals them
// and waits for all of them, then starts and completes a new one. It
// returns the time from the fault to the last completion.
func survives(ctx context.Context, t *testing.T, c *TemporalCluster, fault func() error) time.Duration {
	t.Helper()
	tc, err := client.Dial(client.Options{HostPort: c.Address(), Namespace: c.Namespace,
		Logger: log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	w := worker.New(tc, "ha-test", worker.Options{})
	w.RegisterWorkflowWithOptions(waitSignal, workflow.RegisterOptions{Name: "ha-wait-signal"})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	// 16 workflows spread over the 512 shards: the chance that none lives
	// on a killed server's half is 1 in 65536.
	const n = 16
	runs := make([]client.WorkflowRun, n)
	for i := range runs {
		runs[i], err = tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: fmt.Sprintf("ha-%d-%d", time.Now().UnixNano(), i),
			TaskQueue: "ha-test"}, "ha-wait-signal")
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := fault(); err != nil {
		t.Fatal(err)
	}
	injected := time.Now()
	// Each workflow is signalled and awaited on its own, as independent
	// orders would be, so the first and the last to complete say when the
	// cluster served again and when it served everything again.
	done := make([]time.Duration, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, r := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The signal may meet shards that have not moved yet, or a
			// database failing over: the SDK retries what is retryable
			// within its own deadline, and the caller, like the gateway's
			// clients, again.
			for attempt := 1; ; attempt++ {
				err := tc.SignalWorkflow(ctx, r.GetID(), r.GetRunID(), "go", strconv.Itoa(i))
				if err == nil {
					break
				}
				if time.Since(injected) > 2*time.Minute {
					errs[i] = fmt.Errorf("signal %s after the fault: %w (attempt %d)", r.GetID(), err, attempt)
					return
				}
			}
			var got string
			if err := r.Get(ctx, &got); err != nil || got != "done:"+strconv.Itoa(i) {
				errs[i] = fmt.Errorf("workflow %s = %q, %v; want done:%d", r.GetID(), got, err, i)
				return
			}
			done[i] = time.Since(injected)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	slices.Sort(done)
	t.Logf("after the fault the first of %d in-flight workflows completed in %s, the last in %s (each runs a 1 s timer after its signal)",
		n, done[0].Round(100*time.Millisecond), done[n-1].Round(100*time.Millisecond))
	took := done[n-1]
	// And a new one starts and completes on what is left.
	r, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: "ha-test"}, "ha-wait-signal")
	if err != nil {
		t.Fatal(err)
	}
	if err := tc.SignalWorkflow(ctx, r.GetID(), r.GetRunID(), "go", "new"); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := r.Get(ctx, &got); err != nil || got != "done:new" {
		t.Fatalf("new workflow = %q, %v", got, err)
	}
	return took
}

func TestTemporalClusterOnPatroniKeepsServingThroughAPrimaryFailover(t *testing.T) {
	ctx, root, base, bin := temporalEnv(t)
	data := t.TempDir()
	for d := data; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p := &PostgresHA{Root: root, Data: filepath.Join(data, "pg"), PortBase: base + 300}
	bringUp(ctx, t, p)
	if err := p.CreateDatabase(ctx, "temporal", "temporal", "temporal"); err != nil {
		t.Fatal(err)
	}
	// Temporal's connectAddr is both members: pgx keeps the writable one.
	c := &TemporalCluster{Root: root, Data: filepath.Join(data, "temporal"), Bin: bin, PortBase: base,
		DB: Postgres{Addr: p.Addrs(), User: "temporal", Password: "temporal", Database: "temporal", Visibility: "temporal_vis"}}
	bringUp(ctx, t, c)
	primary, _, err := p.Roles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	took := survives(ctx, t, c, func() error { return p.KillMember(primary) })
	t.Logf("every in-flight workflow completed %s after the PostgreSQL primary %s was killed", took.Round(100*time.Millisecond), MemberName(primary))
}

// part is one HA building block: Up starts and waits, Down stops.
type part interface {
	Up(ctx context.Context) error
	Down() error
}

// bringUp brings p up for the test and down when it ends.
func bringUp(ctx context.Context, t *testing.T, p part) {
	t.Helper()
	t.Cleanup(func() {
		if err := p.Down(); err != nil {
			t.Error(err)
		}
	})
	if err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
}

func readFile(p string) string { b, _ := os.ReadFile(p); return string(b) }
