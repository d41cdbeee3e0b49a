package returns_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/activities/returns"
	"github.com/orderflow/orderflow/devtools/testkit"
	returnflow "github.com/orderflow/orderflow/workflows/returns"
)

var (
	retActs *returns.Activities
	payActs *payment.Activities
)

func newEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(returnflow.Receive, workflow.RegisterOptions{Name: returnflow.Workflow})
	env.RegisterActivity(&returns.Activities{})
	env.RegisterActivity(&payment.Activities{})
	return env
}

var in = returnflow.Input{ReturnID: "r-1", OrderID: "o-1"}

func TestReturn_RestocksRefundsTheAmountUnderItsOwnKeyThenMarksItRefunded(t *testing.T) {
	env := newEnv(t)
	ref := returns.ReturnRef{ReturnID: "r-1", OrderID: "o-1"}
	env.OnActivity(retActs.ReceiveReturn, mock.Anything, ref).Return(returns.ReceiveResult{AmountCents: 2500}, nil).Once()
	env.OnActivity(payActs.RefundPart, mock.Anything, payment.RefundPartInput{OrderID: "o-1", Key: "refund-o-1-r-1", AmountCents: 2500}).
		Return(payment.RefundResult{Refunded: true}, nil).Once()
	env.OnActivity(retActs.MarkReturnRefunded, mock.Anything, ref).Return(nil).Once()
	env.ExecuteWorkflow(returnflow.Workflow, in)

	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res returnflow.Result
	require.NoError(t, env.GetWorkflowResult(&res))
	assert.Equal(t, returnflow.Result{ReturnID: "r-1", Status: returns.StatusRefunded, RefundedCents: 2500}, res)
	env.AssertExpectations(t)
}

func TestReturn_NothingLeftToRefund_FailsForAnOperatorWithoutMarkingItRefunded(t *testing.T) {
	env := newEnv(t)
	env.OnActivity(retActs.ReceiveReturn, mock.Anything, mock.Anything).Return(returns.ReceiveResult{AmountCents: 2500}, nil)
	env.OnActivity(payActs.RefundPart, mock.Anything, mock.Anything).Return(payment.RefundResult{}, nil)
	marked := false
	env.OnActivity(retActs.MarkReturnRefunded, mock.Anything, mock.Anything).Return(nil).Run(func(mock.Arguments) { marked = true }).Maybe()
	env.ExecuteWorkflow(returnflow.Workflow, in)

	var app *temporal.ApplicationError
	require.ErrorAs(t, env.GetWorkflowError(), &app)
	assert.Equal(t, "NothingToRefund", app.Type())
	assert.False(t, marked)
}

// TestReplayCommittedReturnHistories replays the committed histories of
// the Return workflow, each recorded from a real run.
func TestReplayCommittedReturnHistories(t *testing.T) {
	testkit.ReplayHistories(t, returnflow.Workflow, returnflow.Receive)
}
