package workers

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/orders"
	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/pii"
	"github.com/orderflow/orderflow/workflows/order"
)

// accept writes an order's acceptance record as the gateway does, with its
// saga's sealed start on a region no worker polls (the sagas stay pending).
func accept(t *testing.T, store orders.Store, keys *pii.Keyring, region string) order.Start {
	t.Helper()
	id := uuid.NewString()
	start := order.Start{TotalCents: 990, Input: order.Input{CreateOrderInput: orders.CreateOrderInput{OrderID: id, CustomerID: "c-" + id[:8],
		Email: "r@example.com", Region: region, Items: []orderflow.Item{{SKU: "SKU-R", Quantity: 1}}}, PaymentToken: "tok_visa"}}
	sealed, err := orders.SealStart(keys, id, start)
	require.NoError(t, err)
	claimed, err := store.ClaimKey(context.Background(), start.Input.CustomerID, "create_order", "k-"+id,
		orders.Acceptance{OrderID: id, RequestHash: []byte(id), Status: 202, Body: []byte(`{}`), Saga: sealed}, time.Hour)
	require.NoError(t, err)
	require.True(t, claimed)
	return start
}

// After a failover, accepted orders whose saga is missing from the
// namespace get one, started as the gateway would have; orders whose saga
// exists are left alone; a second run starts nothing.
func TestRedriveStartsOnlyTheMissingSagasAndOnlyOnce(t *testing.T) {
	ctx := context.Background()
	store := orders.Store{DB: testkit.FreshDB(t, "redrive")}
	c, keys := testkit.Temporal(t), testkit.PII(t)
	region := "redrive-" + uuid.NewString()[:8]
	since := time.Now().Add(-time.Minute)

	missing := accept(t, store, keys, region)
	present := accept(t, store, keys, region)
	run, err := c.ExecuteWorkflow(ctx, order.StartOptions(present.Input.OrderID, present.Input.CustomerID, region, false),
		order.Workflow, present.Input)
	require.NoError(t, err)
	t.Cleanup(func() {
		for _, s := range []order.Start{missing, present} {
			_ = c.TerminateWorkflow(context.Background(), order.WorkflowID(s.Input.OrderID), "", "test over")
		}
	})

	rep, err := Redrive(ctx, c, "default", store, keys, since, zaptest.NewLogger(t))
	require.NoError(t, err)
	assert.Equal(t, 2, rep.Examined)
	assert.Equal(t, 1, rep.Present)
	assert.Equal(t, []string{missing.Input.OrderID}, rep.Started)

	d, err := c.DescribeWorkflow(ctx, order.WorkflowID(missing.Input.OrderID), "")
	require.NoError(t, err)
	assert.Equal(t, order.TaskQueue(region), d.RawResponse.GetExecutionConfig().GetTaskQueue().GetName())
	var got order.Input
	hist := c.GetWorkflowHistory(ctx, order.WorkflowID(missing.Input.OrderID), "", false, 0)
	ev, err := hist.Next()
	require.NoError(t, err)
	require.NoError(t, pii.DataConverter(keys).FromPayloads(ev.GetWorkflowExecutionStartedEventAttributes().GetInput(), &got))
	assert.Equal(t, missing.Input, got, "the saga starts with the input the gateway kept")
	pd, err := c.DescribeWorkflow(ctx, order.WorkflowID(present.Input.OrderID), "")
	require.NoError(t, err)
	assert.Equal(t, run.GetRunID(), pd.RawResponse.GetWorkflowExecutionInfo().GetExecution().GetRunId(), "the existing saga is left alone")

	rep, err = Redrive(ctx, c, "default", store, keys, since, zaptest.NewLogger(t))
	require.NoError(t, err)
	assert.Equal(t, 2, rep.Present)
	assert.Empty(t, rep.Started, "a second run starts nothing")
}

// An acceptance record older than since is not examined.
func TestRedriveLooksOnlyAsFarBackAsAsked(t *testing.T) {
	store := orders.Store{DB: testkit.FreshDB(t, "redrive_since")}
	c, keys := testkit.Temporal(t), testkit.PII(t)
	accept(t, store, keys, "redrive-"+uuid.NewString()[:8])
	rep, err := Redrive(context.Background(), c, "default", store, keys, time.Now().Add(time.Minute), zaptest.NewLogger(t))
	require.NoError(t, err)
	assert.Zero(t, rep.Examined)
	assert.Empty(t, rep.Started)
}
