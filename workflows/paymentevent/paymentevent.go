// Package paymentevent is the workflow of one payment provider's webhook
// event (docs/api.md, POST /v1/webhooks/payments/{provider}): the gateway
// verifies the event and starts one workflow per event id, which hands a
// pending charge's outcome to the saga's waiting step, refunds a success
// that came after the saga ended, and records disputes. Being a workflow of
// its own, it works the same whether the order's saga runs or ended long ago.
package paymentevent

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/workflows/order"
)

// Workflow is the registered workflow type: never rename it.
const Workflow = "PaymentProviderEvent"

// WorkflowID is the id of an event's workflow: one per provider event, so a
// re-sent event starts nothing new.
func WorkflowID(provider, eventID string) string { return "payment-event-" + provider + "-" + eventID }

// Result says what the event did.
type Result struct {
	Kind string `json:"kind"`
	// Recorded: the saga recorded the charge; Refunded: the saga had ended
	// without it and it was refunded (EventSucceeded).
	Recorded bool `json:"recorded,omitempty"`
	Refunded bool `json:"refunded,omitempty"`
	// DisputeRecorded: a new dispute (EventDispute); false for a second
	// event of a dispute already on record.
	DisputeRecorded bool `json:"dispute_recorded,omitempty"`
}

// Each step retries infrastructure errors for a week: an event whose
// handling stopped could leave a charge without an order.
var steps = workflow.ActivityOptions{
	StartToCloseTimeout:    10 * time.Second,
	ScheduleToCloseTimeout: 7 * 24 * time.Hour,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    200 * time.Millisecond,
		BackoffCoefficient: 2,
		MaximumInterval:    time.Minute,
	},
}

// Handle acts on one provider event: an outcome of a pending charge is
// stored (ApplyPaymentOutcome) and the saga is woken to take it
// (order.PaymentOutcomeSignal); a success is
// then followed until the saga recorded it or, the saga having ended without
// it, it was refunded (SettlePaymentOutcome, retried while the saga runs); a
// dispute is recorded (RecordDispute). It fails only when a step keeps
// failing for a week.
func Handle(ctx workflow.Context, ev payment.ProviderEvent) (Result, error) {
	var hooks *payment.Webhooks
	ctx = workflow.WithActivityOptions(ctx, steps)
	out := Result{Kind: ev.Kind}
	switch ev.Kind {
	case payment.EventSucceeded, payment.EventFailed:
		if err := workflow.ExecuteActivity(ctx, hooks.ApplyPaymentOutcome, ev).Get(ctx, nil); err != nil {
			return out, err
		}
		// Wake the saga's parked payment; a saga that ended or is past its
		// payment step does not need it, so a failed signal is no error.
		ev.SagaID = order.WorkflowID(ev.OrderID)
		outcome := payment.OutcomeSucceeded
		if ev.Kind == payment.EventFailed {
			outcome = payment.OutcomeFailed
		}
		if err := workflow.SignalExternalWorkflow(ctx, ev.SagaID, "", order.PaymentOutcomeSignal, outcome).Get(ctx, nil); err != nil {
			workflow.GetLogger(ctx).Info("the order's saga takes no signal", "order_id", ev.OrderID, "error", err)
		}
		if ev.Kind == payment.EventFailed {
			return out, nil
		}
		var settled payment.SettleResult
		if err := workflow.ExecuteActivity(ctx, hooks.SettlePaymentOutcome, ev).Get(ctx, &settled); err != nil {
			return out, err
		}
		out.Recorded, out.Refunded = settled.Recorded, settled.Refunded
	case payment.EventDispute:
		var d payment.DisputeResult
		if err := workflow.ExecuteActivity(ctx, hooks.RecordDispute, ev).Get(ctx, &d); err != nil {
			return out, err
		}
		out.DisputeRecorded = d.Recorded
	}
	return out, nil
}
