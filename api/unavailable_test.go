package api

import (
	"context"
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/db"
	"github.com/orderflow/orderflow/schema"
)

// The chaos run found PostgreSQL restarts answered with 500: a request that
// could not reach the database is a 503 with Retry-After, which the client
// may retry with the same Idempotency-Key.
func TestDatabaseDownIs503WithRetryAfterNever500(t *testing.T) {
	ctx := context.Background()
	pg := testkit.PostgresServer(t)
	pool, err := db.Open(ctx, pg.URL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, schema.Migrate(ctx, pool))
	g := newGateway(t, testkit.Redis(t), func(s *Server) { s.DB = pool })
	sku := "DOWN-" + uuid.NewString()[:8]
	require.Equal(t, http.StatusCreated, g.do(http.MethodPut, "/v1/products/"+sku, nil,
		map[string]any{"name": "down", "price_cents": 100, "on_hand": 5}).status)

	pg.Stop()
	order := map[string]any{"customer_id": "c-down", "email": "d@example.com", "payment_token": "tok_visa",
		"items": []map[string]any{{"sku": sku, "quantity": 1}}, "shipping_address": testAddress}
	for _, tc := range []struct {
		name, method, path string
		header             map[string]string
		body               any
	}{
		{"place an order", http.MethodPost, "/v1/orders", g.customer("c-down", HeaderIdempotencyKey, "down-"+uuid.NewString()), order},
		{"read an order", http.MethodGet, "/v1/orders/" + uuid.NewString(), nil, nil},
		{"change a product", http.MethodPut, "/v1/products/" + sku, nil, map[string]any{"name": "down", "price_cents": 100, "on_hand": 6}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := g.do(tc.method, tc.path, tc.header, tc.body)
			assert.Equal(t, http.StatusServiceUnavailable, a.status, "%s", a.body)
			assert.Equal(t, "service_unavailable", a.errorCode(t))
			assert.NotEmpty(t, a.header.Get("Retry-After"))
		})
	}
}
