// Package returns is the Return workflow: once the operator has received a
// return's goods, it puts them back on the shelf, refunds the returned
// lines' amount (a partial refund of the order's charge, key
// refund-<order>-<return>) and records the refund. One workflow per
// return, started by the gateway with the return's id.
package returns

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/activities/returns"
)

// Workflow is the registered workflow type: never rename it.
const Workflow = "Return"

// WorkflowID is the ID of a return's workflow; one return, one workflow.
func WorkflowID(returnID string) string { return "return-" + returnID }

// Input names the received return.
type Input struct {
	ReturnID string `json:"return_id"`
	OrderID  string `json:"order_id"`
}

// Result is the return once refunded.
type Result struct {
	ReturnID      string `json:"return_id"`
	Status        string `json:"status"`
	RefundedCents int64  `json:"refunded_cents"`
}

// Every step retries infrastructure errors for as long as a week: a
// received return whose refund stopped trying would keep the customer's
// money.
var steps = workflow.LocalActivityOptions{
	StartToCloseTimeout:    10 * time.Second,
	ScheduleToCloseTimeout: 7 * 24 * time.Hour,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    100 * time.Millisecond,
		BackoffCoefficient: 2,
		MaximumInterval:    30 * time.Second,
	},
}

// Receive restocks the return (ReceiveReturn), refunds its amount (RefundPart)
// and marks it refunded (MarkReturnRefunded). Each step is idempotent, so the
// workflow may be started again for the same return. It fails only on a
// non-retryable error: a return that does not exist, or an order with no
// charge left to refund, for an operator.
func Receive(ctx workflow.Context, in Input) (Result, error) {
	var ret *returns.Activities
	var pay *payment.Activities
	ctx = workflow.WithLocalActivityOptions(ctx, steps)
	ref := returns.ReturnRef{ReturnID: in.ReturnID, OrderID: in.OrderID}
	var got returns.ReceiveResult
	if err := workflow.ExecuteLocalActivity(ctx, ret.ReceiveReturn, ref).Get(ctx, &got); err != nil {
		return Result{ReturnID: in.ReturnID}, err
	}
	var refund payment.RefundResult
	err := workflow.ExecuteLocalActivity(ctx, pay.RefundPart, payment.RefundPartInput{
		OrderID: in.OrderID, Key: payment.PartialRefundKey(in.OrderID, in.ReturnID), AmountCents: got.AmountCents,
	}).Get(ctx, &refund)
	if err != nil {
		return Result{ReturnID: in.ReturnID, Status: returns.StatusReceived}, err
	}
	if !refund.Refunded && got.AmountCents > 0 {
		return Result{ReturnID: in.ReturnID, Status: returns.StatusReceived}, temporal.NewNonRetryableApplicationError(
			"order "+in.OrderID+" has no charge to refund return "+in.ReturnID+" from", "NothingToRefund", nil)
	}
	if err := workflow.ExecuteLocalActivity(ctx, ret.MarkReturnRefunded, ref).Get(ctx, nil); err != nil {
		return Result{ReturnID: in.ReturnID, Status: returns.StatusReceived}, err
	}
	return Result{ReturnID: in.ReturnID, Status: returns.StatusRefunded, RefundedCents: got.AmountCents}, nil
}
