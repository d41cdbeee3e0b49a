// Package order is the Order saga: one durable workflow per customer order
// that reserves its stock, charges its payment and confirms it, and undoes
// what it did when a later step fails or the customer cancels. Code here is
// deterministic: it talks to the world only through the areas' activities
// and uses only workflow.* APIs for time, logging and concurrency.
package order

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/catalog"
	"github.com/orderflow/orderflow/activities/fulfillment"
	"github.com/orderflow/orderflow/activities/orders"
	"github.com/orderflow/orderflow/activities/payment"
)

// Names under which the Order saga is registered and reached. They are part
// of every running history: never rename them.
const (
	// Workflow is the registered workflow type.
	Workflow = "Order"
	// StatusQuery returns the order's View.
	StatusQuery = "status"
	// CancelUpdate asks the saga to stop and compensate. It is rejected with
	// an orderflow.TooLateToCancel application error once the order is being
	// confirmed or has ended.
	CancelUpdate = "cancel"
	// CarrierEventUpdate hands the saga one carrier event about one of the
	// order's shipments (a CarrierEvent); the gateway sends it with the
	// event id as the update id, so a re-sent event is one update. It is
	// rejected while the order has no shipments.
	CarrierEventUpdate = "carrier-event"
)

// The saga rejects a cancel with an orderflow.TooLateToCancel application
// error, and fails itself only with orderflow.CompensationFailed or
// orderflow.ConfirmFailed, either of which means an operator is needed
// (docs/operations.md says what to do); every other outcome completes the
// workflow with a View.

// Failure reasons recorded on FAILED orders.
const (
	ReasonOutOfStock      = "out_of_stock"
	ReasonPaymentDeclined = "payment_declined"
	// ReasonPaymentUnavailable: no provider could take the charge before
	// the payment deadline.
	ReasonPaymentUnavailable = "payment_unavailable"
	ReasonInvalidOrder       = "invalid_order"
	ReasonCreateFailed       = "order_unavailable"
	ReasonInventoryFailed    = "inventory_unavailable"
	ReasonConfirmFailed      = "confirm_failed"
	ReasonCancelled          = "cancelled"
)

// Typed search attributes the saga keeps current so operators can filter
// orders in the Web UI and the CLI. None of them carries PII.
var (
	OrderStatusKey     = temporal.NewSearchAttributeKeyKeyword("OrderStatus")
	CustomerIDKey      = temporal.NewSearchAttributeKeyKeyword("CustomerId")
	OrderTotalCentsKey = temporal.NewSearchAttributeKeyInt64("OrderTotalCents")
	RegionKey          = temporal.NewSearchAttributeKeyKeyword("Region")
)

// TaskQueue is the critical task queue of a region, which order workers poll.
func TaskQueue(region string) string { return "orders-" + region }

// WorkflowID is the ID of an order's saga; one order, one workflow.
func WorkflowID(orderID string) string { return "order-" + orderID }

// IDOf returns the order id of an Order saga's workflow id, and false
// for a workflow id WorkflowID did not make.
func IDOf(workflowID string) (string, bool) { return strings.CutPrefix(workflowID, "order-") }

// Input is what the gateway accepted: the order the saga writes (its
// fields, promoted, keep their JSON names, so histories written before the
// embedding decode alike) and how to charge and fulfil it. The shipping
// address is personal data: it travels sealed by the payload codec and is
// stored sealed by Create.
type Input struct {
	orders.CreateOrderInput
	PaymentToken string `json:"payment_token"`
	// Payment parking: while no provider can take the charge, the order
	// waits in PAYMENT_PENDING and the charge is retried on durable timers,
	// the interval doubling from PaymentRetryInitial to PaymentRetryMax, until
	// PaymentDeadline after it was parked. Zero values take the defaults
	// (30 min, 10 s, 2 min).
	PaymentDeadline     time.Duration `json:"payment_deadline,omitempty"`
	PaymentRetryInitial time.Duration `json:"payment_retry_initial,omitempty"`
	PaymentRetryMax     time.Duration `json:"payment_retry_max,omitempty"`
	// Fulfill: after CONFIRMED the saga fulfils the order (fulfil):
	// shipments, the carrier's events, DELIVERED. Without it the order
	// ends CONFIRMED, as every order did before fulfillment.
	Fulfill bool `json:"fulfill,omitempty"`
	// ShipmentSLA is how long shipments may wait for the carrier's pickup
	// before the order is flagged FULFILLMENT_OVERDUE; zero means 48 h.
	ShipmentSLA time.Duration `json:"shipment_sla,omitempty"`
}

// View is the saga's answer to StatusQuery and its result.
type View struct {
	OrderID         string           `json:"order_id"`
	CustomerID      string           `json:"customer_id"`
	Status          string           `json:"status"`
	FailureReason   string           `json:"failure_reason,omitempty"`
	Lines           []orderflow.Line `json:"lines,omitempty"`
	TotalCents      int64            `json:"total_cents"`
	Currency        string           `json:"currency,omitempty"`
	ChargeID        string           `json:"charge_id,omitempty"`
	CancelRequested bool             `json:"cancel_requested"`
	UpdatedAt       time.Time        `json:"updated_at"`
	// Shipments of a fulfilled order, as the saga last heard of them.
	Shipments []fulfillment.Shipment `json:"shipments,omitempty"`
	// Overdue: a shipment missed the SLA for its pickup.
	Overdue bool `json:"overdue,omitempty"`
	// Authorization is the payment authorization of an order that is
	// authorized at confirmation and captured as it ships (sagas since
	// authorizeCapture); nil for an order charged in one go.
	Authorization *Authorization `json:"authorization,omitempty"`
	// Captures taken from the authorization, in the order they were taken:
	// one per shipment that left its warehouse, or one for the whole order
	// without fulfillment.
	Captures []Capture `json:"captures,omitempty"`
}

// Authorization is the order's current payment authorization.
type Authorization struct {
	Provider    string `json:"provider"`
	ChargeID    string `json:"charge_id"`
	AmountCents int64  `json:"amount_cents"`
	// ExpiresAt is when the provider lets the authorization lapse; the
	// saga renews it shortly before while goods are still to ship.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// Renewal counts re-authorizations: 0 for the first authorization.
	Renewal int `json:"renewal"`
	// Released: the uncaptured remainder was released (the last capture was
	// final, or the rest was voided); nothing more will be captured.
	Released bool `json:"released,omitempty"`
}

// Capture is one capture from the authorization.
type Capture struct {
	// ShipmentID is the shipment whose departure it paid for; empty for
	// the capture of an order without fulfillment.
	ShipmentID    string `json:"shipment_id,omitempty"`
	CaptureID     string `json:"capture_id"`
	CapturedCents int64  `json:"captured_cents"`
	// ReleasedCents: what the final capture released of the authorization.
	ReleasedCents int64 `json:"released_cents,omitempty"`
	Final         bool  `json:"final,omitempty"`
}

// CancelRequest is the argument of CancelUpdate.
type CancelRequest struct {
	Reason string `json:"reason,omitempty"`
}

// CancelResult answers an accepted CancelUpdate with the status at that moment.
type CancelResult struct {
	Status string `json:"status"`
}

// Retry and timeout settings of the design.
var (
	// forwardRetry: 100 ms, 200, 400, 800, then give up after 5 attempts.
	forwardRetry = &temporal.RetryPolicy{
		InitialInterval:    100 * time.Millisecond,
		BackoffCoefficient: 2,
		MaximumInterval:    800 * time.Millisecond,
		MaximumAttempts:    5,
	}
	// compensationRetry never gives up on infrastructure errors: a release or
	// refund that stops trying loses stock or money.
	compensationRetry = &temporal.RetryPolicy{
		InitialInterval:    100 * time.Millisecond,
		BackoffCoefficient: 2,
		MaximumInterval:    30 * time.Second,
	}
)

const (
	serviceTimeout = 3 * time.Second  // service-to-service (database-backed) activities
	paymentTimeout = 10 * time.Second // the payment provider
	// compensationDeadline bounds a compensation's retries in total. It is
	// far longer than any outage the platform expects to ride out; past it
	// the workflow fails with CompensationFailed for an operator.
	compensationDeadline = 7 * 24 * time.Hour
)

// forwardOptions are a forward step's local activity options. A local
// activity's schedule-to-close defaults to its start-to-close, which would
// cap all attempts together at one attempt's timeout; give every one of the
// policy's attempts its full timeout plus the backoff between them.
func forwardOptions(ctx workflow.Context, timeout time.Duration) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout:    timeout,
		ScheduleToCloseTimeout: time.Duration(forwardRetry.MaximumAttempts)*timeout + 2*time.Second,
		RetryPolicy:            forwardRetry,
	})
}

func compensationOptions(ctx workflow.Context, timeout time.Duration) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout:    timeout,
		ScheduleToCloseTimeout: compensationDeadline,
		RetryPolicy:            compensationRetry,
	})
}

// Saga is the order saga: reserve inventory, charge payment, confirm the
// order, notify the customer. The notification is written to the outbox by
// the confirming (or failing) transaction itself and delivered by the
// worker's non-critical pool, so it is never lost and never holds up the saga. When a step fails, or the order is cancelled
// before it is confirmed, the steps already taken are compensated in reverse
// order on a disconnected context and the order ends FAILED or CANCELLED.
//
// Business outcomes (CONFIRMED, FAILED, CANCELLED) complete the workflow with
// an View. The workflow itself fails only when an operator is needed:
// a compensation could not be carried out (CompensationFailed), or Confirm
// failed non-retryably after the customer paid (ConfirmFailed; the order is
// held PAID, uncompensated, for a reset once the fault is fixed).
func Saga(ctx workflow.Context, in Input) (View, error) {
	o := &saga{in: in, view: View{OrderID: in.OrderID, CustomerID: in.CustomerID, Status: orderflow.StatusPending}}
	if err := o.setup(ctx); err != nil {
		return o.view, err
	}
	return o.run(ctx)
}

type saga struct {
	in   Input
	view View

	// confirming is set just before Confirm runs: from then on cancel is too late.
	confirming bool
	// cancelStep interrupts the forward step in flight when cancel is
	// accepted (sagas before stepsFinish), or the durable timer of a parked
	// payment.
	cancelStep workflow.CancelFunc
	// wake, when set, cuts a parked payment's timer short: the provider's
	// webhook answered (pending.go).
	wake workflow.ReceiveChannel
	// fulfilling is set once the order is confirmed into fulfillment: a
	// cancel is accepted again until a shipment has left.
	fulfilling bool
	// fulfillment's carrier events, queued by their update handler and
	// applied in order by the main loop (see fulfil).
	carrier carrierState
	// renewAt is when the payment authorization is renewed while goods are
	// still to be captured (sagas since authorizeCapture); lapsing is set
	// when a renewal failed, until fulfil cancelled what had not shipped.
	renewAt time.Time
	lapsing bool
	// compensations run in reverse order; each is registered before its step
	// runs, because a step cut short may or may not have taken effect and
	// every compensation is a no-op when there is nothing to undo.
	compensations []compensation
}

// compensation is an activity that undoes a step, with the argument it needs.
type compensation struct {
	name    string
	timeout time.Duration
	fn, arg any
}

var errCancelled = errors.New("order cancelled")

func (o *saga) setup(ctx workflow.Context) error {
	o.view.UpdatedAt = workflow.Now(ctx)
	workflow.SetCurrentDetails(ctx, statusDetails(o.view.Status, ""))
	if err := workflow.SetQueryHandler(ctx, StatusQuery, func() (View, error) { return o.view, nil }); err != nil {
		return fmt.Errorf("register %s query: %w", StatusQuery, err)
	}
	if err := o.registerCarrierEvents(ctx); err != nil {
		return fmt.Errorf("register %s update: %w", CarrierEventUpdate, err)
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, CancelUpdate,
		func(ctx workflow.Context, _ CancelRequest) (CancelResult, error) {
			o.view.CancelRequested = true
			if o.cancelStep != nil {
				o.cancelStep()
			}
			return CancelResult{Status: o.view.Status}, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, _ CancelRequest) error {
			if o.fulfilling {
				return o.validateCancelFulfilling()
			}
			if o.confirming || orderflow.Terminal(o.view.Status) || o.view.Status == orderflow.StatusCompensating {
				return temporal.NewApplicationError("order is "+o.statusForCancel()+"; too late to cancel", string(orderflow.TooLateToCancel), o.statusForCancel())
			}
			return nil
		}})
}

func (o *saga) statusForCancel() string {
	if o.confirming && !orderflow.Terminal(o.view.Status) {
		return "being confirmed"
	}
	return o.view.Status
}

func (o *saga) run(ctx workflow.Context) (View, error) {
	var ord *orders.Activities
	var inv *catalog.Inventory
	var pay *payment.Activities

	// The order is written even when it is cancelled before a worker got to
	// it: an accepted order always has its record.
	var created orders.CreateOrderResult
	cctx, cancelCreate := workflow.NewDisconnectedContext(ctx)
	defer cancelCreate()
	cctx = forwardOptions(cctx, serviceTimeout)
	err := workflow.ExecuteLocalActivity(cctx, ord.Create, o.in.CreateOrderInput).Get(cctx, &created)
	if err != nil {
		return o.abort(ctx, err, ReasonCreateFailed)
	}
	o.view.Lines, o.view.TotalCents, o.view.Currency = created.Lines, created.TotalCents, created.Currency
	if started, ok := workflow.GetTypedSearchAttributes(ctx).GetInt64(OrderTotalCentsKey); !ok || started != created.TotalCents {
		if err := workflow.UpsertTypedSearchAttributes(ctx, OrderTotalCentsKey.ValueSet(created.TotalCents)); err != nil {
			return o.view, fmt.Errorf("upsert total: %w", err)
		}
	}
	ref := orderflow.OrderRef{OrderID: o.in.OrderID}

	o.compensate("release inventory", serviceTimeout, inv.Release, ref)
	if err := o.step(ctx, serviceTimeout, inv.Reserve, catalog.ReserveInput{OrderID: o.in.OrderID, Lines: created.Lines}, nil); err != nil {
		return o.abort(ctx, err, ReasonInventoryFailed)
	}
	o.setStatus(ctx, orderflow.StatusReserved)
	if (o.view.CancelRequested || ctx.Err() != nil) && workflow.GetVersion(ctx, stepsFinish, workflow.DefaultVersion, 1) == 1 {
		// Cancelled while the reserve ran: nothing was charged.
		return o.abort(ctx, errCancelled, ReasonCancelled)
	}

	// Refund also voids an authorization and refunds its captures, so it
	// compensates either way of paying.
	o.compensate("refund payment", paymentTimeout, pay.Refund, ref)
	chargeIn := payment.ChargeInput{
		OrderID: o.in.OrderID, Token: o.in.PaymentToken, AmountCents: created.TotalCents, Currency: created.Currency,
	}
	authorizing := workflow.GetVersion(ctx, authorizeCapture, workflow.DefaultVersion, 1) == 1
	if authorizing {
		var auth payment.AuthorizeResult
		if err := o.pay(ctx, pay.Authorize, payment.AuthorizeInput{ChargeInput: chargeIn}, &auth); err != nil {
			return o.abort(ctx, err, ReasonPaymentUnavailable)
		}
		o.authorized(ctx, auth, 0)
		o.setStatus(ctx, orderflow.StatusAuthorized)
	} else {
		var charge payment.ChargeResult
		if err := o.pay(ctx, pay.Charge, chargeIn, &charge); err != nil {
			return o.abort(ctx, err, ReasonPaymentUnavailable)
		}
		o.view.ChargeID = charge.ChargeID
		o.setStatus(ctx, orderflow.StatusPaid)
	}

	if o.view.CancelRequested || ctx.Err() != nil {
		return o.abort(ctx, errCancelled, ReasonCancelled)
	}
	if o.in.Fulfill && workflow.GetVersion(ctx, fulfillmentVersion, workflow.DefaultVersion, 1) == 1 {
		return o.fulfil(ctx, created.Lines)
	}
	// The point of no return: the cancel Update is refused from here on, and
	// a workflow cancellation no longer interrupts the saga, so an order that
	// started confirming ends CONFIRMED (unless Confirm itself fails).
	o.confirming = true
	fctx, cancelFinish := workflow.NewDisconnectedContext(ctx)
	defer cancelFinish()
	if authorizing {
		// Without fulfillment nothing ships later: the whole order is
		// captured as it is confirmed.
		// The capture goes to the provider holding the authorization: while
		// it cannot be asked, the order parks as a charge does.
		var captured payment.CaptureResult
		err := o.pay(fctx, pay.Capture, payment.CaptureInput{
			OrderID: o.in.OrderID, AmountCents: created.TotalCents, Final: true,
		}, &captured)
		if err != nil {
			return o.abort(ctx, err, ReasonPaymentUnavailable)
		}
		o.recordCapture("", captured, true)
		// Captured in full: the order is paid, as a charged one is, and
		// rests PAID if its confirmation is held for an operator.
		if err := o.record(fctx, orderflow.StatusPaid, ""); err != nil {
			return o.abort(ctx, err, ReasonConfirmFailed)
		}
		o.setStatus(fctx, orderflow.StatusPaid)
	}
	o.compensate("revert confirmation", serviceTimeout, ord.Revert, ref)
	if err := workflow.ExecuteLocalActivity(forwardOptions(fctx, serviceTimeout), ord.Confirm, ref).Get(fctx, nil); err != nil {
		if nonRetryable(err) && workflow.GetVersion(fctx, confirmFaultHolds, workflow.DefaultVersion, 1) == 1 {
			return o.holdForOperator(fctx, err)
		}
		return o.abort(ctx, err, ReasonConfirmFailed)
	}
	o.setStatus(fctx, orderflow.StatusConfirmed)
	return o.view, nil
}

// Defaults of the payment parking schedule.
const (
	defaultPaymentDeadline     = 30 * time.Minute
	defaultPaymentRetryInitial = 10 * time.Second
	defaultPaymentRetryMax     = 2 * time.Minute
)

// cancelAnswered is the change ID of the workflow task a cancel ends before
// compensating, so the canceller's answer does not wait for the refund.
const cancelAnswered = "cancel-answered-first"

// paymentParking is the change ID of the queued fallback: histories from
// before it failed the order where it now parks.
const paymentParking = "payment-parking"

// confirmFaultHolds is the change ID of holdForOperator: histories from
// before it compensated a paid order whose Confirm failed non-retryably. It
// is asked only on that failure path, so other histories carry no marker.
const confirmFaultHolds = "confirm-fault-holds-for-operator"

// holdForOperator ends a saga whose Confirm failed with a non-retryable
// error after the customer paid. No retry can fix such a fault, and
// refunding a customer because our own write failed is the wrong outcome,
// so nothing is compensated: the order stays PAID, its stock held and its
// charge kept, and the workflow fails with a ConfirmFailed error naming the
// order. Once the fault is fixed, an operator resets the saga (temporal
// workflow reset, docs/operations.md); every step is idempotent by order, so
// the new run charges nothing twice and confirms the order.
func (o *saga) holdForOperator(ctx workflow.Context, cause error) (View, error) {
	workflow.GetLogger(ctx).Error("confirm failed after payment; order held for an operator",
		"order_id", o.in.OrderID, "charge_id", o.view.ChargeID, "error", cause)
	// PAID is otherwise passed through without an upsert (setStatus); here
	// the saga rests in it, so visibility shows it.
	o.view.UpdatedAt = workflow.Now(ctx)
	workflow.SetCurrentDetails(ctx, "**Order status: PAID** — payment charged, but the confirmation failed: held for an operator, "+
		"who resets the saga once the fault is fixed (docs/operations.md, ConfirmFailed).")
	if err := workflow.UpsertTypedSearchAttributes(ctx, OrderStatusKey.ValueSet(orderflow.StatusPaid)); err != nil {
		workflow.GetLogger(ctx).Warn("upsert OrderStatus failed", "order_id", o.in.OrderID, "error", err)
	}
	return o.view, temporal.NewNonRetryableApplicationError(
		"order "+o.in.OrderID+" is paid but could not be confirmed; fix the fault, then reset the workflow",
		string(orderflow.ConfirmFailed), cause, o.in.OrderID)
}

// nonRetryable reports whether a step failed with an error its retry policy
// does not retry: a non-retryable application error.
func nonRetryable(err error) bool {
	var app *temporal.ApplicationError
	return errors.As(err, &app) && app.NonRetryable()
}

// pay runs the payment step: fn (Charge, or Authorize since
// authorizeCapture) with in, its result into res. When no provider can take
// the payment (the step fails for any reason but a decline or an invalid
// request), the order is parked in PAYMENT_PENDING and the step is tried
// again on durable timers until the payment deadline; the last error is
// returned when it passes. Cancel is accepted while the order is parked.
func (o *saga) pay(ctx workflow.Context, fn, in, res any) error {
	err := o.step(ctx, paymentTimeout, fn, in, res)
	if !parkable(err) || workflow.GetVersion(ctx, paymentParking, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return err
	}
	wait, maxWait, deadline := o.in.PaymentRetryInitial, o.in.PaymentRetryMax, o.in.PaymentDeadline
	if wait <= 0 {
		wait = defaultPaymentRetryInitial
	}
	if maxWait <= 0 {
		maxWait = defaultPaymentRetryMax
	}
	if deadline <= 0 {
		deadline = defaultPaymentDeadline
	}
	until := workflow.Now(ctx).Add(deadline)
	logger := workflow.GetLogger(ctx)
	logger.Warn("payment unavailable; order parked", "order_id", o.in.OrderID, "deadline", until, "error", err)
	o.setStatus(ctx, orderflow.StatusPaymentPending)
	if rerr := o.record(ctx, orderflow.StatusPaymentPending, ""); rerr != nil {
		return rerr
	}
	o.wakeOnPaymentOutcome(ctx)
	defer func() { o.wake = nil }()
	for attempt := 2; ; attempt++ {
		left := until.Sub(workflow.Now(ctx))
		if left <= 0 {
			logger.Warn("payment deadline passed", "order_id", o.in.OrderID, "attempts", attempt-1)
			return err
		}
		if serr := o.sleep(ctx, min(wait, left)); serr != nil {
			return serr
		}
		wait = min(2*wait, maxWait)
		err = o.step(ctx, paymentTimeout, fn, in, res)
		if !parkable(err) {
			if err == nil {
				logger.Info("parked order paid", "order_id", o.in.OrderID, "attempts", attempt)
			}
			return err
		}
	}
}

// parkable reports whether a failed payment step may succeed later: anything
// but success, cancellation, a decline, an invalid request and a capture the
// authorization refuses.
func parkable(err error) bool {
	if err == nil || errors.Is(err, errCancelled) {
		return false
	}
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		switch orderflow.Kind(app.Type()) {
		case orderflow.PaymentDeclined, orderflow.InvalidOrder, orderflow.AuthorizationExpired, orderflow.CaptureExceedsAuthorization:
			return false
		}
	}
	return true
}

// sleep waits on a durable timer that an accepted cancel interrupts; it
// returns errCancelled when the order was cancelled.
func (o *saga) sleep(ctx workflow.Context, d time.Duration) error {
	if o.view.CancelRequested || ctx.Err() != nil {
		return errCancelled
	}
	tctx, cancel := workflow.WithCancel(ctx)
	o.cancelStep = cancel
	defer func() { o.cancelStep = nil; cancel() }()
	err := o.timer(tctx, d)
	if o.view.CancelRequested || ctx.Err() != nil {
		return errCancelled
	}
	return err
}

// stepsFinish is the change ID of sagas whose forward step in flight is
// never cut short by a cancel (the Update or the workflow's cancellation):
// the cancel takes effect when the step ends. Before it, a charge cut short
// on the worker could still reach the provider after the refund had looked
// for it, leaving a cancelled order charged and never refunded.
const stepsFinish = "cancel-lets-the-step-finish"

// step runs one forward step as a local activity with the design's retry
// policy. It returns errCancelled when the order was cancelled before or
// while the step ran.
func (o *saga) step(ctx workflow.Context, timeout time.Duration, fn, arg, result any) error {
	if o.view.CancelRequested || ctx.Err() != nil {
		return errCancelled
	}
	var sctx workflow.Context
	var cancel workflow.CancelFunc
	if workflow.GetVersion(ctx, stepsFinish, workflow.DefaultVersion, 1) == 1 {
		sctx, cancel = workflow.NewDisconnectedContext(ctx)
	} else {
		sctx, cancel = workflow.WithCancel(ctx)
		o.cancelStep = cancel
	}
	defer func() { o.cancelStep = nil; cancel() }()
	sctx = forwardOptions(sctx, timeout)
	err := workflow.ExecuteLocalActivity(sctx, fn, arg).Get(sctx, result)
	if err != nil && (o.view.CancelRequested || ctx.Err() != nil) {
		return errCancelled
	}
	return err
}

func (o *saga) compensate(name string, timeout time.Duration, fn, arg any) {
	o.compensations = append(o.compensations, compensation{name: name, timeout: timeout, fn: fn, arg: arg})
}

// abort compensates and ends the order. stepReason is the failure reason for
// infrastructure errors of the failed step; business errors carry their own.
func (o *saga) abort(ctx workflow.Context, cause error, stepReason string) (View, error) {
	logger := workflow.GetLogger(ctx)
	final, reason := orderflow.StatusFailed, failureReason(cause, stepReason)
	if errors.Is(cause, errCancelled) {
		final, reason = orderflow.StatusCancelled, ReasonCancelled
	}
	logger.Info("order saga aborting", "order_id", o.in.OrderID, "reason", reason, "error", cause)

	// A cancelled workflow context must not stop the compensations.
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	// The cancel Update's outcome reaches the server with the workflow task
	// that ran its handler. The compensations below are local activities in
	// that same task, and a refund waiting on a provider that is down would
	// hold the answer back for as long; end the task first.
	if o.view.CancelRequested && workflow.GetVersion(dctx, cancelAnswered, workflow.DefaultVersion, 1) == 1 {
		_ = workflow.Sleep(dctx, time.Millisecond)
	}
	var failed []error
	if len(o.compensations) > 0 {
		o.setStatus(dctx, orderflow.StatusCompensating)
		if err := o.record(dctx, orderflow.StatusCompensating, ""); err != nil {
			failed = append(failed, err)
		}
		for i := len(o.compensations) - 1; i >= 0; i-- {
			c := o.compensations[i]
			err := workflow.ExecuteLocalActivity(compensationOptions(dctx, c.timeout), c.fn, c.arg).Get(dctx, nil)
			countCompensation(dctx, c.name, err)
			if err != nil {
				logger.Error("compensation failed", "order_id", o.in.OrderID, "step", c.name, "error", err)
				failed = append(failed, fmt.Errorf("%s: %w", c.name, err))
			}
		}
	}
	if a := o.view.Authorization; a != nil && len(failed) == 0 {
		a.Released = true // Refund voided what was not captured
	}
	o.view.FailureReason = reason
	if err := o.record(dctx, final, reason); err != nil {
		failed = append(failed, err)
	}
	o.setStatus(dctx, final)
	if len(failed) > 0 {
		return o.view, temporal.NewNonRetryableApplicationError("order "+o.in.OrderID+" needs an operator: compensation failed",
			string(orderflow.CompensationFailed), errors.Join(failed...))
	}
	return o.view, nil
}

// record writes a status the saga sets outside a forward step's own transaction.
func (o *saga) record(ctx workflow.Context, status, reason string) error {
	var ord *orders.Activities
	return workflow.ExecuteLocalActivity(compensationOptions(ctx, serviceTimeout), ord.SetStatus,
		orders.SetStatusInput{OrderID: o.in.OrderID, Status: status, FailureReason: reason}).Get(ctx, nil)
}

// setStatus moves the saga's view to a status and, where the saga rests, the
// OrderStatus search attribute with it (PENDING is set when the gateway
// starts the saga). RESERVED, AUTHORIZED and PAID are passed through inside one workflow
// task, since every step is a local activity, so visibility would only show
// them during a step that outlasts the workflow task heartbeat (8 s).
// Upserting them anyway cost the server an event and a visibility write
// each, about a quarter of its work per order (docs/performance.md). The
// database and the API record every status. The status in words goes to the
// workflow's current details at every status: that is a field the Web UI
// reads with a query, never an event.
func (o *saga) setStatus(ctx workflow.Context, status string) {
	o.view.Status = status
	o.view.UpdatedAt = workflow.Now(ctx)
	workflow.SetCurrentDetails(ctx, statusDetails(status, o.view.FailureReason))
	if orderflow.Terminal(status) {
		o.observeEnd(ctx)
	}
	if status == orderflow.StatusReserved || status == orderflow.StatusPaid || status == orderflow.StatusAuthorized {
		return
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, OrderStatusKey.ValueSet(status)); err != nil {
		workflow.GetLogger(ctx).Warn("upsert OrderStatus failed", "order_id", o.in.OrderID, "error", err)
	}
}

// statusWords says each status in words, for statusDetails.
var statusWords = map[string]string{
	orderflow.StatusPending:            "accepted; the order is being recorded and its stock reserved.",
	orderflow.StatusReserved:           "stock reserved; charging the payment.",
	orderflow.StatusPaymentPending:     "stock reserved; no payment provider can take the charge, so the order is parked and the charge is retried until the payment deadline.",
	orderflow.StatusPaid:               "payment charged; confirming the order.",
	orderflow.StatusAuthorized:         "payment authorized; confirming the order, whose shipments are captured as they leave.",
	orderflow.StatusConfirmed:          "confirmed: stock reserved, payment charged, the customer's notification queued.",
	orderflow.StatusCompensating:       "a step failed or the order was cancelled; undoing the steps taken.",
	orderflow.StatusCancelled:          "cancelled on request.",
	orderflow.StatusFulfilling:         "confirmed; shipments allocated to warehouses and handed to the carrier, waiting for pickup.",
	orderflow.StatusFulfillmentOverdue: "a shipment was not picked up within the shipment SLA: an operator should chase the warehouse or the carrier.",
	orderflow.StatusPartiallyShipped:   "some shipments left their warehouse; waiting for the others.",
	orderflow.StatusShipped:            "every shipment left its warehouse; waiting for delivery.",
	orderflow.StatusDelivered:          "delivered.",
}

// statusDetails is the saga's current details, in the Web UI's markdown: the
// status in words.
func statusDetails(status, reason string) string {
	words, ok := statusWords[status]
	if status == orderflow.StatusFailed {
		words, ok = "failed: "+reason+".", true
	}
	if !ok {
		return "**Order status: " + status + "**"
	}
	return "**Order status: " + status + "** — " + words
}

// Metrics the saga records through workflow.GetMetricsHandler, which the
// SDK silences while a worker replays history, so each is recorded once per
// order (again only if a workflow task is retried after recording it). They
// add no event to the history. The Prometheus exporter names them
// orderflow_orders_completed_total, orderflow_saga_duration_seconds and
// orderflow_saga_compensations_total, labelled also with the SDK's
// namespace, task_queue and workflow_type.
const (
	// MetricCompleted counts orders reaching a terminal status, by status
	// and reason (the failure reason, "none" for CONFIRMED).
	MetricCompleted = "orderflow.orders.completed"
	// MetricSagaDuration is the time from the saga's start (the order's
	// acceptance) to its terminal status, by status, in seconds.
	// internal/telemetry gives it buckets of its own under this name.
	MetricSagaDuration = "orderflow.saga.duration"
	// MetricCompensations counts compensations run, by step and result
	// (ok or failed).
	MetricCompensations = "orderflow.saga.compensations"
)

// observeEnd records the order's terminal status, failure reason and saga
// duration.
func (o *saga) observeEnd(ctx workflow.Context) {
	reason := o.view.FailureReason
	if reason == "" {
		reason = "none"
	}
	h := workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"status": o.view.Status, "reason": reason})
	h.Counter(MetricCompleted).Inc(1)
	workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"status": o.view.Status}).
		Timer(MetricSagaDuration).Record(workflow.Now(ctx).Sub(workflow.GetInfo(ctx).WorkflowStartTime))
}

// countCompensation records one compensation's outcome; the step label is
// its name in snake case ("release_inventory").
func countCompensation(ctx workflow.Context, name string, err error) {
	result := "ok"
	if err != nil {
		result = "failed"
	}
	workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"step": strings.ReplaceAll(name, " ", "_"), "result": result}).
		Counter(MetricCompensations).Inc(1)
}

// failureReason maps a step's error to the order's failure reason: business
// errors by their application error type, anything else to the step's reason.
func failureReason(err error, stepReason string) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		switch app.Type() {
		case string(orderflow.OutOfStock):
			return ReasonOutOfStock
		case string(orderflow.PaymentDeclined):
			return ReasonPaymentDeclined
		case string(orderflow.InvalidOrder):
			return ReasonInvalidOrder
		}
	}
	return stepReason
}
