package order_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/workflows/order"
)

// TestReplayCommittedHistories replays every history in testdata/, each
// exported from a real server with `temporal workflow show --output json`,
// against the current Order code. A change that would break running sagas
// (a step added, removed or reordered without versioning) fails here.
func TestReplayCommittedHistories(t *testing.T) {
	testkit.ReplayHistories(t, order.Workflow, order.Saga)
}

// TestReplayCatchesAChangedSaga shows the replay above can fail: the same
// history replayed against a saga that charges before it reserves is
// reported as non-deterministic.
func TestReplayCatchesAChangedSaga(t *testing.T) {
	chargeFirst := func(ctx workflow.Context, in order.Input) (order.View, error) {
		var pay *payment.Activities
		ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: time.Second})
		err := workflow.ExecuteLocalActivity(ctx, pay.Charge, payment.ChargeInput{OrderID: in.OrderID}).Get(ctx, nil)
		return order.View{}, err
	}
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(chargeFirst, workflow.RegisterOptions{Name: order.Workflow})
	err := r.ReplayWorkflowHistoryFromJSONFile(nil, "testdata/order_confirmed.json")
	require.Error(t, err)
	require.Contains(t, err.Error(), "TMPRL1100") // the SDK's non-determinism error
}
