package payment

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities"
	"github.com/orderflow/orderflow/activities/orders"
	"github.com/orderflow/orderflow/internal/db"
)

// A charge a provider answers as pending (an asynchronous payment method, a
// card that needs the customer's 3-D Secure step) ends later, by the
// provider's webhook. The saga's step records the pending charge in
// payment_pending and fails with PaymentPending; the saga parks the order
// (PAYMENT_PENDING) and retries the step on durable timers, which the
// webhook's workflow (workflows/paymentevent) cuts short with a signal
// once it stored the outcome in the same row. The retried step reads the
// outcome and records it through the same code as an answer that came in
// the call (recordCharge). The webhook never records a charge itself: a
// charge is recorded only by the saga's own step, so there is no charge
// without an order; a success the saga no longer waits for (it passed its
// payment deadline, was cancelled) is refunded by SettlePaymentOutcome.
// Either may come first: a signal sent before the saga parks waits in its
// channel, and an outcome stored before the step's row is found by it.

// TokenThreeDSecure is Stripe's test token of a card that requires the
// customer's 3-D Secure step: the charge stays pending until the step ends
// (paysim: POST /admin/3ds/complete) and the provider's webhook says how.
//
// #nosec G101 -- Stripe's published test card token, not a credential.
const TokenThreeDSecure = "tok_threeDSecure2Required"

// PendingError is a provider's answer that a charge is neither made nor
// declined yet: its webhook will say which.
type PendingError struct {
	// ChargeID is the provider's id of the pending charge or payment intent.
	ChargeID string
	// Reason is the provider's word for why (requires_action, processing).
	Reason string
}

func (e *PendingError) Error() string { return "charge " + e.ChargeID + " pending: " + e.Reason }

// Outcomes a provider's webhook gives a pending charge.
const (
	OutcomeSucceeded = "succeeded"
	OutcomeFailed    = "failed"
)

// pending handles a charge the provider answered as pending: it records
// the pending charge under its key and fails with PaymentPending, so the
// saga parks the order until the webhook wakes it, or, when the webhook
// already brought the outcome, answers the charge (for the step to record
// as it records one answered in the call) or records the decline. It
// serves every step that asks a provider for money (obtain: Charge and
// Authorize), with that step's key.
func (p *Activities) pending(ctx context.Context, in ChargeInput, key, provider string, pe *PendingError) (Charge, error) {
	const q = `INSERT INTO payment_pending (charge_key, order_id, provider, charge_id, amount_cents, currency)
		VALUES ($1, $2, $3, NULLIF($4, ''), $5, $6)
		ON CONFLICT (charge_key) DO UPDATE SET charge_id = coalesce(payment_pending.charge_id, EXCLUDED.charge_id), updated_at = now()
		RETURNING coalesce(outcome, ''), coalesce(failure_code, ''), coalesce(charge_id, '')`
	var outcome, code, chargeID string
	err := func() error {
		ctx, cancel := context.WithTimeout(ctx, db.StatementTimeout)
		defer cancel()
		return p.DB.QueryRow(ctx, q, key, in.OrderID, provider, pe.ChargeID, in.AmountCents, in.Currency).Scan(&outcome, &code, &chargeID)
	}()
	if err != nil {
		return Charge{}, fmt.Errorf("charge %s: store pending charge: %w", in.OrderID, err)
	}
	switch outcome {
	case OutcomeSucceeded:
		countAttempt(ctx, provider, AttemptCharged)
		return Charge{ID: chargeID, AmountCents: in.AmountCents, Currency: in.Currency}, nil
	case OutcomeFailed:
		countAttempt(ctx, provider, AttemptDeclined)
		p.record(ctx, in.OrderID, "decline", provider, chargeID, in.AmountCents, in.Currency, key, code)
		return Charge{}, activities.Business(orderflow.PaymentDeclined, "payment declined: "+code, code)
	}
	countAttempt(ctx, provider, AttemptPending)
	return Charge{}, activities.Business(orderflow.PaymentPending,
		fmt.Sprintf("charge %s on %s waits for the provider's webhook (%s)", pe.ChargeID, provider, pe.Reason), key)
}

// ProviderEvent is a verified provider webhook event, mapped to what
// orderflow does with it. Its fields are the provider's, in orderflow's words.
type ProviderEvent struct {
	Provider string `json:"provider"`
	EventID  string `json:"event_id"`
	// Type is the provider's event type (payment_intent.succeeded, ...).
	Type string `json:"type"`
	// Kind is what it means to orderflow: one of the Event* constants.
	Kind      string `json:"kind"`
	OrderID   string `json:"order_id,omitempty"`
	ChargeKey string `json:"charge_key,omitempty"`
	ChargeID  string `json:"charge_id,omitempty"`
	// AmountCents and Currency are the charge's, or the disputed amount's.
	AmountCents int64  `json:"amount_cents,omitempty"`
	Currency    string `json:"currency,omitempty"`
	DisputeID   string `json:"dispute_id,omitempty"`
	// Reason is a failure's code or a dispute's reason.
	Reason string `json:"reason,omitempty"`
	// SagaID is the workflow id of the order's saga, set by the workflow.
	SagaID string `json:"saga_id,omitempty"`
}

// Kinds of provider event.
const (
	EventSucceeded = "succeeded" // a pending charge succeeded (async success, 3-D Secure done)
	EventFailed    = "failed"    // a pending charge failed
	EventDispute   = "dispute"   // a dispute or chargeback was opened on a charge
	EventIgnored   = "ignored"   // an event orderflow has no use for
)

// Webhooks are the activities of a provider event's workflow: they store a
// pending charge's outcome and wake the saga's step, refund a late success
// and record disputes. Temporal wakes the waiting steps and tells whether a
// saga still runs.
type Webhooks struct {
	Payments *Activities
	Temporal client.Client
}

// ApplyPaymentOutcome stores a pending charge's outcome under its key,
// for the saga's step to read when it is retried (the workflow then wakes
// the saga). An outcome for a key with no pending row yet (the webhook came
// before the provider's answer was stored) is kept for the step to find. A
// success is never overwritten by a later failure (events out of order).
func (w *Webhooks) ApplyPaymentOutcome(ctx context.Context, ev ProviderEvent) error {
	outcome := OutcomeSucceeded
	if ev.Kind == EventFailed {
		outcome = OutcomeFailed
	}
	const q = `INSERT INTO payment_pending (charge_key, order_id, provider, charge_id, amount_cents, currency, outcome, failure_code)
		VALUES ($1, $2, $3, NULLIF($4, ''), $5, $6, $7, NULLIF($8, ''))
		ON CONFLICT (charge_key) DO UPDATE SET
			outcome = CASE WHEN payment_pending.outcome = 'succeeded' THEN 'succeeded' ELSE EXCLUDED.outcome END,
			failure_code = CASE WHEN payment_pending.outcome = 'succeeded' THEN payment_pending.failure_code ELSE EXCLUDED.failure_code END,
			charge_id = coalesce(EXCLUDED.charge_id, payment_pending.charge_id), updated_at = now()`
	ctx, cancel := context.WithTimeout(ctx, db.StatementTimeout)
	defer cancel()
	if _, err := w.Payments.DB.Exec(ctx, q, ev.ChargeKey, ev.OrderID, ev.Provider, ev.ChargeID, ev.AmountCents, ev.Currency,
		outcome, ev.Reason); err != nil {
		return fmt.Errorf("apply %s of %s: %w", outcome, ev.ChargeKey, err)
	}
	return nil
}

// ErrorSagaRunning is the application error type SettlePaymentOutcome
// returns while the order's saga runs and has not taken the success: the
// workflow retries it until the saga records the charge or ends.
const ErrorSagaRunning = "SagaStillRunning"

// SettleResult says how a pending charge's success ended.
type SettleResult struct {
	// Recorded: the saga's step recorded the charge.
	Recorded bool `json:"recorded"`
	// Refunded: the saga had ended without it, so it was refunded.
	Refunded bool `json:"refunded"`
}

// SettlePaymentOutcome makes sure a pending charge that succeeded ends
// recorded by the saga or refunded: never a charge without an order. While
// the saga (ev.SagaID) runs without having recorded it, it fails with
// ErrorSagaRunning (retryable). Once the saga ended without it (it gave up,
// was cancelled), it refunds the charge under the charge key's refund key,
// the same one the saga's compensation uses, so the two never refund twice.
func (w *Webhooks) SettlePaymentOutcome(ctx context.Context, ev ProviderEvent) (SettleResult, error) {
	const q = `SELECT status FROM payments WHERE idempotency_key = $1`
	var status string
	err := func() error {
		ctx, cancel := context.WithTimeout(ctx, db.StatementTimeout)
		defer cancel()
		return w.Payments.DB.QueryRow(ctx, q, ev.ChargeKey).Scan(&status)
	}()
	switch {
	case err == nil:
		// The saga's step recorded it: a charge, or an authorization
		// (captured, voided or expired since, it is the saga's to settle).
		return SettleResult{Recorded: status != statusRefunded, Refunded: status == statusRefunded}, nil
	case !errors.Is(err, pgx.ErrNoRows):
		return SettleResult{}, fmt.Errorf("settle %s: %w", ev.ChargeKey, err)
	}
	d, err := w.Temporal.DescribeWorkflow(ctx, ev.SagaID, "")
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
	case err != nil:
		return SettleResult{}, fmt.Errorf("settle %s: describe saga: %w", ev.ChargeKey, err)
	case d.Status == enums.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return SettleResult{}, temporal.NewApplicationError("the saga runs and has not recorded the charge yet", ErrorSagaRunning)
	}
	c := charge{key: ev.ChargeKey, provider: ev.Provider, chargeID: ev.ChargeID, currency: ev.Currency, amount: ev.AmountCents, unrecorded: true}
	if strings.HasPrefix(ev.ChargeKey, "auth-") {
		// An authorization (authorize, then capture) holds money without
		// taking it: it is voided, as the saga's compensation would.
		c.kind, c.status = kindAuthorization, statusAuthorized
		err = w.Payments.settle(ctx, ev.OrderID, c)
	} else {
		err = w.Payments.refund(ctx, ev.OrderID, c)
	}
	if err != nil {
		return SettleResult{}, err
	}
	activity.GetLogger(ctx).Warn("a pending payment succeeded after its saga ended; refunded or voided", "order_id", ev.OrderID,
		"provider", ev.Provider, "charge_id", ev.ChargeID)
	return SettleResult{Refunded: true}, nil
}

// disputes counts the disputes and chargebacks opened, by provider:
// OrderflowPaymentDisputed alerts an operator on each.
var disputes, _ = otel.Meter("github.com/orderflow/orderflow/activities/payment").Int64Counter("orderflow.payment.disputes",
	metric.WithDescription("disputes and chargebacks opened on orders' charges, by provider"))

// DisputeResult says whether the dispute was new.
type DisputeResult struct {
	Recorded bool `json:"recorded"`
}

// RecordDispute records a dispute once per (provider, dispute id), moves the
// order to DISPUTED and counts it (orderflow_payment_disputes_total), in one
// transaction; its order.disputed event comes from the row's insert. It
// works the same whether the order's saga runs or ended long ago. A second
// event of the same dispute (a chargeback after the dispute, a re-sent
// event) records nothing.
func (w *Webhooks) RecordDispute(ctx context.Context, ev ProviderEvent) (DisputeResult, error) {
	const q = `INSERT INTO payment_disputes (provider, dispute_id, order_id, charge_id, amount_cents, currency, reason, event_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (provider, dispute_id) DO NOTHING`
	var fresh bool
	_, err := activities.Commit(ctx, w.Payments.DB, w.Payments.Cache, ev.OrderID, func(tx pgx.Tx) ([]orderflow.Item, error) {
		tag, err := tx.Exec(ctx, q, ev.Provider, ev.DisputeID, ev.OrderID, ev.ChargeID, ev.AmountCents, ev.Currency, ev.Reason, ev.EventID)
		if err != nil {
			return nil, fmt.Errorf("record dispute: %w", err)
		}
		if fresh = tag.RowsAffected() == 1; !fresh {
			return nil, nil
		}
		return nil, orders.RecordStatus(ctx, tx, ev.OrderID, orderflow.StatusDisputed, ev.Reason)
	})
	if err != nil {
		return DisputeResult{}, fmt.Errorf("dispute %s of %s: %w", ev.DisputeID, ev.OrderID, err)
	}
	if fresh {
		disputes.Add(ctx, 1, metric.WithAttributes(attribute.String("provider", ev.Provider)))
		activity.GetLogger(ctx).Warn("charge disputed", "order_id", ev.OrderID, "provider", ev.Provider,
			"dispute_id", ev.DisputeID, "reason", ev.Reason)
	}
	return DisputeResult{Recorded: fresh}, nil
}

// ZeroDisputes exports a zero for every provider of r, so that the first
// dispute shows in increase().
func ZeroDisputes(r *Router) {
	if r == nil {
		return
	}
	for _, g := range r.Providers() {
		disputes.Add(context.Background(), 0, metric.WithAttributes(attribute.String("provider", g.Name())))
	}
}
