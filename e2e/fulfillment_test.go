package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/catalog"
	"github.com/orderflow/orderflow/activities/fulfillment"
	"github.com/orderflow/orderflow/activities/fulfillment/wire"
	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/api"
	"github.com/orderflow/orderflow/client"
	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/workers"
)

// fulfilStack is a stack whose sagas fulfil their orders through the real
// simulated carrier process, which posts its signed events to the gateway.
type fulfilStack struct {
	*stack
	carrier *testkit.CarrierProc
	secret  string
	api     *client.Client
}

func newFulfilStack(t *testing.T, carrierSettings ...string) *fulfilStack {
	t.Helper()
	secret := "whsec-" + uuid.NewString()
	s := newStack(t, false, func(srv *api.Server) {
		srv.Fulfillment = api.Fulfillment{Enabled: true, ShipmentSLA: time.Hour, WebhookSecret: secret, EventTolerance: time.Minute}
	})
	f := &fulfilStack{stack: s, secret: secret}
	f.carrier = testkit.StartCarrier(t, s.url, secret, carrierSettings...)
	_, provider := testkit.Paysim(t, s.pool, "paysim-e2e")
	w := workers.New(s.temporal, workers.Deps{DB: s.pool, Cache: s.rc, PII: testkit.PII(t), Payments: payment.NewRouter(e2eBreaker, provider),
		Carrier: &fulfillment.Carrier{URL: f.carrier.URL}}, workers.Config{Region: s.region})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	f.api = client.New(s.url, client.WithToken(s.tok.Operator()))
	return f
}

// waitStatus polls the order until it has the status, failing the test
// after within.
func (f *fulfilStack) waitStatus(id, status string, within time.Duration) api.OrderJSON {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	_, err := f.api.AwaitStatus(ctx, id, 50*time.Millisecond, func(s string) bool { return s == status })
	require.NoError(f.t, err)
	o, code := f.order(id)
	require.Equal(f.t, http.StatusOK, code)
	return o
}

func historyOf(o api.OrderJSON) []string {
	var out []string
	for _, h := range o.History {
		out = append(out, h.Status)
	}
	return out
}

func TestFulfilledOrderIsSplitShippedAndDeliveredByTheSimulatedCarrier(t *testing.T) {
	f := newFulfilStack(t, "CARRIER_PICKUP_AFTER=200ms", "CARRIER_TRANSIT_AFTER=200ms", "CARRIER_DELIVER_AFTER=200ms")
	ctx := context.Background()
	a := testkit.Product(t, f.pool, 1250, 10)
	b := testkit.Product(t, f.pool, 300, 5)
	// b lies only in a second warehouse: the order ships in two parts.
	_, err := f.api.TransferStock(ctx, client.Transfer{SKU: b, From: "main", To: "e2e-east", Quantity: 5})
	require.NoError(t, err)

	id := f.placeOK(newOrder(customer(), payment.TokenVisa, api.OrderItem{SKU: a, Quantity: 2}, api.OrderItem{SKU: b, Quantity: 3}))
	o := f.waitStatus(id, orderflow.StatusDelivered, 30*time.Second)
	h := historyOf(o)
	assert.Subset(t, h, []string{"PENDING", "RESERVED", "AUTHORIZED", "CONFIRMED", "FULFILLING", "SHIPPED", "DELIVERED"})
	assert.NotContains(t, h, "PAID", "authorized, then captured shipment by shipment")
	// One capture per shipment, of its value, the last one final: together the order's total.
	var captures, finals int
	var captured int64
	require.NoError(t, f.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE final), coalesce(sum(amount_cents), 0)::bigint
		FROM payment_captures WHERE order_id = $1`, id).Scan(&captures, &finals, &captured))
	assert.Equal(t, [3]int64{2, 1, o.TotalCents}, [3]int64{int64(captures), int64(finals), captured})
	assert.Equal(t, "DELIVERED", h[len(h)-1])

	got, err := f.api.OrderShipments(ctx, id)
	require.NoError(t, err)
	require.Len(t, got.Shipments, 2)
	byWarehouse := map[string]client.Shipment{}
	for _, s := range got.Shipments {
		byWarehouse[s.Warehouse] = s
		assert.Equal(t, fulfillment.ShipmentDelivered, s.Status)
		assert.Regexp(t, `^SIM-[0-9A-F]{12}$`, s.TrackingNumber)
		assert.NotNil(t, s.DeliveredAt)
	}
	assert.Equal(t, []orderflow.Item{{SKU: a, Quantity: 2}}, byWarehouse["main"].Items)
	assert.Equal(t, []orderflow.Item{{SKU: b, Quantity: 3}}, byWarehouse["e2e-east"].Items)

	// Stock left once, from the warehouse each shipment came from.
	assert.Equal(t, [2]int{8, 0}, stockOf(t, f.stack, a))
	assert.Equal(t, [2]int{2, 0}, stockOf(t, f.stack, b))
	for _, sku := range []string{a, b} {
		r, err := catalog.ReplayWarehouses(ctx, f.pool, sku)
		require.NoError(t, err)
		assert.Equal(t, r.Rows, r.Events, "%s: the log replays to every warehouse", sku)
		onHand, reserved, violated := testkit.ReplayEvents(t, f.pool, sku)
		assert.NoError(t, violated)
		assert.Equal(t, stockOf(t, f.stack, sku), [2]int{onHand, reserved})
	}
	var kinds []string
	rows, err := f.pool.Query(ctx, `SELECT kind FROM notifications WHERE order_id = $1 ORDER BY kind`, id)
	require.NoError(t, err)
	for rows.Next() {
		var k string
		require.NoError(t, rows.Scan(&k))
		kinds = append(kinds, k)
	}
	assert.Equal(t, []string{"order_confirmed", "order_delivered", "order_shipped"}, kinds)
}

func TestCancelAfterConfirmationRefundsReleasesAndOnceShippedAnswersAlreadyShipped(t *testing.T) {
	// The carrier takes its time: the test decides when parcels leave.
	f := newFulfilStack(t, "CARRIER_PICKUP_AFTER=1h")
	ctx := context.Background()
	sku := testkit.Product(t, f.pool, 700, 10)

	id := f.placeOK(newOrder(customer(), payment.TokenVisa, api.OrderItem{SKU: sku, Quantity: 3}))
	f.waitStatus(id, orderflow.StatusFulfilling, 30*time.Second)
	assert.Equal(t, [2]int{10, 3}, stockOf(t, f.stack, sku), "confirmed, not yet left: still reserved")
	ca, err := f.api.CancelOrder(ctx, id)
	require.NoError(t, err)
	assert.True(t, ca.CancelRequested)
	o := f.waitStatus(id, orderflow.StatusCancelled, 30*time.Second)
	assert.Contains(t, historyOf(o), "FULFILLING")
	assert.Equal(t, [2]int{10, 0}, stockOf(t, f.stack, sku), "the stock is back")
	var voids, captures int
	require.NoError(t, f.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE kind = 'void' AND idempotency_key = $2),
		count(*) FILTER (WHERE kind = 'capture') FROM payment_transactions WHERE order_id = $1`,
		id, payment.VoidKey(payment.AuthorizationKey(id, 1))).Scan(&voids, &captures))
	assert.Equal(t, [2]int{1, 0}, [2]int{voids, captures}, "nothing captured; the authorization voided once, under void-<order>")
	got, err := f.api.OrderShipments(ctx, id)
	require.NoError(t, err)
	assert.Empty(t, got.Shipments, "the shipments were withdrawn")

	// A second order leaves the warehouse (the carrier's signed event, sent
	// here), after which a cancel is refused and points to returns.
	id2 := f.placeOK(newOrder(customer(), payment.TokenVisa, api.OrderItem{SKU: sku, Quantity: 2}))
	f.waitStatus(id2, orderflow.StatusFulfilling, 30*time.Second)
	got, err = f.api.OrderShipments(ctx, id2)
	require.NoError(t, err)
	require.Len(t, got.Shipments, 1)
	_, err = f.api.PostCarrierEvent(ctx, got.Shipments[0].ShipmentID,
		wire.Event{EventID: "e2e-" + uuid.NewString(), Type: wire.EventPickedUp, At: time.Now().UTC()}, []byte(f.secret), time.Now())
	require.NoError(t, err)
	f.waitStatus(id2, orderflow.StatusShipped, 30*time.Second)
	_, err = f.api.CancelOrder(ctx, id2)
	var ce *client.Error
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, http.StatusConflict, ce.Status)
	assert.Equal(t, "already_shipped", ce.Code)
	assert.Contains(t, ce.Error(), "return")
	assert.Equal(t, [2]int{8, 0}, stockOf(t, f.stack, sku), "the shipped units left, nothing else")
}

func TestCarrierEventRouteAnswersBadInputWith4xxAndDedupesByEventID(t *testing.T) {
	f := newFulfilStack(t, "CARRIER_PICKUP_AFTER=1h")
	ctx := context.Background()
	sku := testkit.Product(t, f.pool, 700, 10)
	id := f.placeOK(newOrder(customer(), payment.TokenVisa, api.OrderItem{SKU: sku, Quantity: 1}))
	f.waitStatus(id, orderflow.StatusFulfilling, 30*time.Second)
	got, err := f.api.OrderShipments(ctx, id)
	require.NoError(t, err)
	require.Len(t, got.Shipments, 1)
	ship := got.Shipments[0].ShipmentID
	secret := []byte(f.secret)
	now := time.Now()
	ev := func(typ string) wire.Event {
		return wire.Event{EventID: "e2e-" + uuid.NewString(), Type: typ, At: now.UTC()}
	}
	// No bearer token: the carrier proves itself by its signature alone.
	carrier := client.New(f.url)

	for _, c := range []struct {
		name     string
		shipment string
		event    wire.Event
		secret   []byte
		signedAt time.Time
		status   int
		code     string
	}{
		{"wrong secret", ship, ev("picked_up"), []byte("not-the-secret"), now, http.StatusUnauthorized, "bad_signature"},
		{"stale signature", ship, ev("picked_up"), secret, now.Add(-time.Hour), http.StatusUnauthorized, "bad_signature"},
		{"unknown shipment", uuid.NewString(), ev("picked_up"), secret, now, http.StatusNotFound, "shipment_not_found"},
		{"not a shipment id", "nope", ev("picked_up"), secret, now, http.StatusNotFound, "shipment_not_found"},
		{"unknown type", ship, ev("teleported"), secret, now, http.StatusBadRequest, "invalid_request"},
		{"no event id", ship, wire.Event{Type: "picked_up", At: now}, secret, now, http.StatusBadRequest, "invalid_request"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := carrier.PostCarrierEvent(ctx, c.shipment, c.event, c.secret, c.signedAt)
			var ce *client.Error
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, c.status, ce.Status)
			assert.Equal(t, c.code, ce.Code)
		})
	}
	r := f.do(http.MethodPost, "/v1/shipments/"+ship+"/events", map[string]string{"Authorization": ""}, []byte(`{"event_id":"x","type":"picked_up","at":"2026-01-01T00:00:00Z"}`))
	assert.Equal(t, http.StatusUnauthorized, r.status, "unsigned: %s", r.body)
	var body map[string]map[string]any
	require.NoError(t, json.Unmarshal(r.body, &body))
	assert.Equal(t, "bad_signature", body["error"]["code"])

	first := ev("in_transit")
	a, err := carrier.PostCarrierEvent(ctx, ship, first, secret, now)
	require.NoError(t, err)
	assert.False(t, a.Duplicate)
	assert.Equal(t, "accepted", a.Status)
	a, err = carrier.PostCarrierEvent(ctx, ship, first, secret, time.Now())
	require.NoError(t, err)
	assert.True(t, a.Duplicate, "the same event id again")
	f.waitStatus(id, orderflow.StatusShipped, 30*time.Second)
	assert.Equal(t, [2]int{9, 0}, stockOf(t, f.stack, sku), "in_transit first still commits the stock, once")
}

func stockOf(t *testing.T, s *stack, sku string) [2]int {
	st := testkit.StockOf(t, s.pool, sku)
	return [2]int{st.OnHand, st.Reserved}
}
