package e2e

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/api"
	"github.com/orderflow/orderflow/client"
	"github.com/orderflow/orderflow/devtools/testkit"
)

func requireAPIError(t *testing.T, err error, status int, code string) {
	t.Helper()
	var ce *client.Error
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, status, ce.Status, ce.Error())
	assert.Equal(t, code, ce.Code)
}

func TestReturnOfDeliveredLinesRestocksAndRefundsThemOnceAndNeverMoreThanWasDelivered(t *testing.T) {
	f := newFulfilStack(t, "CARRIER_PICKUP_AFTER=300ms", "CARRIER_TRANSIT_AFTER=100ms", "CARRIER_DELIVER_AFTER=100ms")
	ctx := context.Background()
	a := testkit.Product(t, f.pool, 1250, 10)
	b := testkit.Product(t, f.pool, 300, 5)
	id := f.placeOK(newOrder(customer(), payment.TokenVisa, api.OrderItem{SKU: a, Quantity: 2}, api.OrderItem{SKU: b, Quantity: 1}))

	f.waitStatus(id, orderflow.StatusFulfilling, 30*time.Second)
	_, err := f.api.CreateReturn(ctx, id, []orderflow.Item{{SKU: a, Quantity: 1}}, "")
	requireAPIError(t, err, http.StatusConflict, "not_delivered")
	f.waitStatus(id, orderflow.StatusDelivered, 30*time.Second)

	// Two returns of all of line a at once: one wins, the other is refused.
	var wg sync.WaitGroup
	results := make([]error, 2)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, results[i] = f.api.CreateReturn(ctx, id, []orderflow.Item{{SKU: a, Quantity: 2}}, "too small")
		}()
	}
	wg.Wait()
	var won int
	for _, err := range results {
		if err == nil {
			won++
			continue
		}
		requireAPIError(t, err, http.StatusUnprocessableEntity, "return_exceeds_delivered")
	}
	require.Equal(t, 1, won, "exactly one of two racing returns of the same line is accepted: %v", results)
	_, err = f.api.CreateReturn(ctx, id, []orderflow.Item{{SKU: b, Quantity: 2}}, "")
	requireAPIError(t, err, http.StatusUnprocessableEntity, "return_exceeds_delivered")
	_, err = f.api.CreateReturn(ctx, id, nil, "")
	requireAPIError(t, err, http.StatusBadRequest, "invalid_request")
	_, err = f.api.CreateReturn(ctx, uuid.NewString(), []orderflow.Item{{SKU: a, Quantity: 1}}, "")
	requireAPIError(t, err, http.StatusNotFound, "order_not_found")
	// Another customer cannot see, so cannot return, the order.
	stranger := client.New(f.url, client.WithToken(f.as(customer())))
	_, err = stranger.CreateReturn(ctx, id, []orderflow.Item{{SKU: b, Quantity: 1}}, "")
	requireAPIError(t, err, http.StatusNotFound, "order_not_found")

	list, err := f.api.ListReturns(ctx, id)
	require.NoError(t, err)
	require.Len(t, list.Returns, 1)
	ret := list.Returns[0]
	assert.Equal(t, int64(2*1250), ret.AmountCents)
	assert.Equal(t, "requested", ret.Status)
	assert.Zero(t, list.RefundedCents)
	assert.Equal(t, [2]int{8, 0}, stockOf(t, f.stack, a))

	customerAPI := client.New(f.url, client.WithToken(f.as(customer())))
	requireAPIError(t, customerAPI.ReceiveReturn(ctx, ret.ReturnID), http.StatusForbidden, "forbidden")
	require.NoError(t, f.api.ReceiveReturn(ctx, ret.ReturnID))
	deadline := time.Now().Add(30 * time.Second)
	for ret.Status != "refunded" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		ret, err = f.api.GetReturn(ctx, ret.ReturnID)
		require.NoError(t, err)
	}
	require.Equal(t, "refunded", ret.Status)
	require.NoError(t, f.api.ReceiveReturn(ctx, ret.ReturnID), "receiving again is harmless")

	list, err = f.api.ListReturns(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, int64(2*1250), list.RefundedCents)
	assert.Equal(t, [2]int{10, 0}, stockOf(t, f.stack, a), "the returned units are back on the shelf")
	var refunds int
	var amount int64
	require.NoError(t, f.pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(amount_cents), 0) FROM payment_transactions
		WHERE order_id = $1 AND kind = 'refund' AND idempotency_key = $2`, id, "refund-"+id+"-"+ret.ReturnID).Scan(&refunds, &amount))
	assert.Equal(t, 1, refunds)
	assert.Equal(t, int64(2500), amount)

	// The rest of the order may come back, within the window only.
	_, err = f.pool.Exec(ctx, `UPDATE order_status_history SET at = now() - interval '31 days' WHERE order_id = $1 AND status = 'DELIVERED'`, id)
	require.NoError(t, err)
	_, err = f.api.CreateReturn(ctx, id, []orderflow.Item{{SKU: b, Quantity: 1}}, "")
	requireAPIError(t, err, http.StatusConflict, "return_window_closed")
}
