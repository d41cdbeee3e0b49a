package order

import (
	"time"

	"go.temporal.io/sdk/workflow"
)

// PaymentOutcomeSignal tells a saga whose order is parked in
// PAYMENT_PENDING that its provider answered a pending charge by webhook
// (workflows/paymentevent sends it once the outcome is stored): the saga
// retries the charge at once instead of at its next timer, and the step
// records what the provider said. Its payload is the outcome
// (payment.OutcomeSucceeded or payment.OutcomeFailed), for the log only.
// A signal that finds the saga elsewhere changes nothing.
const PaymentOutcomeSignal = "payment-outcome"

// paymentWebhookWakes is the change ID of sagas whose parked payment
// wakes on PaymentOutcomeSignal; before it, only the timers retried it.
const paymentWebhookWakes = "payment-webhook-wakes"

// wakeOnPaymentOutcome lets PaymentOutcomeSignal cut the parked payment's
// timers short, for sagas from paymentWebhookWakes on.
func (o *saga) wakeOnPaymentOutcome(ctx workflow.Context) {
	if workflow.GetVersion(ctx, paymentWebhookWakes, workflow.DefaultVersion, 1) == 1 {
		o.wake = workflow.GetSignalChannel(ctx, PaymentOutcomeSignal)
	}
}

// timer waits d on a durable timer, or, with o.wake set, until a signal on
// it arrives first (a signal sent before the wait began is already there).
func (o *saga) timer(ctx workflow.Context, d time.Duration) error {
	t := workflow.NewTimer(ctx, d)
	if o.wake == nil {
		return t.Get(ctx, nil)
	}
	var err error
	sel := workflow.NewSelector(ctx)
	sel.AddFuture(t, func(f workflow.Future) { err = f.Get(ctx, nil) })
	sel.AddReceive(o.wake, func(c workflow.ReceiveChannel, _ bool) {
		var outcome string
		c.Receive(ctx, &outcome)
		workflow.GetLogger(ctx).Info("the provider answered the pending charge", "outcome", outcome)
	})
	sel.Select(ctx)
	return err
}
