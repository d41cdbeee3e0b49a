package api

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow/internal/config"
	"github.com/orderflow/orderflow/internal/stacktest"
)

func TestRouteClasses(t *testing.T) {
	cases := []struct{ method, route, want string }{
		{http.MethodPost, "/v1/orders", ClassCritical},
		{http.MethodPost, "/v1/orders/:id/cancel", ClassCritical},
		{http.MethodGet, "/v1/orders/:id", ClassNonCritical},
		{http.MethodGet, "/v1/products", ClassNonCritical},
		{http.MethodGet, "/v1/products/:sku", ClassNonCritical},
		{http.MethodPut, "/v1/products/:sku", ClassAdmin},
		{http.MethodPost, "/v1/admin/reindex", ClassAdmin},
		{http.MethodDelete, "/v1/something/new", ClassAdmin},
		{http.MethodGet, "/health", ""},
		{http.MethodGet, "/health/ready", ""},
		{http.MethodGet, "/metrics", ""},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, routeClass(tc.method, tc.route), "%s %s", tc.method, tc.route)
	}
}

// TestAFullClassIsShedAtOnceWhileOthersAnswer fills the admin class (one
// slot) with a PUT that waits on a row lock the test holds in PostgreSQL,
// the way a slow database holds real requests.
func TestAFullClassIsShedAtOnceWhileOthersAnswer(t *testing.T) {
	g := newGateway(t, stacktest.Redis(t), func(s *Server) {
		s.Bulkhead = config.Bulkhead{GatewayMaxFlight: 10, CriticalPct: 10, NonCriticalPct: 50, AdminPct: 10}
	})
	sku := stacktest.Product(t, g.pool, 500, 3)
	ctx := context.Background()

	tx, err := g.pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck
	var holder int
	require.NoError(t, tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&holder))
	_, err = tx.Exec(ctx, `SELECT 1 FROM inventory WHERE sku = $1 FOR UPDATE`, sku)
	require.NoError(t, err)

	body := map[string]any{"name": "held", "price_cents": 700, "on_hand": 9}
	first := make(chan answer, 1)
	go func() { first <- g.do(http.MethodPut, "/v1/products/"+sku, nil, body) }()

	// Wait until the PUT is in flight and blocked behind the test's lock.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var blocked int
		require.NoError(t, g.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))`, holder).Scan(&blocked))
		if blocked == 1 && g.srv.InFlight(ClassAdmin) == 1 {
			break
		}
		require.True(t, time.Now().Before(deadline), "the PUT never blocked on the lock")
		time.Sleep(20 * time.Millisecond)
	}

	a := g.do(http.MethodPut, "/v1/products/"+sku, nil, body)
	assert.Equal(t, http.StatusServiceUnavailable, a.status)
	assert.Equal(t, "overloaded", a.errorCode(t))
	assert.Equal(t, "1", a.header.Get("Retry-After"))
	assert.Equal(t, int64(1), g.srv.Shed(ClassAdmin))

	assert.Equal(t, http.StatusOK, g.do(http.MethodGet, "/v1/products/"+sku, nil, nil).status, "reads have their own class")
	assert.Equal(t, http.StatusOK, g.do(http.MethodGet, "/health", nil, nil).status, "health is never shed")
	assert.Zero(t, g.srv.Shed(ClassNonCritical))

	require.NoError(t, tx.Rollback(ctx))
	assert.Equal(t, http.StatusOK, (<-first).status, "the held request completes once the lock goes")
	assert.Equal(t, http.StatusOK, g.do(http.MethodPut, "/v1/products/"+sku, nil, body).status, "the slot is free again")
	assert.Equal(t, int64(1), g.srv.Shed(ClassAdmin))
}
