package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/api"
	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/cache"
	"github.com/orderflow/orderflow/internal/config"
	"github.com/orderflow/orderflow/internal/db"
	"github.com/orderflow/orderflow/internal/health"
)

// healthTokens is the authenticator of the servers serve starts and the
// minter of the operator token getHealth sends (GET /health/deep needs one).
var healthTokens = func() testkit.Tokens {
	cfg := testkit.AuthConfig()
	a, err := auth.New(context.Background(), cfg)
	if err != nil {
		panic(err)
	}
	m, err := auth.NewMinter(cfg)
	if err != nil {
		panic(err)
	}
	return testkit.Tokens{Auth: a, Minter: m, Config: cfg}
}()

// getAs sends GET url with an Authorization header ("" for none).
func getAs(url, authorization string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	return http.DefaultClient.Do(req)
}

// serve runs srv on an httptest server and returns its URL.
func serve(t *testing.T, srv *api.Server) string {
	t.Helper()
	if srv.Log == nil {
		srv.Log = zaptest.NewLogger(t)
	}
	if srv.Auth == nil {
		srv.Auth = healthTokens.Auth
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return hs.URL
}

type healthAnswer struct {
	status int
	header http.Header
	report health.Report
}

func getHealth(t *testing.T, url string) healthAnswer {
	t.Helper()
	res, err := getAs(url, healthTokens.Operator())
	require.NoError(t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var rep health.Report
	require.NoError(t, json.Unmarshal(b, &rep), "%d %s", res.StatusCode, b)
	return healthAnswer{status: res.StatusCode, header: res.Header, report: rep}
}

func TestHealthIs503NamingTheDatabaseWhilePostgresIsDownAnd200WhenItIsBack(t *testing.T) {
	pg := testkit.PostgresServer(t)
	pool, err := db.Open(context.Background(), pg.URL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	url := serve(t, &api.Server{DB: pool, Cache: testkit.Redis(t), Temporal: testkit.Temporal(t), Config: api.Config{Region: "health"}})

	for _, path := range []string{"/health", "/health/ready"} {
		a := getHealth(t, url+path)
		require.Equal(t, http.StatusOK, a.status, "%s: %+v", path, a.report)
		assert.Equal(t, health.StatusOK, a.report.Status)
		for _, name := range []string{"database", "cache", "temporal", "disk", "memory"} {
			assert.Equal(t, health.StatusOK, a.report.Checks[name].Status, name)
		}
	}

	pg.Stop()
	res, err := http.Get(url + "/health/live")
	require.NoError(t, err)
	_ = res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode, "liveness does not depend on PostgreSQL")
	for _, path := range []string{"/health", "/health/ready"} {
		a := getHealth(t, url+path)
		assert.Equal(t, http.StatusServiceUnavailable, a.status, path)
		assert.Equal(t, health.StatusFail, a.report.Status)
		assert.Equal(t, []string{"database"}, a.report.Failing)
		assert.Equal(t, health.StatusFail, a.report.Checks["database"].Status)
		assert.NotEmpty(t, a.report.Checks["database"].Error)
	}

	pg.Start()
	a := getHealth(t, url+"/health")
	assert.Equal(t, http.StatusOK, a.status, "%+v", a.report)
	assert.Empty(t, a.report.Failing)
}

func TestHealthStays200WithTheCacheDegradedWhileRedisIsDown(t *testing.T) {
	r := testkit.NewRedisServer(t)
	rc, err := cache.Open(r.URL())
	require.NoError(t, err)
	t.Cleanup(func() { _ = rc.Close() })
	url := serve(t, &api.Server{DB: testkit.DB(t), Cache: rc, Temporal: testkit.Temporal(t), Config: api.Config{Region: "health"}})

	a := getHealth(t, url+"/health")
	require.Equal(t, http.StatusOK, a.status, "%+v", a.report)
	assert.Equal(t, health.StatusOK, a.report.Checks["cache"].Status)

	r.Stop()
	a = getHealth(t, url+"/health")
	assert.Equal(t, http.StatusOK, a.status, "Redis holds nothing that cannot be rebuilt")
	assert.Equal(t, health.StatusDegraded, a.report.Status)
	assert.Equal(t, []string{"cache"}, a.report.Failing)
	assert.Equal(t, health.StatusDegraded, a.report.Checks["cache"].Status)
	assert.False(t, a.report.Checks["cache"].Critical)
	assert.Contains(t, a.report.Checks["cache"].Error, "ping redis")

	r.Start()
	a = getHealth(t, url+"/health")
	assert.Equal(t, health.StatusOK, a.report.Checks["cache"].Status, "%+v", a.report)
}

// syntheticSKU makes a SKU of the test's own and marks it synthetic, so
// deep checks of parallel tests never share stock.
func syntheticSKU(t *testing.T, s *stack, onHand int) string {
	t.Helper()
	sku := testkit.Product(t, s.pool, 100, onHand)
	_, err := s.pool.Exec(context.Background(), `UPDATE products SET synthetic = true WHERE sku = $1`, sku)
	require.NoError(t, err)
	return sku
}

// deepServer is a gateway for the stack's region whose deep check orders sku
// for a customer of the test's own.
func deepServer(t *testing.T, s *stack, sku string, budget time.Duration, providers ...health.Check) (url, owner string) {
	owner = "synthetic-" + uuid.NewString()[:8]
	srv := &api.Server{DB: s.pool, Cache: s.rc, Temporal: s.temporal, ProviderChecks: providers,
		Config: api.Config{Region: s.region, Health: api.Health{DeepBudget: budget, SyntheticSKU: sku, SyntheticOwner: owner}}}
	return serve(t, srv), owner
}

func TestDeepHealthConfirmsASyntheticOrderAndPutsItsStockBack(t *testing.T) {
	s := newStack(t, true)
	sku := syntheticSKU(t, s, 5)
	url, owner := deepServer(t, s, sku, 0)
	before := testkit.StockOf(t, s.pool, sku)

	for run := 1; run <= 2; run++ {
		a := getHealth(t, url+"/health/deep")
		require.Equal(t, http.StatusOK, a.status, "run %d: %+v", run, a.report)
		assert.Equal(t, health.StatusOK, a.report.Status)
		for _, name := range []string{"database", "cache", "temporal", "disk", "memory", api.CheckInventory, api.CheckSyntheticOrder} {
			assert.Equal(t, health.StatusOK, a.report.Checks[name].Status, "%s: %s", name, a.report.Checks[name].Error)
		}
		assert.Contains(t, a.report.Checks[api.CheckSyntheticOrder].Detail, "confirmed; 1 unit(s) put back")
		after := testkit.StockOf(t, s.pool, sku)
		assert.Equal(t, [2]int{before.OnHand, before.Reserved}, [2]int{after.OnHand, after.Reserved}, "run %d: the synthetic stock is back", run)
	}
	onHand, reserved, violated := testkit.ReplayEvents(t, s.pool, sku)
	assert.NoError(t, violated)
	assert.Equal(t, [2]int{before.OnHand, 0}, [2]int{onHand, reserved}, "inventory_events replays to the row")

	var orders, synthetic, confirmed int
	require.NoError(t, s.pool.QueryRow(context.Background(), `SELECT count(*), count(*) FILTER (WHERE synthetic),
			count(*) FILTER (WHERE status = 'CONFIRMED') FROM orders WHERE customer_id = $1`, owner).Scan(&orders, &synthetic, &confirmed))
	assert.Equal(t, [3]int{2, 2, 2}, [3]int{orders, synthetic, confirmed}, "two synthetic orders, confirmed and marked")

	// The saga's notification and payment ran for real, for the synthetic customer.
	var charges int
	require.NoError(t, s.pool.QueryRow(context.Background(), `SELECT count(*) FROM payment_transactions t JOIN orders o USING (order_id)
			WHERE o.customer_id = $1 AND t.kind IN ('charge', 'capture')`, owner).Scan(&charges))
	assert.Equal(t, 2, charges)
}

func TestDeepHealthIs503NamingTheFailingCheck(t *testing.T) {
	s := newStack(t, true)
	refused := "http://127.0.0.1:" + strconv.Itoa(testkit.FreePort(t)) + "/"

	t.Run("an unreachable payment provider", func(t *testing.T) {
		sku := syntheticSKU(t, s, 5)
		url, _ := deepServer(t, s, sku, 0, health.Reachable("payment:paysim-down", refused, true))
		a := getHealth(t, url+"/health/deep")
		assert.Equal(t, http.StatusServiceUnavailable, a.status)
		assert.Equal(t, []string{"payment:paysim-down"}, a.report.Failing)
		assert.Contains(t, a.report.Checks["payment:paysim-down"].Error, "connection refused")
		assert.Equal(t, 5, testkit.StockOf(t, s.pool, sku).OnHand)
	})

	t.Run("a SKU not marked synthetic is never ordered", func(t *testing.T) {
		sku := testkit.Product(t, s.pool, 100, 5) // a real product
		url, owner := deepServer(t, s, sku, 0)
		a := getHealth(t, url+"/health/deep")
		assert.Equal(t, http.StatusServiceUnavailable, a.status)
		assert.Equal(t, []string{api.CheckInventory, api.CheckSyntheticOrder}, a.report.Failing)
		assert.Contains(t, a.report.Checks[api.CheckSyntheticOrder].Error, "not marked synthetic")
		assert.Equal(t, testkit.Stock{OnHand: 5, Reserved: 0, Version: 1}, testkit.StockOf(t, s.pool, sku), "real stock untouched")
		assert.Zero(t, s.workflowsOf(owner))
	})

	t.Run("no worker takes the saga within the budget", func(t *testing.T) {
		// A stack whose region has no worker: the saga never runs.
		idle := newStack(t, false)
		sku := syntheticSKU(t, idle, 5)
		url, _ := deepServer(t, idle, sku, 2*time.Second)
		a := getHealth(t, url+"/health/deep")
		assert.Equal(t, http.StatusServiceUnavailable, a.status)
		assert.Equal(t, []string{api.CheckSyntheticOrder}, a.report.Failing)
		assert.True(t, strings.HasPrefix(a.report.Checks[api.CheckSyntheticOrder].Error, "timed out after 2s"), a.report.Checks[api.CheckSyntheticOrder].Error)
		assert.Equal(t, 5, testkit.StockOf(t, idle.pool, sku).OnHand)
	})
}

func TestDeepHealthRunsOneAtATime(t *testing.T) {
	s := newStack(t, true)
	sku := syntheticSKU(t, s, 5)
	// A provider check that holds the deep check open until the test lets it go.
	entered, release := make(chan struct{}, 1), make(chan struct{})
	gate := health.Check{Name: "payment:gated", Critical: true, Fn: func(ctx context.Context) (string, error) {
		entered <- struct{}{}
		select {
		case <-release:
			return "", nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}}
	url, owner := deepServer(t, s, sku, 0, gate)

	first := make(chan healthAnswer, 1)
	go func() { first <- getHealth(t, url+"/health/deep") }()
	<-entered
	res, err := getAs(url+"/health/deep", healthTokens.Operator())
	require.NoError(t, err)
	b, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode, "no result yet: the second caller is refused")
	assert.Contains(t, string(b), "health_check_running")
	close(release)
	a := <-first
	require.Equal(t, http.StatusOK, a.status, "%+v", a.report)

	// While another runs, a caller gets the last report at once.
	release = make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); first <- getHealth(t, url+"/health/deep") }()
	<-entered
	cached := getHealth(t, url+"/health/deep")
	assert.Equal(t, "true", cached.header.Get("Health-Cached"))
	assert.Equal(t, http.StatusOK, cached.status)
	assert.Equal(t, a.report.Checks[api.CheckSyntheticOrder].Detail, cached.report.Checks[api.CheckSyntheticOrder].Detail)
	close(release)
	wg.Wait()
	assert.Equal(t, http.StatusOK, (<-first).status)

	var orders int
	require.NoError(t, s.pool.QueryRow(context.Background(), `SELECT count(*) FROM orders WHERE customer_id = $1`, owner).Scan(&orders))
	assert.Equal(t, 2, orders, "only the two deep checks that ran placed orders")
}

func TestPublicAPINeitherListsNorSellsTheSyntheticSKU(t *testing.T) {
	s := newStack(t, false)
	sku := config.HealthSyntheticSKU.Default()
	var synthetic bool
	var onHand int
	require.NoError(t, s.pool.QueryRow(context.Background(),
		`SELECT p.synthetic, i.on_hand FROM products p JOIN inventory i USING (sku) WHERE sku = $1`, sku).Scan(&synthetic, &onHand))
	assert.True(t, synthetic, "migration 0003 seeds the synthetic SKU")
	assert.Positive(t, onHand)

	r := s.place(uuid.NewString(), newOrder(customer(), payment.TokenVisa, api.OrderItem{SKU: sku, Quantity: 1}))
	assert.Equal(t, http.StatusUnprocessableEntity, r.status, string(r.body))
	assert.Contains(t, string(r.body), "unknown_sku")

	r = s.do(http.MethodGet, "/v1/products?after=SYNTHETIC&limit=500", nil, nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	assert.NotContains(t, string(r.body), `"`+sku+`"`)
}
