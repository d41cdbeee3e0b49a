package api

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/catalog"
	"github.com/orderflow/orderflow/activities/orders"
	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/cache"
)

// saga runs the real activities, as the worker would, on the gateway's
// database and the given Redis.
type saga struct {
	t   *testing.T
	env *testsuite.TestActivityEnvironment
	ord *orders.Activities
	inv *catalog.Inventory
	pay *payment.Activities
}

func newSaga(t *testing.T, g *gateway, rc *redis.Client) *saga {
	_, provider := testkit.Paysim(t, g.pool, "paysim-api")
	var suite testsuite.WorkflowTestSuite
	s := &saga{t: t, env: suite.NewTestActivityEnvironment(),
		ord: &orders.Activities{DB: g.pool, Cache: rc, PII: testkit.PII(t)},
		inv: &catalog.Inventory{DB: g.pool, Cache: rc, SetStatus: orders.RecordStatus},
		pay: &payment.Activities{DB: g.pool, Cache: rc, Providers: payment.NewRouter(testkit.Breaker(), provider)},
	}
	s.env.RegisterActivity(s.ord)
	s.env.RegisterActivity(s.inv)
	s.env.RegisterActivity(s.pay)
	return s
}

func (s *saga) create(sku string) (string, orders.CreateOrderResult) {
	s.t.Helper()
	id := uuid.NewString()
	v, err := s.env.ExecuteActivity(s.ord.Create, orders.CreateOrderInput{OrderID: id, CustomerID: "c-cache", Email: "a@b.co",
		Region: "test", Items: []orderflow.Item{{SKU: sku, Quantity: 1}}})
	require.NoError(s.t, err)
	var res orders.CreateOrderResult
	require.NoError(s.t, v.Get(&res))
	return id, res
}

func (g *gateway) orderStatus(id string) string {
	g.t.Helper()
	a := g.do(http.MethodGet, "/v1/orders/"+id, nil, nil)
	require.Equal(g.t, http.StatusOK, a.status, "%s", a.body)
	var o OrderJSON
	require.NoError(g.t, json.Unmarshal(a.body, &o))
	return o.Status
}

func (g *gateway) product(sku string) ProductJSON {
	g.t.Helper()
	a := g.do(http.MethodGet, "/v1/products/"+sku, nil, nil)
	require.Equal(g.t, http.StatusOK, a.status, "%s", a.body)
	var p ProductJSON
	require.NoError(g.t, json.Unmarshal(a.body, &p))
	return p
}

func TestOrderViewIsCachedAndInvalidatedByEveryStatusWrite(t *testing.T) {
	rc := testkit.Redis(t)
	g := newGateway(t, rc, nil)
	sku := testkit.Product(t, g.pool, 1500, 5)
	s := newSaga(t, g, rc)
	id, priced := s.create(sku)

	misses := cache.Misses(cache.TierOrder)
	assert.Equal(t, orderflow.StatusPending, g.orderStatus(id))
	assert.Equal(t, misses+1, cache.Misses(cache.TierOrder), "the first read loads from PostgreSQL")
	hits := cache.Hits(cache.TierOrder)
	assert.Equal(t, orderflow.StatusPending, g.orderStatus(id))
	assert.Equal(t, hits+1, cache.Hits(cache.TierOrder), "the second read is served by the order tier")

	steps := []struct {
		name string
		run  func() error
		want string
	}{
		{"reserve", func() error {
			_, err := s.env.ExecuteActivity(s.inv.Reserve, catalog.ReserveInput{OrderID: id, Lines: priced.Lines})
			return err
		}, orderflow.StatusReserved},
		{"charge (the batched status write)", func() error {
			_, err := s.env.ExecuteActivity(s.pay.Charge, payment.ChargeInput{OrderID: id, Token: payment.TokenVisa,
				AmountCents: priced.TotalCents, Currency: priced.Currency})
			return err
		}, orderflow.StatusPaid},
		{"confirm", func() error {
			_, err := s.env.ExecuteActivity(s.ord.Confirm, orderflow.OrderRef{OrderID: id})
			return err
		}, orderflow.StatusConfirmed},
		{"set status", func() error {
			_, err := s.env.ExecuteActivity(s.ord.SetStatus, orders.SetStatusInput{OrderID: id, Status: orderflow.StatusCompensating})
			return err
		}, orderflow.StatusCompensating},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			// Cache the current view, then change the status.
			g.orderStatus(id)
			require.NoError(t, st.run())
			assert.Equal(t, st.want, g.orderStatus(id), "the next read sees the new status")
		})
	}
}

func TestALoadThatRacedAStatusWriteDoesNotCacheTheOldView(t *testing.T) {
	rc := testkit.Redis(t)
	g := newGateway(t, rc, nil)
	sku := testkit.Product(t, g.pool, 1500, 5)
	s := newSaga(t, g, rc)
	id, _ := s.create(sku)
	ctx := t.Context()

	// A reader misses and loads PENDING from PostgreSQL...
	var o OrderJSON
	hit, lease := cache.GetLeased(ctx, rc, nil, cache.OrderKey(id), &o, time.Minute)
	require.False(t, hit)
	require.NotNil(t, lease)
	stale, err := g.srv.loadOrder(ctx, id)
	require.NoError(t, err)
	// ...the saga writes a new status and deletes the key...
	_, err = s.env.ExecuteActivity(s.ord.SetStatus, orders.SetStatusInput{OrderID: id, Status: orderflow.StatusReserved})
	require.NoError(t, err)
	// ...and the reader's fill comes too late to store what it read.
	cache.FillLeased(ctx, rc, nil, lease, stale, time.Minute)
	assert.Equal(t, orderflow.StatusReserved, g.orderStatus(id))
}

func TestPutProductIsVisibleOnTheNextRead(t *testing.T) {
	g := newGateway(t, testkit.Redis(t), nil)
	sku := testkit.Product(t, g.pool, 500, 3)
	g.product(sku)
	hits := cache.Hits(cache.TierCatalog)
	before := g.product(sku)
	require.Equal(t, hits+1, cache.Hits(cache.TierCatalog), "the product is cached")
	require.Equal(t, int64(500), before.PriceCents)

	a := g.do(http.MethodPut, "/v1/products/"+sku, nil, map[string]any{"name": "renamed", "price_cents": 650, "on_hand": 11})
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	after := g.product(sku)
	assert.Equal(t, "renamed", after.Name)
	assert.Equal(t, int64(650), after.PriceCents)
	assert.Equal(t, 11, after.OnHand)
}

func TestReadsAnswerFromPostgreSQLWhileRedisIsDownAndCachingResumes(t *testing.T) {
	rs := testkit.NewRedisServer(t)
	rc := rs.Client()
	// The outage opens the Redis breaker, which keeps the cache off for its
	// open period after Redis is back; a short one keeps the test short.
	g := newGateway(t, rc, func(s *Server) { s.Resilience.Breakers.OpenTimeout = time.Second })
	sku := testkit.Product(t, g.pool, 500, 3)
	s := newSaga(t, g, rc)
	id, _ := s.create(sku)

	rs.Stop()
	misses := map[string]int64{}
	for _, tier := range []string{cache.TierCatalog, cache.TierInventory, cache.TierOrder} {
		misses[tier] = cache.Misses(tier)
	}
	for _, path := range []string{"/v1/products?limit=5", "/v1/products/" + sku, "/v1/orders/" + id} {
		a := g.do(http.MethodGet, path, nil, nil)
		assert.Equal(t, http.StatusOK, a.status, "%s with Redis down: %s", path, a.body)
	}
	assert.Equal(t, 3, g.product(sku).OnHand)
	assert.Equal(t, orderflow.StatusPending, g.orderStatus(id))
	for tier, n := range misses {
		assert.Greater(t, cache.Misses(tier), n, "%s lookups count as misses while Redis is down", tier)
	}

	rs.Start()
	// Once the client has reconnected, a read fills the tier and the next
	// one is a hit.
	deadline := time.Now().Add(20 * time.Second)
	for {
		hits := cache.Hits(cache.TierCatalog)
		g.product(sku)
		g.product(sku)
		if cache.Hits(cache.TierCatalog) > hits {
			break
		}
		require.True(t, time.Now().Before(deadline), "the catalog tier did not resume")
		time.Sleep(100 * time.Millisecond)
	}
	hits := cache.Hits(cache.TierOrder)
	g.orderStatus(id)
	g.orderStatus(id)
	assert.Greater(t, cache.Hits(cache.TierOrder), hits, "the order tier resumed too")
}
