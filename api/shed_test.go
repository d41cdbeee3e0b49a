package api

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow/devtools/testkit"
	bh "github.com/orderflow/orderflow/internal/bulkhead"
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

// TestAFullClassIsShedAtOnceWhileOthersAnswer fills a class of one slot
// with a request that waits on a row lock the test holds in PostgreSQL, the
// way a slow database holds real requests, and sends a second request of the
// same class and a read.
func TestAFullClassIsShedAtOnceWhileOthersAnswer(t *testing.T) {
	g := newGateway(t, testkit.Redis(t), func(s *Server) {
		s.Bulkhead = Bulkhead{MaxInFlight: 10, Shares: bh.Shares{CriticalPct: 10, NonCriticalPct: 50, AdminPct: 10}}
	})
	sku := testkit.Product(t, g.pool, 500, 3)
	product := map[string]any{"name": "held", "price_cents": 700, "on_hand": 9}
	customer, key := "c-"+uuid.NewString(), "k-"+uuid.NewString()
	order := map[string]any{"customer_id": customer, "items": []map[string]any{{"sku": sku, "quantity": 1}},
		"payment_token": "tok_visa", "email": "a@b.co", "shipping_address": testAddress}
	orderHeader := g.customer(customer, HeaderIdempotencyKey, key)

	cases := []struct {
		class string
		// lock takes, in the test's transaction, the row the request waits on.
		lock     string
		lockArgs []any
		method   string
		path     string
		header   map[string]string
		body     any
		// held is the held request's answer once the lock goes.
		held int
	}{
		{ClassAdmin, `SELECT 1 FROM inventory WHERE sku = $1 FOR UPDATE`, []any{sku},
			http.MethodPut, "/v1/products/" + sku, nil, product, http.StatusOK},
		// The test claims the order's Idempotency-Key first, for another
		// body: the gateway's claim waits for that insert, then finds the
		// key taken (422) without ever reaching Temporal.
		{ClassCritical, `INSERT INTO idempotency_keys (customer_id, operation, idempotency_key, request_hash, order_id, response_status, response_body, expires_at)
			VALUES ($1, 'create_order', $2, '\x00', gen_random_uuid(), 202, '{}', now() + interval '1 hour')`, []any{customer, key},
			http.MethodPost, "/v1/orders", orderHeader, order, http.StatusUnprocessableEntity},
	}
	for _, tc := range cases {
		t.Run(tc.class, func(t *testing.T) {
			ctx := context.Background()
			shed := g.srv.Shed(tc.class)
			tx, err := g.pool.Begin(ctx)
			require.NoError(t, err)
			defer tx.Rollback(ctx) //nolint:errcheck
			var holder int
			require.NoError(t, tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&holder))
			_, err = tx.Exec(ctx, tc.lock, tc.lockArgs...)
			require.NoError(t, err)

			first := make(chan answer, 1)
			go func() { first <- g.do(tc.method, tc.path, tc.header, tc.body) }()
			// Wait until the request is in flight and blocked behind the lock.
			deadline := time.Now().Add(10 * time.Second)
			for {
				var blocked int
				require.NoError(t, g.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))`, holder).Scan(&blocked))
				if blocked == 1 && g.srv.InFlight(tc.class) == 1 {
					break
				}
				require.True(t, time.Now().Before(deadline), "the request never blocked on the lock")
				time.Sleep(20 * time.Millisecond)
			}

			a := g.do(tc.method, tc.path, tc.header, tc.body)
			assert.Equal(t, http.StatusServiceUnavailable, a.status)
			assert.Equal(t, "overloaded", a.errorCode(t))
			assert.Equal(t, "1", a.header.Get("Retry-After"))
			assert.Equal(t, shed+1, g.srv.Shed(tc.class))

			assert.Equal(t, http.StatusOK, g.do(http.MethodGet, "/v1/products/"+sku, nil, nil).status, "reads have their own class")
			assert.Equal(t, http.StatusOK, g.do(http.MethodGet, "/health", nil, nil).status, "health is never shed")
			assert.Zero(t, g.srv.Shed(ClassNonCritical))

			require.NoError(t, tx.Commit(ctx))
			held := <-first
			assert.Equal(t, tc.held, held.status, "the held request completes once the lock goes: %s", held.body)
			assert.Zero(t, g.srv.InFlight(tc.class), "the slot is free again")
		})
	}
}
