package api

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/workflows/order"
)

// deferringGateway is a gateway that reaches the real test Temporal server
// through a path the test cuts, with deferred starts on.
func deferringGateway(t *testing.T, deferMax time.Duration) (*gateway, *tcpProxy, client.Client) {
	t.Helper()
	px, tc := proxiedTemporal(t)
	g := newGateway(t, testkit.Redis(t), func(s *Server) {
		s.Temporal, s.PII, s.StartDeferMax = tc, testkit.PII(t), deferMax
	})
	return g, px, tc
}

func (g *gateway) placeOne(customer, sku string) answer {
	g.t.Helper()
	a, err := g.post("/v1/orders", g.customer(customer, HeaderIdempotencyKey, "k-"+uuid.NewString()), map[string]any{
		"customer_id": customer, "email": "d@example.com", "payment_token": "tok_visa",
		"items": []map[string]any{{"sku": sku, "quantity": 2}}, "shipping_address": testAddress})
	require.NoError(g.t, err)
	return a
}

// While Temporal cannot take a start, a placement is accepted all the
// same: its durable acceptance record is marked, the customer reads the
// order as PENDING with its lines, a cancel is asked to retry (the saga is
// not there to hear it yet), and once Temporal is back the starter starts
// the saga from the record and clears the mark. With deferral off the same
// placement is a 503 (TestTemporalDownOpensItsBreakerAndPlacementsAre503WithRetryAfter).
func TestAPlacementTemporalCannotTakeIsAcceptedAndItsSagaStartedLater(t *testing.T) {
	g, px, tc := deferringGateway(t, time.Minute)
	sku := testkit.Product(t, g.pool, 700, 100)
	customer := "c-" + uuid.NewString()

	px.Cut()
	a := g.placeOne(customer, sku)
	require.Equal(t, http.StatusAccepted, a.status, "%s", a.body)
	var acc Accepted
	require.NoError(t, json.Unmarshal(a.body, &acc))
	require.Equal(t, orderflow.StatusPending, acc.Status)
	mark, found, err := g.srv.ordersStore().DeferredStart(context.Background(), acc.OrderID)
	require.NoError(t, err)
	require.True(t, found, "the acceptance record of %s is marked", acc.OrderID)
	assert.Equal(t, customer, mark.CustomerID)

	read := g.do(http.MethodGet, "/v1/orders/"+acc.OrderID, g.customer(customer), nil)
	require.Equal(t, http.StatusOK, read.status, "%s", read.body)
	var o OrderJSON
	require.NoError(t, json.Unmarshal(read.body, &o))
	assert.Equal(t, orderflow.StatusPending, o.Status)
	assert.Equal(t, []LineJSON{{SKU: sku, Quantity: 2, UnitPriceCents: 700}}, o.Items)
	assert.Equal(t, int64(1400), o.TotalCents)
	other := g.do(http.MethodGet, "/v1/orders/"+acc.OrderID, g.customer("c-"+uuid.NewString()), nil)
	assert.Equal(t, http.StatusNotFound, other.status, "another customer's deferred order: %s", other.body)

	cancel := g.do(http.MethodPost, "/v1/orders/"+acc.OrderID+"/cancel", g.customer(customer, HeaderIdempotencyKey, "c-"+uuid.NewString()), nil)
	assert.Equal(t, http.StatusServiceUnavailable, cancel.status, "%s", cancel.body)
	assert.Equal(t, "order_starting", cancel.errorCode(t))
	assert.NotEmpty(t, cancel.header.Get("Retry-After"))

	// Still cut: the starter's attempt fails and the mark stays.
	assert.Zero(t, g.srv.StartDeferred(context.Background()))
	_, found, err = g.srv.ordersStore().DeferredStart(context.Background(), acc.OrderID)
	require.NoError(t, err)
	require.True(t, found)

	px.Restore()
	require.Eventually(t, func() bool { return g.srv.StartDeferred(context.Background()) >= 1 }, 30*time.Second, 200*time.Millisecond)
	_, found, err = g.srv.ordersStore().DeferredStart(context.Background(), acc.OrderID)
	require.NoError(t, err)
	assert.False(t, found, "the mark is cleared once the saga is started")
	ctx, done := context.WithTimeout(context.Background(), 10*time.Second)
	defer done()
	d, err := tc.DescribeWorkflow(ctx, order.WorkflowID(acc.OrderID), "")
	require.NoError(t, err, "the starter started order-%s", acc.OrderID)
	owner, _ := d.TypedSearchAttributes.GetKeyword(order.CustomerIDKey)
	assert.Equal(t, customer, owner)
	total, _ := d.TypedSearchAttributes.GetInt64(order.OrderTotalCentsKey)
	assert.Equal(t, int64(1400), total)
}

// Deferral is bounded: once the oldest deferred start is older than
// StartDeferMax (Temporal unable to take starts for that long), new
// placements are refused with 503 and Retry-After again, and no mark is
// made for them.
func TestDeferredStartsStopOnceTheOldestIsOlderThanTheBound(t *testing.T) {
	const bound = 500 * time.Millisecond
	g, px, _ := deferringGateway(t, bound)
	sku := testkit.Product(t, g.pool, 300, 100)
	customer := "c-" + uuid.NewString()

	px.Cut()
	first := g.placeOne(customer, sku)
	require.Equal(t, http.StatusAccepted, first.status, "%s", first.body)
	// The starter's looks (still cut) find the mark and start nothing;
	// once the mark is older than the bound, deferral stops.
	require.Eventually(t, func() bool {
		return g.srv.StartDeferred(context.Background()) == 0 && !g.srv.canDefer()
	}, 10*time.Second, 100*time.Millisecond)

	second := g.placeOne(customer, sku)
	assertRetryLater(t, second)
	var n int
	require.NoError(t, g.pool.QueryRow(context.Background(),
		`SELECT count(*) FROM idempotency_keys WHERE customer_id = $1 AND start_deferred_at IS NOT NULL`, customer).Scan(&n))
	assert.Equal(t, 1, n, "only the first placement is marked")

	px.Restore()
	require.Eventually(t, func() bool { return g.srv.StartDeferred(context.Background()) >= 1 }, 30*time.Second, 200*time.Millisecond)
	assert.Zero(t, g.srv.StartDeferred(context.Background()))
	assert.True(t, g.srv.canDefer(), "with every mark started, deferral is possible again")
}

// While placements can be deferred, Temporal is no part of readiness: with
// the path to it cut and the breaker open, /health still reports Temporal
// failing, but /health/ready keeps the gateway in rotation (every gateway
// shares Temporal, so it would take them all out at once). Once deferral
// is not possible (its bound reached), readiness fails on Temporal again.
func TestAGatewayThatCanDeferStaysReadyWithoutTemporal(t *testing.T) {
	const bound = 500 * time.Millisecond
	g, px, _ := deferringGateway(t, bound)
	px.Cut()
	openTemporalBreaker(t, g.srv.Breaker(BreakerTemporal))

	status, rep := readyReport(t, g, "/health/ready")
	assert.Equal(t, http.StatusOK, status, "%+v", rep)
	assert.NotContains(t, rep.Checks, "temporal")
	h := g.do(http.MethodGet, "/health", nil, nil)
	assert.Equal(t, http.StatusServiceUnavailable, h.status, "%s", h.body)

	// A deferred placement, then its mark older than the bound.
	sku := testkit.Product(t, g.pool, 300, 100)
	require.Equal(t, http.StatusAccepted, g.placeOne("c-"+uuid.NewString(), sku).status)
	require.Eventually(t, func() bool {
		return g.srv.StartDeferred(context.Background()) == 0 && !g.srv.canDefer()
	}, 10*time.Second, 100*time.Millisecond)
	status, rep = readyReport(t, g, "/health/ready")
	assert.Equal(t, http.StatusServiceUnavailable, status, "%+v", rep)
	assert.Contains(t, rep.Failing, "temporal")
}
