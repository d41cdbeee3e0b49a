package api

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow/activities/orders"
	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/workflows/order"
)

// A request's X-Orderflow-Region must name a configured region (400
// unknown_region) served by this gateway (421 wrong_region); without it,
// or naming the gateway's own, the request is served.
func TestRegionHeaderMustNameAConfiguredRegionThisGatewayServes(t *testing.T) {
	g := newGateway(t, testkit.Redis(t), func(s *Server) { s.Region, s.Regions = "east", []string{"east", "west"} })
	customer := "c-" + uuid.NewString()
	cases := []struct {
		name   string
		header []string
		status int
		code   string
	}{
		{"no header", nil, http.StatusOK, ""},
		{"its own region", []string{HeaderRegion, "east"}, http.StatusOK, ""},
		{"the other configured region", []string{HeaderRegion, "west"}, http.StatusMisdirectedRequest, "wrong_region"},
		{"a region not configured", []string{HeaderRegion, "mars"}, http.StatusBadRequest, "unknown_region"},
		{"an empty region", []string{HeaderRegion, ""}, http.StatusBadRequest, "unknown_region"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := g.do(http.MethodGet, "/v1/orders", g.customer(customer, c.header...), nil)
			require.Equal(t, c.status, a.status, "%s", a.body)
			if c.code != "" {
				assert.Equal(t, c.code, a.errorCode(t))
			}
		})
	}
}

// Without ORDERFLOW_REGIONS only the gateway's own region may be named.
func TestRegionHeaderWithoutConfiguredRegionsNamesOnlyTheGatewaysRegion(t *testing.T) {
	g := newGateway(t, testkit.Redis(t), nil)
	customer := "c-" + uuid.NewString()
	a := g.do(http.MethodGet, "/v1/orders", g.customer(customer, HeaderRegion, "test"), nil)
	assert.Equal(t, http.StatusOK, a.status, "%s", a.body)
	a = g.do(http.MethodGet, "/v1/orders", g.customer(customer, HeaderRegion, "west"), nil)
	assert.Equal(t, http.StatusBadRequest, a.status, "%s", a.body)
}

// The acceptance record keeps the saga's start sealed (no personal data in
// the clear), and it opens to the input the gateway started the saga with:
// what a re-drive needs after a region's loss.
func TestPlacementKeepsTheSagasStartSealedInTheAcceptanceRecord(t *testing.T) {
	keys := testkit.PII(t)
	g := newGateway(t, testkit.Redis(t), func(s *Server) { s.PII = keys; s.AcceptCommit = "remote_apply" })
	sku := testkit.Product(t, g.pool, 700, 10)
	customer, key := "c-"+uuid.NewString(), "k-"+uuid.NewString()
	a := g.do(http.MethodPost, "/v1/orders", g.customer(customer, HeaderIdempotencyKey, key), map[string]any{
		"customer_id": customer, "email": "sealed@example.com", "payment_token": "tok_visa",
		"items": []map[string]any{{"sku": sku, "quantity": 2}}, "shipping_address": testAddress})
	require.Equal(t, http.StatusAccepted, a.status, "%s", a.body)
	var acc Accepted
	require.NoError(t, json.Unmarshal(a.body, &acc))

	var sealed []byte
	require.NoError(t, g.pool.QueryRow(context.Background(),
		`SELECT saga FROM idempotency_keys WHERE customer_id = $1 AND idempotency_key = $2`, customer, key).Scan(&sealed))
	require.NotEmpty(t, sealed)
	assert.NotContains(t, string(sealed), "sealed@example.com")
	var start order.Start
	require.NoError(t, orders.OpenStart(keys, acc.OrderID, sealed, &start))
	assert.Equal(t, acc.OrderID, start.Input.OrderID)
	assert.Equal(t, customer, start.Input.CustomerID)
	assert.Equal(t, "sealed@example.com", start.Input.Email)
	assert.Equal(t, "test", start.Input.Region)
	assert.EqualValues(t, 1400, start.TotalCents)
	require.Len(t, start.Input.Items, 1)
	assert.Equal(t, 2, start.Input.Items[0].Quantity)
	assert.Error(t, orders.OpenStart(keys, uuid.NewString(), sealed, &start), "the start is bound to its order")
}
