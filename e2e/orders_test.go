package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/api"
	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/workers"
	"github.com/orderflow/orderflow/workflows/maintenance"
	"github.com/orderflow/orderflow/workflows/order"
)

func customer() string { return "c-" + uuid.NewString()[:12] }

func TestHappyPathConfirmsAndDecrementsStockExactly(t *testing.T) {
	s := newStack(t, true)
	a := testkit.Product(t, s.pool, 1250, 10)
	b := testkit.Product(t, s.pool, 300, 5)

	r := s.place("k-"+uuid.NewString(), newOrder(customer(), payment.TokenVisa,
		api.OrderItem{SKU: a, Quantity: 2}, api.OrderItem{SKU: b, Quantity: 3}))
	require.Equal(t, http.StatusAccepted, r.status, string(r.body))
	var acc api.Accepted
	r.json(t, &acc)
	assert.Equal(t, "PENDING", acc.Status)
	assert.Equal(t, "/v1/orders/"+acc.OrderID, r.header.Get("Location"))

	o := s.waitTerminal(acc.OrderID)
	require.Equal(t, orderflow.StatusConfirmed, o.Status)
	assert.Nil(t, o.FailureReason)
	assert.Equal(t, int64(2*1250+3*300), o.TotalCents)
	assert.Equal(t, "USD", o.Currency)
	require.Len(t, o.Items, 2)
	assert.Equal(t, int64(1250), o.Items[0].UnitPriceCents)
	var statuses []string
	for _, h := range o.History {
		statuses = append(statuses, h.Status)
	}
	assert.Equal(t, []string{"PENDING", "RESERVED", "AUTHORIZED", "PAID", "CONFIRMED"}, statuses,
		"authorized, then captured in full (PAID) as it is confirmed")

	assert.Equal(t, testkit.Stock{OnHand: 8, Reserved: 0, Version: 3}, testkit.StockOf(t, s.pool, a))
	assert.Equal(t, testkit.Stock{OnHand: 2, Reserved: 0, Version: 3}, testkit.StockOf(t, s.pool, b))
	onHand, reserved, violated := testkit.ReplayEvents(t, s.pool, a)
	assert.NoError(t, violated)
	assert.Equal(t, [2]int{8, 0}, [2]int{onHand, reserved}, "inventory_events replays to the row")

	var charged int64
	require.NoError(t, s.pool.QueryRow(context.Background(),
		`SELECT coalesce(sum(amount_cents), 0) FROM payment_transactions WHERE order_id = $1 AND kind IN ('charge', 'capture')`, acc.OrderID).Scan(&charged))
	assert.Equal(t, o.TotalCents, charged, "exactly one capture of the total")

	var notes int
	require.NoError(t, s.pool.QueryRow(context.Background(), `SELECT count(*) FROM notifications WHERE order_id = $1`, acc.OrderID).Scan(&notes))
	assert.Equal(t, 1, notes)

	// The product API shows the new counts (the saga invalidated the cache tier).
	p := s.do(http.MethodGet, "/v1/products/"+a, nil, nil)
	require.Equal(t, http.StatusOK, p.status)
	var pj api.ProductJSON
	p.json(t, &pj)
	assert.Equal(t, 8, pj.OnHand)
	assert.Equal(t, 8, pj.Available)
}

func TestOutOfStockFailsAndLeavesStockUnchanged(t *testing.T) {
	s := newStack(t, true)
	plenty := testkit.Product(t, s.pool, 100, 50)
	scarce := testkit.Product(t, s.pool, 100, 1)

	id := s.placeOK(newOrder(customer(), payment.TokenVisa,
		api.OrderItem{SKU: plenty, Quantity: 5}, api.OrderItem{SKU: scarce, Quantity: 2}))
	o := s.waitTerminal(id)
	require.Equal(t, orderflow.StatusFailed, o.Status)
	require.NotNil(t, o.FailureReason)
	assert.Equal(t, order.ReasonOutOfStock, *o.FailureReason)
	assert.Equal(t, testkit.Stock{OnHand: 50, Version: 1}, testkit.StockOf(t, s.pool, plenty), "the line that fitted was not held either")
	assert.Equal(t, testkit.Stock{OnHand: 1, Version: 1}, testkit.StockOf(t, s.pool, scarce))
	var txs int
	require.NoError(t, s.pool.QueryRow(context.Background(), `SELECT count(*) FROM payment_transactions WHERE order_id = $1`, id).Scan(&txs))
	assert.Zero(t, txs, "no payment attempted")
}

func TestDeclinedCardFailsRestoresStockAndChargesNothing(t *testing.T) {
	s := newStack(t, true)
	sku := testkit.Product(t, s.pool, 999, 4)

	id := s.placeOK(newOrder(customer(), payment.TokenChargeDeclined, api.OrderItem{SKU: sku, Quantity: 3}))
	o := s.waitTerminal(id)
	require.Equal(t, orderflow.StatusFailed, o.Status)
	require.NotNil(t, o.FailureReason)
	assert.Equal(t, order.ReasonPaymentDeclined, *o.FailureReason)

	st := testkit.StockOf(t, s.pool, sku)
	assert.Equal(t, 4, st.OnHand)
	assert.Equal(t, 0, st.Reserved)
	assert.Equal(t, int64(3), st.Version, "reserved once, released once")

	var charges, declines, payments int
	ctx := context.Background()
	require.NoError(t, s.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE kind = 'charge'), count(*) FILTER (WHERE kind = 'decline')
		FROM payment_transactions WHERE order_id = $1`, id).Scan(&charges, &declines))
	require.NoError(t, s.pool.QueryRow(ctx, `SELECT count(*) FROM payments WHERE order_id = $1`, id).Scan(&payments))
	assert.Zero(t, charges)
	assert.Equal(t, 1, declines)
	assert.Zero(t, payments)
	var statuses []string
	for _, h := range o.History {
		statuses = append(statuses, h.Status)
	}
	assert.Equal(t, []string{"PENDING", "RESERVED", "COMPENSATING", "FAILED"}, statuses)
}

func TestFlakyProviderStillConfirmsWithOneCharge(t *testing.T) {
	s := newStack(t, true)
	sku := testkit.Product(t, s.pool, 700, 3)
	id := s.placeOK(newOrder(customer(), payment.TokenFlaky, api.OrderItem{SKU: sku, Quantity: 1}))
	o := s.waitTerminal(id)
	require.Equal(t, orderflow.StatusConfirmed, o.Status)
	var charges, errs int
	require.NoError(t, s.pool.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE kind IN ('charge', 'capture')), count(*) FILTER (WHERE kind = 'error')
		FROM payment_transactions WHERE order_id = $1`, id).Scan(&charges, &errs))
	assert.Equal(t, 1, charges)
	assert.Equal(t, 2, errs, "two transient failures were audited")
}

func TestProviderDownPastThePaymentDeadlineParksThenFailsAndRestoresStock(t *testing.T) {
	s := newStack(t, true)
	sku := testkit.Product(t, s.pool, 700, 3)
	id := s.placeOK(newOrder(customer(), payment.TokenUnavailable, api.OrderItem{SKU: sku, Quantity: 2}))
	o := s.waitTerminal(id)
	require.Equal(t, orderflow.StatusFailed, o.Status)
	assert.Equal(t, order.ReasonPaymentUnavailable, *o.FailureReason)
	var errs, parked int
	require.NoError(t, s.pool.QueryRow(context.Background(), `SELECT count(*) FROM payment_transactions WHERE order_id = $1 AND kind = 'error'`, id).Scan(&errs))
	assert.Greater(t, errs, 5, "the design's five attempts, then more while parked")
	require.NoError(t, s.pool.QueryRow(context.Background(), `SELECT count(*) FROM order_status_history WHERE order_id = $1 AND status = 'PAYMENT_PENDING'`, id).Scan(&parked))
	assert.Equal(t, 1, parked, "the order was parked in PAYMENT_PENDING")
	assert.Equal(t, 0, testkit.StockOf(t, s.pool, sku).Reserved)
	assert.Equal(t, 3, testkit.StockOf(t, s.pool, sku).OnHand)
}

func TestSameKeySameBodyReplaysFirstResponse(t *testing.T) {
	s := newStack(t, true)
	sku := testkit.Product(t, s.pool, 100, 10)
	key := "replay-" + uuid.NewString()
	req := newOrder(customer(), payment.TokenVisa, api.OrderItem{SKU: sku, Quantity: 1})

	first := s.place(key, req)
	require.Equal(t, http.StatusAccepted, first.status, string(first.body))
	assert.Empty(t, first.header.Get(api.HeaderReplayed))
	var a api.Accepted
	first.json(t, &a)
	s.waitTerminal(a.OrderID)

	second := s.place(key, req)
	require.Equal(t, http.StatusAccepted, second.status)
	assert.Equal(t, "true", second.header.Get(api.HeaderReplayed))
	assert.JSONEq(t, string(first.body), string(second.body))
	assert.Equal(t, first.header.Get("Location"), second.header.Get("Location"))

	assert.Equal(t, 9, testkit.StockOf(t, s.pool, sku).OnHand, "the replay placed no second order")
	var orders int
	require.NoError(t, s.pool.QueryRow(context.Background(), `SELECT count(*) FROM orders WHERE customer_id = $1`, req.CustomerID).Scan(&orders))
	assert.Equal(t, 1, orders)
}

func TestSameKeyDifferentBodyIs422(t *testing.T) {
	s := newStack(t, true)
	sku := testkit.Product(t, s.pool, 100, 10)
	key := "reuse-" + uuid.NewString()
	req := newOrder(customer(), payment.TokenVisa, api.OrderItem{SKU: sku, Quantity: 1})
	require.Equal(t, http.StatusAccepted, s.place(key, req).status)

	req.Items[0].Quantity = 2
	r := s.place(key, req)
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	var e struct{ Error api.Error }
	r.json(t, &e)
	assert.Equal(t, "idempotency_key_reused", e.Error.Code)
}

func TestTwentyConcurrentRequestsWithOneKeyStartOneWorkflow(t *testing.T) {
	s := newStack(t, true)
	sku := testkit.Product(t, s.pool, 100, 100)
	key := "burst-" + uuid.NewString()
	req := newOrder(customer(), payment.TokenVisa, api.OrderItem{SKU: sku, Quantity: 1})

	const n = 20
	var wg sync.WaitGroup
	results := make([]response, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i] = s.place(key, req)
		}()
	}
	close(start)
	wg.Wait()

	ids := map[string]int{}
	fresh := 0
	for _, r := range results {
		require.Equal(t, http.StatusAccepted, r.status, string(r.body))
		var a api.Accepted
		r.json(t, &a)
		ids[a.OrderID]++
		if r.header.Get(api.HeaderReplayed) == "" {
			fresh++
		}
	}
	require.Len(t, ids, 1, "every request got the same order_id")
	assert.Equal(t, 1, fresh, "exactly one request was not a replay")
	var id string
	for k := range ids {
		id = k
	}
	assert.Equal(t, orderflow.StatusConfirmed, s.waitTerminal(id).Status)
	assert.Equal(t, 99, testkit.StockOf(t, s.pool, sku).OnHand, "one order, one unit")
	require.Eventually(t, func() bool { return s.workflowsOf(req.CustomerID) == 1 }, 10*time.Second, 100*time.Millisecond,
		"visibility shows exactly one workflow for the customer")
}

func TestThirtyConcurrentOrdersForTenUnitsConfirmExactlyTen(t *testing.T) {
	s := newStack(t, true)
	sku := testkit.Product(t, s.pool, 100, 10)

	const n = 30
	ids := make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ids[i] = s.placeOK(newOrder(customer(), payment.TokenVisa, api.OrderItem{SKU: sku, Quantity: 1}))
		}()
	}
	close(start)
	wg.Wait()

	count := map[string]int{}
	for _, id := range ids {
		o := s.waitTerminal(id)
		count[o.Status]++
		if o.Status == orderflow.StatusFailed {
			assert.Equal(t, order.ReasonOutOfStock, *o.FailureReason)
		}
	}
	assert.Equal(t, map[string]int{orderflow.StatusConfirmed: 10, orderflow.StatusFailed: 20}, count)
	st := testkit.StockOf(t, s.pool, sku)
	assert.Equal(t, 0, st.OnHand)
	assert.Equal(t, 0, st.Reserved)
	onHand, reserved, violated := testkit.ReplayEvents(t, s.pool, sku)
	assert.NoError(t, violated, "stock never went negative")
	assert.Equal(t, [2]int{0, 0}, [2]int{onHand, reserved})
}

func TestBadInputIs4xxWithJSONErrorAndStartsNothing(t *testing.T) {
	s := newStack(t, true)
	sku := testkit.Product(t, s.pool, 100, 10)
	cust := customer()
	valid := func() orderReq { return newOrder(cust, payment.TokenVisa, api.OrderItem{SKU: sku, Quantity: 1}) }
	encode := func(o orderReq) []byte { b, _ := json.Marshal(o); return b }
	many := valid()
	for range 50 {
		many.Items = append(many.Items, api.OrderItem{SKU: sku, Quantity: 1})
	}

	cases := []struct {
		name   string
		key    *string
		ctype  string
		body   []byte
		status int
		code   string
	}{
		{name: "missing idempotency key", key: ptr(""), body: encode(valid()), status: 400, code: "idempotency_key_required"},
		{name: "idempotency key too long", key: ptr(strings.Repeat("k", 256)), body: encode(valid()), status: 400, code: "invalid_idempotency_key"},
		{name: "idempotency key not ascii", key: ptr("ключ"), body: encode(valid()), status: 400, code: "invalid_idempotency_key"},
		{name: "malformed json", body: []byte(`{"customer_id":`), status: 400, code: "malformed_json"},
		{name: "not an object", body: []byte(`[1,2]`), status: 400, code: "invalid_request"},
		{name: "empty body", body: []byte(``), status: 400, code: "malformed_json"},
		{name: "trailing data", body: append(encode(valid()), []byte(`{}`)...), status: 400, code: "malformed_json"},
		{name: "unknown field", body: []byte(fmt.Sprintf(`{"customer_id":%q,"items":[{"sku":%q,"quantity":1}],"payment_token":"tok_visa","email":"a@b.co","price_cents":1}`, cust, sku)), status: 400, code: "unknown_field"},
		{name: "unknown field in item", body: []byte(fmt.Sprintf(`{"customer_id":%q,"items":[{"sku":%q,"quantity":1,"unit_price_cents":1}],"payment_token":"tok_visa","email":"a@b.co"}`, cust, sku)), status: 400, code: "unknown_field"},
		{name: "wrong type", body: []byte(fmt.Sprintf(`{"customer_id":%q,"items":[{"sku":%q,"quantity":"1"}],"payment_token":"tok_visa","email":"a@b.co"}`, cust, sku)), status: 400, code: "invalid_request"},
		{name: "empty items", body: encode(newOrder(cust, payment.TokenVisa)), status: 400, code: "invalid_request"},
		{name: "more than 50 lines", body: encode(many), status: 400, code: "invalid_request"},
		{name: "quantity zero", body: encode(newOrder(cust, payment.TokenVisa, api.OrderItem{SKU: sku, Quantity: 0})), status: 400, code: "invalid_request"},
		{name: "quantity negative", body: encode(newOrder(cust, payment.TokenVisa, api.OrderItem{SKU: sku, Quantity: -3})), status: 400, code: "invalid_request"},
		{name: "quantity over 1000", body: encode(newOrder(cust, payment.TokenVisa, api.OrderItem{SKU: sku, Quantity: 1001})), status: 400, code: "invalid_request"},
		{name: "unknown sku", body: encode(newOrder(cust, payment.TokenVisa, api.OrderItem{SKU: "NO-SUCH-SKU-" + uuid.NewString()[:8], Quantity: 1})), status: 422, code: "unknown_sku"},
		{name: "missing payment token", body: encode(newOrder(cust, "", api.OrderItem{SKU: sku, Quantity: 1})), status: 400, code: "invalid_request"},
		{name: "bad email", body: []byte(fmt.Sprintf(`{"customer_id":%q,"items":[{"sku":%q,"quantity":1}],"payment_token":"tok_visa","email":"not-an-email"}`, cust, sku)), status: 400, code: "invalid_request"},
		{name: "another customer than the token's", body: encode(newOrder(customer(), payment.TokenVisa, api.OrderItem{SKU: sku, Quantity: 1})), status: 403, code: "customer_mismatch"},
		{name: "body over 64 KiB", body: []byte(`{"customer_id":"` + strings.Repeat("x", 70<<10) + `"}`), status: 413, code: "body_too_large"},
		{name: "not json content type", ctype: "text/plain", body: encode(valid()), status: 415, code: "unsupported_media_type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key := "bad-" + uuid.NewString()
			if tc.key != nil {
				key = *tc.key
			}
			h := map[string]string{"Authorization": s.as(cust)}
			if key != "" {
				h[api.HeaderIdempotencyKey] = key
			}
			if tc.ctype != "" {
				h["Content-Type"] = tc.ctype
			}
			r := s.do(http.MethodPost, "/v1/orders", h, tc.body)
			require.Equal(t, tc.status, r.status, string(r.body))
			assert.Equal(t, "application/json", strings.Split(r.header.Get("Content-Type"), ";")[0])
			var e struct{ Error api.Error }
			r.json(t, &e)
			assert.Equal(t, tc.code, e.Error.Code)
			assert.NotEmpty(t, e.Error.Message)
		})
	}

	ctx := context.Background()
	var keys, orders int
	require.NoError(t, s.pool.QueryRow(ctx, `SELECT count(*) FROM idempotency_keys WHERE customer_id = $1`, cust).Scan(&keys))
	require.NoError(t, s.pool.QueryRow(ctx, `SELECT count(*) FROM orders WHERE customer_id = $1`, cust).Scan(&orders))
	assert.Zero(t, keys, "no idempotency key was stored")
	assert.Zero(t, orders, "no order was written")
	assert.Equal(t, 10, testkit.StockOf(t, s.pool, sku).OnHand)

	// Control: a valid order from the same customer does show up in visibility,
	// so the zero count below is not an artefact of the query.
	id := s.placeOK(valid())
	s.waitTerminal(id)
	require.Eventually(t, func() bool { return s.workflowsOf(cust) == 1 }, 10*time.Second, 100*time.Millisecond,
		"only the valid order started a workflow")
}

func ptr[T any](v T) *T { return &v }

func TestGetUnknownOrderIs404(t *testing.T) {
	s := newStack(t, false)
	for _, id := range []string{uuid.NewString(), "not-a-uuid"} {
		_, status := s.order(id)
		assert.Equal(t, http.StatusNotFound, status, id)
	}
}

func TestCancelBeforeAWorkerPicksTheOrderUpEndsCancelled(t *testing.T) {
	s := newStack(t, false) // no worker yet: the saga waits in its task queue
	sku := testkit.Product(t, s.pool, 100, 5)
	id := s.placeOK(newOrder(customer(), payment.TokenVisa, api.OrderItem{SKU: sku, Quantity: 2}))

	done := make(chan response, 1)
	go func() { done <- s.do(http.MethodPost, "/v1/orders/"+id+"/cancel", nil, nil) }()
	time.Sleep(300 * time.Millisecond) // let the update reach the server before any worker polls
	s.startWorker()

	r := <-done
	require.Equal(t, http.StatusAccepted, r.status, string(r.body))
	var c api.CancelAccepted
	r.json(t, &c)
	assert.True(t, c.CancelRequested)

	var v order.View
	run := s.temporal.GetWorkflow(context.Background(), order.WorkflowID(id), "")
	require.NoError(t, run.Get(context.Background(), &v))
	assert.Equal(t, orderflow.StatusCancelled, v.Status)
	assert.Equal(t, testkit.Stock{OnHand: 5, Version: 1}, testkit.StockOf(t, s.pool, sku), "nothing was reserved")
	o, status := s.order(id)
	require.Equal(t, http.StatusOK, status, "the cancelled order has its record")
	assert.Equal(t, orderflow.StatusCancelled, o.Status)
	require.NotNil(t, o.FailureReason)
	assert.Equal(t, order.ReasonCancelled, *o.FailureReason)

	again := s.do(http.MethodPost, "/v1/orders/"+id+"/cancel", nil, nil)
	assert.Contains(t, []int{http.StatusAccepted, http.StatusConflict}, again.status, string(again.body))
}

func TestCancelAfterConfirmedIs409(t *testing.T) {
	s := newStack(t, true)
	sku := testkit.Product(t, s.pool, 100, 5)
	id := s.placeOK(newOrder(customer(), payment.TokenVisa, api.OrderItem{SKU: sku, Quantity: 1}))
	require.Equal(t, orderflow.StatusConfirmed, s.waitTerminal(id).Status)

	r := s.do(http.MethodPost, "/v1/orders/"+id+"/cancel", nil, nil)
	require.Equal(t, http.StatusConflict, r.status, string(r.body))
	var e struct{ Error api.Error }
	r.json(t, &e)
	assert.Equal(t, "too_late_to_cancel", e.Error.Code)
	assert.Equal(t, orderflow.StatusConfirmed, s.waitTerminal(id).Status)

	unknown := s.do(http.MethodPost, "/v1/orders/"+uuid.NewString()+"/cancel", nil, nil)
	assert.Equal(t, http.StatusNotFound, unknown.status)
}

func TestExpiredIdempotencyKeysAreDeletedAndTheKeyCanBeUsedAgain(t *testing.T) {
	s := newStack(t, true)
	sku := testkit.Product(t, s.pool, 100, 10)
	key := "expire-" + uuid.NewString()
	req := newOrder(customer(), payment.TokenVisa, api.OrderItem{SKU: sku, Quantity: 1})
	first := s.place(key, req)
	require.Equal(t, http.StatusAccepted, first.status)
	var a api.Accepted
	first.json(t, &a)
	s.waitTerminal(a.OrderID)

	ctx := context.Background()
	_, err := s.pool.Exec(ctx, `UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE idempotency_key = $1`, key)
	require.NoError(t, err)
	// The region's admin pool runs the maintenance workflow; the Schedule it
	// creates would start it within a minute, the test starts one now.
	admin := workers.New(s.temporal, workers.Deps{DB: s.pool, Cache: s.rc, PII: testkit.PII(t)}, workers.Config{Region: s.region, Admin: true,
		MaxConcurrentActivities: 20, Bulkhead: designShares})
	require.NoError(t, admin.Start())
	t.Cleanup(func() {
		admin.Stop()
		_ = s.temporal.ScheduleClient().GetHandle(ctx, maintenance.ScheduleID(s.region)).Delete(ctx)
	})
	sched, err := s.temporal.ScheduleClient().GetHandle(ctx, maintenance.ScheduleID(s.region)).Describe(ctx)
	require.NoError(t, err, "the admin pool created the region's maintenance Schedule")
	assert.Equal(t, time.Minute, sched.Schedule.Spec.Intervals[0].Every)
	run, err := s.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "maintenance-now-" + s.region, TaskQueue: maintenance.AdminTaskQueue(s.region)},
		maintenance.Workflow)
	require.NoError(t, err)
	var res maintenance.Result
	require.NoError(t, run.Get(ctx, &res))
	assert.GreaterOrEqual(t, res.ExpiredKeys, int64(1))
	var n int
	require.NoError(t, s.pool.QueryRow(ctx, `SELECT count(*) FROM idempotency_keys WHERE idempotency_key = $1`, key).Scan(&n))
	assert.Zero(t, n, "the expired key was deleted")

	again := s.place(key, req)
	require.Equal(t, http.StatusAccepted, again.status)
	var b api.Accepted
	again.json(t, &b)
	assert.NotEqual(t, a.OrderID, b.OrderID, "after expiry the key starts a new order")
	assert.Empty(t, again.header.Get(api.HeaderReplayed))
}
