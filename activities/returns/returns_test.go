package returns_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/returns"
	"github.com/orderflow/orderflow/devtools/testkit"
)

// delivered creates an order of the items and takes it through
// fulfillment to DELIVERED, as the saga would, and returns its id.
func delivered(t *testing.T, env *testsuite.TestActivityEnvironment, items ...orderflow.Item) string {
	t.Helper()
	return testkit.DeliveredOrder(t, env, testkit.DB(t), testkit.Redis(t), "c-ret", items...)
}

func TestCreateBoundsReturnsByWhatWasDeliveredEvenWhenTheyRace(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	pool := testkit.DB(t)
	sku := testkit.Product(t, pool, 400, 10)
	id := delivered(t, env, orderflow.Item{SKU: sku, Quantity: 3})
	store := returns.Store{DB: pool}
	ctx := context.Background()

	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = store.Create(ctx, id, []orderflow.Item{{SKU: sku, Quantity: 2}}, "", time.Hour)
		}()
	}
	wg.Wait()
	var ok int
	for _, err := range errs {
		var ex *returns.ExceedsError
		switch {
		case err == nil:
			ok++
		case errors.As(err, &ex):
			assert.Equal(t, map[string]int{sku: 1}, ex.Left)
		default:
			t.Fatalf("unexpected: %v", err)
		}
	}
	assert.Equal(t, 1, ok, "of eight racing returns of 2 of 3 units, one is accepted")
	r, err := store.Create(ctx, id, []orderflow.Item{{SKU: sku, Quantity: 1}}, "the last one", time.Hour)
	require.NoError(t, err)
	assert.Equal(t, int64(400), r.AmountCents)
	list, _, err := store.OrderReturns(ctx, id)
	require.NoError(t, err)
	var total int64
	for _, r := range list {
		total += r.AmountCents
	}
	assert.Equal(t, int64(1200), total, "the returns add up to the order, never more")

	_, err = store.Create(ctx, id, []orderflow.Item{{SKU: sku, Quantity: 1}}, "", time.Hour)
	var ex *returns.ExceedsError
	require.ErrorAs(t, err, &ex)
	_, err = store.Create(ctx, uuid.NewString(), []orderflow.Item{{SKU: sku, Quantity: 1}}, "", time.Hour)
	assert.ErrorIs(t, err, returns.ErrNoSuchOrder)
}

func TestReceiveRestocksOnceAndMarkRefundedOnlyAfterReceipt(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	pool, rc := testkit.DB(t), testkit.Redis(t)
	sku := testkit.Product(t, pool, 400, 10)
	id := delivered(t, env, orderflow.Item{SKU: sku, Quantity: 3})
	ret := &returns.Activities{DB: pool, Cache: rc}
	env.RegisterActivity(ret)
	r, err := returns.Store{DB: pool}.Create(context.Background(), id, []orderflow.Item{{SKU: sku, Quantity: 2}}, "", time.Hour)
	require.NoError(t, err)
	ref := returns.ReturnRef{ReturnID: r.ReturnID, OrderID: id}

	_, err = env.ExecuteActivity(ret.MarkReturnRefunded, ref)
	require.NoError(t, err)
	got, err := returns.Store{DB: pool}.Return(context.Background(), r.ReturnID)
	require.NoError(t, err)
	assert.Equal(t, returns.StatusRequested, got.Status, "not refunded before it was received")

	for range 2 {
		v, err := env.ExecuteActivity(ret.ReceiveReturn, ref)
		require.NoError(t, err)
		var res returns.ReceiveResult
		require.NoError(t, v.Get(&res))
		assert.Equal(t, int64(800), res.AmountCents)
	}
	st := testkit.StockOf(t, pool, sku)
	assert.Equal(t, [2]int{9, 0}, [2]int{st.OnHand, st.Reserved}, "3 shipped, 2 back, once")
	onHand, reserved, violated := testkit.ReplayEvents(t, pool, sku)
	assert.NoError(t, violated)
	assert.Equal(t, [2]int{9, 0}, [2]int{onHand, reserved})
	_, err = env.ExecuteActivity(ret.MarkReturnRefunded, ref)
	require.NoError(t, err)
	got, err = returns.Store{DB: pool}.Return(context.Background(), r.ReturnID)
	require.NoError(t, err)
	assert.Equal(t, returns.StatusRefunded, got.Status)
}
