package lab

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
)

// TestPortNames are the ports of the servers `make test` runs the suite
// against, in the order base:N gives them out.
var TestPortNames = []string{"redis", "temporal", "temporal-ui", "stripe-mock"}

// TestServers is the stack `go test` runs against: PostgreSQL (its
// database emptied), Redis, an in-memory Temporal dev server with its Web UI
// (the browser test) and stripe-mock (the Stripe adapter's tests). Ports
// come from ORDERFLOW_TEST_REDIS_URL, TEST_TEMPORAL_PORT,
// TEST_TEMPORAL_UI_PORT and TEST_STRIPE_MOCK_PORT when set, else as LAB_PORTS
// says (default: free).
type TestServers struct {
	*Stack
}

const defaultTestDatabaseURL = "postgres://orderflow:orderflow@127.0.0.1:5432/orderflow_test?sslmode=disable"

// NewTestServers resolves the test servers' ports under data.
func NewTestServers(root, data, portMode string, getenv func(string) string) (*TestServers, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	mode, err := ParsePortMode(firstOf(portMode, getenv("LAB_PORTS"), "free"))
	if err != nil {
		return nil, err
	}
	if mode.Kind == "base" {
		mode.Base += slotPorts * 4 // after the profiles' slots
	}
	over := Ports{}
	if v := getenv("ORDERFLOW_TEST_REDIS_URL"); v != "" {
		over["redis"] = portOf(v, 6379)
	}
	for name, key := range map[string]string{"temporal": "TEST_TEMPORAL_PORT", "temporal-ui": "TEST_TEMPORAL_UI_PORT",
		"stripe-mock": "TEST_STRIPE_MOCK_PORT"} {
		if v := getenv(key); v != "" {
			p, err := strconv.Atoi(v)
			if err != nil {
				return nil, fmt.Errorf("lab: %s=%q is not a port", key, v)
			}
			over[name] = p
		}
	}
	ports, err := Allocate(TestPortNames, nil, mode, over)
	if err != nil {
		return nil, err
	}
	data, _ = filepath.Abs(data)
	e := map[string]string{
		"ORDERFLOW_TEST_DATABASE_URL": firstOf(getenv("ORDERFLOW_TEST_DATABASE_URL"), defaultTestDatabaseURL),
		"ORDERFLOW_TEST_REDIS_URL":    firstOf(getenv("ORDERFLOW_TEST_REDIS_URL"), "redis://127.0.0.1:"+strconv.Itoa(ports["redis"])+"/0"),
	}
	return BuildTestServers(Config{Profile: "test", Root: root, Data: data, Ports: ports, Env: e})
}

// LoadTestServers rebuilds the test servers whose state is under data.
func LoadTestServers(data string) (*TestServers, error) {
	data, _ = filepath.Abs(data)
	st, err := LoadState(data)
	if err != nil {
		return nil, err
	}
	return BuildTestServers(st.Config)
}

// BuildTestServers builds the test servers' topology from a resolved
// configuration, and completes its environment: the ORDERFLOW_TEST_*
// variables the suite reads.
func BuildTestServers(cfg Config) (*TestServers, error) {
	run := filepath.Join(cfg.Data, "run")
	cli, err := TemporalCLI(cfg.Root)
	if err != nil {
		return nil, err
	}
	e := cfg.Env
	pgURL := e["ORDERFLOW_TEST_DATABASE_URL"]
	pg, err := Postgres{URL: pgURL, Log: filepath.Join(run, "postgres.log")}.Node()
	if err != nil {
		return nil, err
	}
	// Tests start clean: the database is emptied once it answers.
	ensure := pg.After
	pg.After = func(ctx context.Context) error {
		if err := ensure(ctx); err != nil {
			return err
		}
		return Postgres{URL: pgURL}.RecreateDatabase(ctx)
	}
	rd, err := Redis{URL: e["ORDERFLOW_TEST_REDIS_URL"], Dir: filepath.Join(run, "redis"), Log: filepath.Join(run, "redis.log")}.Node()
	if err != nil {
		return nil, err
	}
	tp, err := TemporalDev{Port: cfg.Ports["temporal"], UIPort: cfg.Ports["temporal-ui"], CLI: cli, Root: cfg.Root,
		Log: filepath.Join(run, "temporal.log")}.Node()
	if err != nil {
		return nil, err
	}
	// A server that already answers on the port may run headless: the
	// browser test needs the Web UI, so reuse waits for it too.
	tp.Reuse = tp.Ready
	stripe, err := GoTool(cfg.Root, "stripe-mock")
	if err != nil {
		return nil, err
	}
	sm := &Node{Name: "stripe-mock", Ports: Ports{"http": cfg.Ports["stripe-mock"]}}
	// Its HTTPS listener on a port the system picks.
	sm.Proc = Process{Command: []string{stripe, "-http-addr", sm.Addr("http"), "-https-addr", Loopback + ":"},
		Log: filepath.Join(run, "stripe-mock.log")}
	sm.Ready = HTTPGet{URL: "http://" + sm.Addr("http") + "/v1/payment_intents/pi_123", User: "sk_test_123"}
	lo := func(p int) string { return net.JoinHostPort(Loopback, strconv.Itoa(p)) }
	e["ORDERFLOW_TEST_TEMPORAL_ADDRESS"] = lo(cfg.Ports["temporal"])
	e["ORDERFLOW_TEST_TEMPORAL_UI_URL"] = "http://" + lo(cfg.Ports["temporal-ui"])
	e["ORDERFLOW_TEST_TEMPORAL_CLI"] = cli
	e["ORDERFLOW_TEST_STRIPE_MOCK_URL"] = "http://" + lo(cfg.Ports["stripe-mock"])
	if _, err := url.Parse(pgURL); err != nil {
		return nil, fmt.Errorf("lab: ORDERFLOW_TEST_DATABASE_URL: %w", err)
	}
	return &TestServers{NewStack(cfg, []*Node{pg, rd, tp, sm})}, nil
}

// Environ is the suite's environment: KEY=VALUE lines.
func (t *TestServers) Environ() []string {
	var out []string
	for _, k := range sortedKeys(t.Config.Env) {
		out = append(out, k+"="+t.Config.Env[k])
	}
	return out
}
