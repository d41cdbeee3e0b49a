// Package stacktest connects tests to the real PostgreSQL, Redis and Temporal
// that `make test` starts (scripts/test.sh), and creates the fixtures they need.
//
// Outside `make test` the variables are unset and the tests that need the
// stack skip; under CI a missing variable is a failure, so the suite cannot
// pass without having run against the real services.
package testkit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"

	"github.com/orderflow/orderflow/activities/catalog"
	"github.com/orderflow/orderflow/internal/cache"
	"github.com/orderflow/orderflow/internal/db"
	"github.com/orderflow/orderflow/internal/pii"
	"github.com/orderflow/orderflow/schema"
)

// Variables scripts/test.sh sets.
const (
	EnvDatabase = "ORDERFLOW_TEST_DATABASE_URL"
	EnvRedis    = "ORDERFLOW_TEST_REDIS_URL"
	EnvTemporal = "ORDERFLOW_TEST_TEMPORAL_ADDRESS"
	EnvCLI      = "ORDERFLOW_TEST_TEMPORAL_CLI"
	// EnvRedisSentinels (host:port, comma-separated) and EnvRedisMasterName
	// put the test Redis behind Sentinels (make e2e-ha): clients then reach
	// the master the Sentinels name, as the product's do with
	// REDIS_SENTINELS and REDIS_MASTER_NAME, and EnvRedis gives only the
	// password and the database.
	EnvRedisSentinels  = "ORDERFLOW_TEST_REDIS_SENTINELS"
	EnvRedisMasterName = "ORDERFLOW_TEST_REDIS_MASTER_NAME"
)

// Require returns the variable's value, skipping the test outside `make test`
// and failing it in CI.
func Require(t testing.TB, key string) string {
	t.Helper()
	v := os.Getenv(key)
	if v == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set: run the suite with `make test`", key)
		}
		t.Skipf("%s is not set: run the suite with `make test`", key)
	}
	return v
}

var (
	migrateOnce sync.Once
	migrateErr  error
)

// DB returns a pool on the test database with every migration applied.
func DB(t testing.TB) *pgxpool.Pool {
	t.Helper()
	url := Require(t, EnvDatabase)
	ctx := context.Background()
	pool, err := db.Open(ctx, url)
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	t.Cleanup(pool.Close)
	migrateOnce.Do(func() { migrateErr = schema.Migrate(ctx, pool) })
	if migrateErr != nil {
		t.Fatalf("migrate test database: %v", migrateErr)
	}
	return pool
}

// RedisConfig is how the suite reaches the test Redis: its URL, and its
// Sentinels when EnvRedisSentinels and EnvRedisMasterName are set.
func RedisConfig(t testing.TB) cache.Config {
	t.Helper()
	cfg := cache.Config{URL: Require(t, EnvRedis), MasterName: os.Getenv(EnvRedisMasterName)}
	if v := os.Getenv(EnvRedisSentinels); v != "" {
		cfg.Sentinels = strings.Split(v, ",")
	}
	return cfg
}

// RedisEnv is the environment a process a test starts reaches the test
// Redis with: REDIS_URL, plus REDIS_SENTINELS and REDIS_MASTER_NAME behind
// Sentinels.
func RedisEnv(t testing.TB) []string {
	t.Helper()
	cfg := RedisConfig(t)
	env := []string{"REDIS_URL=" + cfg.URL}
	if len(cfg.Sentinels) > 0 {
		env = append(env, "REDIS_SENTINELS="+strings.Join(cfg.Sentinels, ","), "REDIS_MASTER_NAME="+cfg.MasterName)
	}
	return env
}

// Redis returns a client on the test Redis (the master, behind Sentinels).
func Redis(t testing.TB) *redis.Client {
	t.Helper()
	rc, err := cache.Connect(RedisConfig(t))
	if err != nil {
		t.Fatalf("open test redis: %v", err)
	}
	t.Cleanup(func() { _ = rc.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rc.Ping(ctx).Err(); err != nil {
		t.Fatalf("ping test redis: %v", err)
	}
	return rc
}

// Temporal returns a client on the test Temporal server's default
// namespace, whose payloads are sealed with the test's PII keys as the
// gateway's and the workers' are.
func Temporal(t testing.TB) client.Client {
	t.Helper()
	dc, fc := pii.Converters(PII(t))
	c, err := client.Dial(client.Options{
		HostPort: Require(t, EnvTemporal), Namespace: "default",
		Logger:        log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))),
		DataConverter: dc, FailureConverter: fc,
	})
	if err != nil {
		t.Fatalf("dial test temporal: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// Product creates a product with a SKU no other test uses and returns the SKU.
func Product(t testing.TB, pool *pgxpool.Pool, priceCents int64, onHand int) string {
	t.Helper()
	sku := "T-" + uuid.NewString()[:13]
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO products (sku, name, price_cents) VALUES ($1, $2, $3)`, sku, "test "+sku, priceCents); err != nil {
		t.Fatalf("create product: %v", err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO inventory (sku, on_hand) VALUES ($1, $2)`, sku, onHand); err != nil {
		t.Fatalf("create stock: %v", err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO inventory_events (sku, delta_on_hand, delta_reserved, reason) VALUES ($1, $2, 0, 'restock')`, sku, onHand); err != nil {
		t.Fatalf("create stock event: %v", err)
	}
	return sku
}

// Stock is a SKU's row in inventory.
type Stock struct {
	OnHand, Reserved int
	Version          int64
}

// StockOf reads a SKU's inventory row.
func StockOf(t testing.TB, pool *pgxpool.Pool, sku string) Stock {
	t.Helper()
	var s Stock
	if err := pool.QueryRow(context.Background(), `SELECT on_hand, reserved, version FROM inventory WHERE sku = $1`, sku).
		Scan(&s.OnHand, &s.Reserved, &s.Version); err != nil {
		t.Fatalf("stock of %s: %v", sku, err)
	}
	return s
}

// ReplayEvents sums a SKU's inventory_events, in order, and reports the
// totals and whether any prefix of the log went below zero or reserved above
// on-hand.
func ReplayEvents(t testing.TB, pool *pgxpool.Pool, sku string) (onHand, reserved int, violated error) {
	t.Helper()
	r, err := catalog.ReplayInventory(context.Background(), pool, sku)
	if err != nil {
		t.Fatal(err)
	}
	if r.Violation != "" {
		violated = errors.New(r.Violation)
	}
	return r.OnHand, r.Reserved, violated
}

// RedisServer is a private redis-server a test may stop and start again, for
// tests of what happens while Redis is down; the shared test Redis keeps
// running for everyone else.
type RedisServer struct {
	t    testing.TB
	port int
	// password, when set, is required of every client (requirepass).
	password string
	mu       sync.Mutex
	cmd      *exec.Cmd
}

// NewRedisServer starts a private redis-server on a free loopback port, with no
// persistence, and stops it when the test ends. It skips like Redis does
// outside `make test`, which installs redis-server.
func NewRedisServer(t testing.TB) *RedisServer {
	t.Helper()
	return NewRedisServerWithPassword(t, "")
}

// NewRedisServerWithPassword is NewRedisServer for a server that requires
// password of its clients (none when it is empty); URL carries it.
func NewRedisServerWithPassword(t testing.TB, password string) *RedisServer {
	t.Helper()
	Require(t, EnvRedis)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	s := &RedisServer{t: t, port: port, password: password}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Addr is the server's host:port.
func (s *RedisServer) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

// URL is the server's redis:// URL.
func (s *RedisServer) URL() string {
	if s.password != "" {
		return "redis://:" + s.password + "@" + s.Addr() + "/0"
	}
	return "redis://" + s.Addr() + "/0"
}

// Client returns a client opened as the services open theirs (cache.Open),
// closed when the test ends.
func (s *RedisServer) Client() *redis.Client {
	rc, err := cache.Open(s.URL())
	if err != nil {
		s.t.Fatalf("open private redis: %v", err)
	}
	s.t.Cleanup(func() { _ = rc.Close() })
	return rc
}

// Start runs the server (again) on its port and waits until it answers PING.
// It starts empty: nothing is saved across a stop.
func (s *RedisServer) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return
	}
	args := []string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"}
	if s.password != "" {
		args = append(args, "--requirepass", s.password)
	}
	cmd := exec.Command("redis-server", args...)
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	s.cmd = cmd
	rc := redis.NewClient(&redis.Options{Addr: s.Addr(), Password: s.password, MaxRetries: -1})
	defer rc.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := rc.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("private redis on %s did not answer: %v", s.Addr(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server and waits for it to exit, so its port refuses
// connections until Start.
func (s *RedisServer) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}
