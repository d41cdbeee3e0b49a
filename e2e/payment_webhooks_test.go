package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v82/webhook"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/api"
	paysimsrv "github.com/orderflow/orderflow/devtools/paysim"
	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/workers"
)

// payStack is a stack whose simulated provider sends its signed webhooks
// to the gateway's POST /v1/webhooks/payments/{provider}.
type payStack struct {
	*stack
	paysim *paysimsrv.Server
	secret string
}

// newPayStack starts the gateway and a worker. A parked payment is retried
// only every 10 minutes (deadline 1 h), so an order that moves on within
// the tests' minute was moved by the provider's webhook; fulfil keeps
// confirmed orders' sagas running (waiting on a carrier that never comes).
func newPayStack(t *testing.T, fulfil bool) *payStack {
	t.Helper()
	p := &payStack{secret: "whsec_" + uuid.NewString()}
	name := "paysim-hooks-" + uuid.NewString()[:6]
	p.stack = newStack(t, false, func(srv *api.Server) {
		srv.Payment = api.PaymentSchedule{Deadline: time.Hour, RetryInitial: 10 * time.Minute, RetryMax: 10 * time.Minute}
		srv.PaymentWebhooks = api.PaymentWebhooks{Secrets: []string{"other-provider=whsec_0123456789abcdef", name + "=" + p.secret},
			Tolerance: time.Minute}
		srv.Fulfillment = api.Fulfillment{Enabled: fulfil, ShipmentSLA: time.Hour}
		withCodec(t)(srv)
	})
	srv, provider := testkit.Paysim(t, p.pool, name)
	p.paysim = srv
	require.NoError(t, srv.SetWebhooks(paysimsrv.Webhooks{URL: p.url + "/v1/webhooks/payments/" + name, Secret: p.secret}))
	t.Cleanup(srv.WaitWebhooks)
	w := workers.New(p.temporal, workers.Deps{DB: p.pool, Cache: p.rc, PII: testkit.PII(t), Payments: payment.NewRouter(e2eBreaker, provider)},
		workers.Config{Region: p.region})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	return p
}

// waitStatus polls the order until it has status, failing after a minute.
func (p *payStack) waitStatus(id, status string) api.OrderJSON {
	p.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		o, code := p.order(id)
		if code == http.StatusOK && o.Status == status {
			return o
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("order %s: status %s after a minute, want %s", id, o.Status, status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitFor polls cond every 50 ms for a minute.
func (p *payStack) waitFor(what string, cond func() bool) {
	p.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			p.t.Fatalf("not within a minute: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *payStack) count(q string, args ...any) int {
	p.t.Helper()
	var n int
	require.NoError(p.t, p.pool.QueryRow(context.Background(), q, args...).Scan(&n))
	return n
}

// pendingCharge is the provider's id of the order's pending charge.
func (p *payStack) pendingCharge(orderID string) string {
	p.t.Helper()
	var id string
	require.NoError(p.t, p.pool.QueryRow(context.Background(), `SELECT charge_id FROM payment_pending WHERE order_id = $1`, orderID).Scan(&id))
	return id
}

// chargeOf is the provider's id of the order's recorded charge.
func (p *payStack) chargeOf(orderID string) string {
	p.t.Helper()
	var id string
	require.NoError(p.t, p.pool.QueryRow(context.Background(), `SELECT charge_id FROM payments WHERE order_id = $1`, orderID).Scan(&id))
	return id
}

// post sends body to the provider's webhook route, signed with secret at signedAt.
func (p *payStack) post(provider string, body []byte, secret string, signedAt time.Time) response {
	p.t.Helper()
	h := map[string]string{"Authorization": ""}
	if secret != "" {
		h[api.StripeSignatureHeader] = webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: secret, Timestamp: signedAt}).Header
	}
	return p.do(http.MethodPost, "/v1/webhooks/payments/"+provider, h, body)
}

func eventJSON(id, typ string, object map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{"id": id, "object": "event", "type": typ, "created": time.Now().Unix(),
		"data": map[string]any{"object": object}})
	return b
}

func TestPaymentWebhookRouteVerifiesTheSignatureAndDedupesByEventID(t *testing.T) {
	p := newPayStack(t, false)
	name := p.paysim.Name()
	ev := eventJSON("evt_"+uuid.NewString(), "customer.created", map[string]any{"id": "cus_1"})
	now := time.Now()
	for _, c := range []struct {
		name     string
		provider string
		body     []byte
		secret   string
		header   string
		signedAt time.Time
		status   int
		code     string
	}{
		{"unknown provider", "no-such-provider", ev, p.secret, "", now, http.StatusNotFound, "unknown_provider"},
		{"no signature", name, ev, "", "", now, http.StatusBadRequest, "signature_missing"},
		{"malformed signature header", name, ev, "", "t=yesterday,v1=abc", now, http.StatusBadRequest, "signature_malformed"},
		{"another provider's secret", name, ev, "whsec_0123456789abcdef", "", now, http.StatusBadRequest, "signature_mismatch"},
		{"stale timestamp", name, ev, p.secret, "", now.Add(-2 * time.Minute), http.StatusBadRequest, "signature_stale"},
		{"malformed JSON", name, []byte(`{"id": "evt_1", "type":`), p.secret, "", now, http.StatusBadRequest, "malformed_json"},
		{"no event id", name, eventJSON("", "charge.succeeded", nil), p.secret, "", now, http.StatusBadRequest, "invalid_event"},
		{"a charge event without its id", name, eventJSON("evt_"+uuid.NewString(), "payment_intent.succeeded",
			map[string]any{"metadata": map[string]any{"order_id": uuid.NewString(), "charge_key": "charge-x"}}), p.secret, "", now,
			http.StatusBadRequest, "invalid_event"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := p.post(c.provider, c.body, c.secret, c.signedAt)
			if c.header != "" {
				r = p.do(http.MethodPost, "/v1/webhooks/payments/"+c.provider, map[string]string{"Authorization": "", api.StripeSignatureHeader: c.header}, c.body)
			}
			require.Equal(t, c.status, r.status, "%s", r.body)
			var e struct{ Error api.Error }
			r.json(t, &e)
			assert.Equal(t, c.code, e.Error.Code)
		})
	}

	var a api.PaymentEventAccepted
	r := p.post(name, ev, p.secret, time.Now())
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	r.json(t, &a)
	assert.Equal(t, "ignored", a.Status, "an event orderflow has no use for")
	assert.False(t, a.Duplicate)
	r = p.post(name, ev, p.secret, time.Now())
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	r.json(t, &a)
	assert.True(t, a.Duplicate, "the same event id again")
	assert.Equal(t, 1, p.count(`SELECT count(*) FROM payment_provider_events WHERE provider = $1`, name))
}

// A card that needs 3-D Secure parks the order; the provider's webhook,
// sent twice, wakes the saga, whose step records one charge.
func TestThreeDSecureChargeWaitsForTheWebhookAndConfirmsOnce(t *testing.T) {
	p := newPayStack(t, false)
	require.NoError(t, p.paysim.SetWebhooks(paysimsrv.Webhooks{URL: p.url + "/v1/webhooks/payments/" + p.paysim.Name(), Secret: p.secret,
		DuplicateRate: 1}))
	sku := testkit.Product(t, p.pool, 1200, 5)
	id := p.placeOK(newOrder(customer(), payment.TokenThreeDSecure, api.OrderItem{SKU: sku, Quantity: 1}))
	p.waitStatus(id, orderflow.StatusPaymentPending)
	status, err := p.paysim.CompleteThreeDSecure(context.Background(), p.pendingCharge(id), "succeeded")
	require.NoError(t, err)
	require.Equal(t, "succeeded", status)
	p.waitStatus(id, orderflow.StatusConfirmed)
	assert.Equal(t, p.pendingCharge(id), p.chargeOf(id), "the pending charge is the order's")
	p.paysim.WaitWebhooks()
	assert.Equal(t, 1, p.count(`SELECT count(*) FROM payments WHERE order_id = $1`, id), "one charge")
	assert.Equal(t, 1, p.count(`SELECT count(*) FROM payment_provider_events WHERE order_id = $1`, id),
		"the second copy of the event (the same id) was a duplicate")
}

// The customer gave up: the order was cancelled while it waited for the
// 3-D Secure step, which then succeeded. The late success, an
// authorization (authorize, then capture), is voided: never money held
// without an order.
func TestLateSuccessAfterCancelIsRefunded(t *testing.T) {
	p := newPayStack(t, false)
	sku := testkit.Product(t, p.pool, 900, 5)
	id := p.placeOK(newOrder(customer(), payment.TokenThreeDSecure, api.OrderItem{SKU: sku, Quantity: 1}))
	p.waitStatus(id, orderflow.StatusPaymentPending)
	r := p.do(http.MethodPost, "/v1/orders/"+id+"/cancel", map[string]string{api.HeaderIdempotencyKey: uuid.NewString()}, nil)
	require.Equal(t, http.StatusAccepted, r.status, "%s", r.body)
	p.waitStatus(id, orderflow.StatusCancelled)
	p.waitFor("the saga ended", func() bool {
		d, err := p.temporal.DescribeWorkflow(context.Background(), "order-"+id, "")
		return err == nil && d.WorkflowCloseTime != nil
	})
	charge := p.pendingCharge(id)
	_, err := p.paysim.CompleteThreeDSecure(context.Background(), charge, "succeeded")
	require.NoError(t, err)
	p.waitFor("the late authorization voided", func() bool {
		return p.count(`SELECT count(*) FROM payments WHERE order_id = $1 AND status = 'voided' AND charge_id = $2`, id, charge) == 1
	})
	assert.Equal(t, 1, p.count(`SELECT count(*) FROM payment_transactions WHERE order_id = $1 AND kind = 'void'`, id))
	assert.Equal(t, 0, p.count(`SELECT count(*) FROM payment_transactions WHERE order_id = $1 AND kind IN ('refund', 'capture')`, id),
		"nothing was captured, so nothing is refunded")
	o, _ := p.order(id)
	assert.Equal(t, orderflow.StatusCancelled, o.Status, "the order stays cancelled")
}

// A dispute moves the order to DISPUTED whether its saga ended long ago
// or still runs; a second event of the same dispute records nothing more.
func TestDisputeMovesTheOrderToDisputedOnceOnEndedAndRunningSagas(t *testing.T) {
	for _, running := range []bool{false, true} {
		t.Run(fmt.Sprintf("saga running %v", running), func(t *testing.T) {
			p := newPayStack(t, running)
			sku := testkit.Product(t, p.pool, 2500, 5)
			id := p.placeOK(newOrder(customer(), payment.TokenVisa, api.OrderItem{SKU: sku, Quantity: 1}))
			settled := orderflow.StatusConfirmed
			if running {
				settled = orderflow.StatusFulfilling
			}
			p.waitStatus(id, settled)
			d, err := p.temporal.DescribeWorkflow(context.Background(), "order-"+id, "")
			require.NoError(t, err)
			require.Equal(t, running, d.WorkflowCloseTime == nil, "the saga runs: %v", running)

			dispute, err := p.paysim.OpenDispute(context.Background(), p.chargeOf(id), "product_not_received")
			require.NoError(t, err)
			p.waitStatus(id, orderflow.StatusDisputed)
			// The chargeback of the same dispute, as Stripe sends it later.
			again := eventJSON("evt_"+uuid.NewString(), "charge.dispute.funds_withdrawn", map[string]any{"id": dispute, "object": "dispute",
				"charge": p.chargeOf(id), "amount": 2500, "currency": "usd", "reason": "product_not_received"})
			r := p.post(p.paysim.Name(), again, p.secret, time.Now())
			require.Equal(t, http.StatusOK, r.status, "%s", r.body)
			p.waitFor("the chargeback's workflow ended", func() bool {
				var a api.PaymentEventAccepted
				r.json(t, &a)
				d, err := p.temporal.DescribeWorkflow(context.Background(), "payment-event-"+p.paysim.Name()+"-"+a.EventID, "")
				return err == nil && d.WorkflowCloseTime != nil
			})
			assert.Equal(t, 1, p.count(`SELECT count(*) FROM payment_disputes WHERE order_id = $1`, id), "one dispute")
			assert.Equal(t, 1, p.count(`SELECT count(*) FROM event_outbox WHERE order_id = $1 AND type = 'order.disputed'`, id), "one event")
		})
	}
}

// paymentsTag tags the payment providers' webhook route in api/openapi.json.
const paymentsTag = "payments"

// TestPaymentWebhookRouteAnswersAsTheOpenAPIDocumentSays posts provider
// events through the contract: taken over, a duplicate, and refusals.
func TestPaymentWebhookRouteAnswersAsTheOpenAPIDocumentSays(t *testing.T) {
	p := newPayStack(t, false)
	c := newContract(t)
	name := p.paysim.Name()
	send := func(provider string, body []byte, secret string) int {
		req, err := http.NewRequest(http.MethodPost, p.url+"/v1/webhooks/payments/"+provider, bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(api.StripeSignatureHeader, webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: secret}).Header)
		res, err := (&http.Client{Transport: c}).Do(req)
		require.NoError(t, err)
		res.Body.Close()
		return res.StatusCode
	}
	ev := eventJSON("evt_"+uuid.NewString(), "charge.refunded", map[string]any{"id": "ch_1"})
	assert.Equal(t, http.StatusOK, send(name, ev, p.secret))
	assert.Equal(t, http.StatusOK, send(name, ev, p.secret), "a duplicate")
	assert.Equal(t, http.StatusBadRequest, send(name, ev, "whsec_not-the-providers-secret"))
	assert.Equal(t, http.StatusNotFound, send("no-such-provider", ev, p.secret))
	c.answeredEvery2xx(func(tags []string) bool { return slices.Contains(tags, paymentsTag) })
}
