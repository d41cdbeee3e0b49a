package order_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	sdkpb "go.temporal.io/api/sdk/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/catalog"
	"github.com/orderflow/orderflow/activities/fulfillment"
	"github.com/orderflow/orderflow/activities/orders"
	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/workflows/order"
)

// The saga calls its activities as local activities through nil struct
// pointers; the mocks are keyed by the same method values, whose activity
// names are the bare method names ("Reserve", "Charge", ...).
var (
	ordersActs *orders.Activities
	invActs    *catalog.Inventory
	payActs    *payment.Activities
)

// Names of the compensating activities, in the order the saga registers their
// forward steps.
var compensationNames = []string{"Release", "Refund", "Revert", "CancelShipments"}

func testInput() order.Input {
	return order.Input{CreateOrderInput: orders.CreateOrderInput{
		OrderID:         "o-1",
		CustomerID:      "c-1",
		Email:           "ada@example.com",
		Region:          "eu",
		Items:           []orderflow.Item{{SKU: "SKU-1", Quantity: 2}},
		ShippingAddress: &testAddress,
	}, PaymentToken: "tok_visa"}
}

var testAddress = orderflow.Address{Name: "Ada", Line1: "1 Main St", City: "Lyon", PostalCode: "69001", Country: "FR"}

var testCreated = orders.CreateOrderResult{
	Lines:      []orderflow.Line{{SKU: "SKU-1", Quantity: 2, UnitPriceCents: 1500}},
	TotalCents: 3000,
	Currency:   "EUR",
}

var testCharge = payment.ChargeResult{Provider: "sim", ChargeID: "ch_1"}

// errInfra is an infrastructure failure: a plain error Temporal retries.
var errInfra = errors.New("connection refused")

func businessErr(kind orderflow.Kind) error {
	return temporal.NewNonRetryableApplicationError("business failure "+string(kind), string(kind), nil)
}

// orderTest runs the Order saga in a TestWorkflowEnvironment and records what
// it did: every local activity attempt in start order and every OrderStatus
// search attribute upsert.
type orderTest struct {
	t   *testing.T
	env *testsuite.TestWorkflowEnvironment

	mu       sync.Mutex
	calls    []string // "Charge", "SetStatus(FAILED)", one per attempt
	statuses []string // OrderStatus values upserted, in order
}

func newOrderTest(t *testing.T) *orderTest {
	t.Helper()
	return newOrderTestIn(t, &testsuite.WorkflowTestSuite{})
}

// newOrderTestIn is newOrderTest in a suite the test set up (its metrics
// handler, say).
//
// Its saga charges the order in full, as every saga did before it
// authorized and captured (authorize_test.go tests those, through
// newAuthTest): running sagas and their histories still take that branch.
func newOrderTestIn(t *testing.T, s *testsuite.WorkflowTestSuite) *orderTest {
	t.Helper()
	h := newSagaTest(t, s)
	h.env.OnGetVersion(authorizeCapture, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion).Maybe()
	return h
}

// authorizeCapture is the saga's change ID of authorizing at the payment
// step and capturing as the order ships.
const authorizeCapture = "authorize-then-capture"

// newSagaTest runs the current saga.
func newSagaTest(t *testing.T, s *testsuite.WorkflowTestSuite) *orderTest {
	t.Helper()
	h := &orderTest{t: t, env: s.NewTestWorkflowEnvironment()}
	env := h.env
	env.RegisterWorkflowWithOptions(order.Saga, workflow.RegisterOptions{Name: order.Workflow})
	env.RegisterActivity(&orders.Activities{})
	env.RegisterActivity(&catalog.Inventory{})
	env.RegisterActivity(&payment.Activities{})
	env.RegisterActivity(&fulfillment.Activities{})

	env.SetOnLocalActivityStartedListener(func(info *activity.Info, _ context.Context, args []any) {
		name := info.ActivityType.Name
		if len(args) == 1 {
			switch in := args[0].(type) {
			case orders.SetStatusInput:
				name = fmt.Sprintf("SetStatus(%s)", in.Status)
			case payment.CaptureInput:
				name = fmt.Sprintf("Capture(%s %d)", in.ShipmentID, in.AmountCents)
				if in.Final {
					name = fmt.Sprintf("Capture(%s %d final)", in.ShipmentID, in.AmountCents)
				}
			case payment.AuthorizeInput:
				if in.Renewal > 0 {
					name = fmt.Sprintf("Authorize(renewal %d: %d)", in.Renewal, in.AmountCents)
				}
			}
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		h.calls = append(h.calls, name)
	})
	env.OnUpsertTypedSearchAttributes(mock.Anything).Maybe().Run(func(args mock.Arguments) {
		sa, ok := args.Get(0).(temporal.SearchAttributes)
		if !ok {
			return
		}
		if v, ok := sa.GetKeyword(order.OrderStatusKey); ok {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.statuses = append(h.statuses, v)
		}
	})
	return h
}

// mockDefaults gives every activity a successful default. Tests register their
// specific mocks first: testify picks the first matching expectation that is
// not used up, so these only answer the calls a test did not script.
func (h *orderTest) mockDefaults() {
	env := h.env
	env.OnActivity(ordersActs.Create, mock.Anything, mock.Anything).Return(testCreated, nil).Maybe()
	env.OnActivity(invActs.Reserve, mock.Anything, mock.Anything).Return(nil).Maybe()
	env.OnActivity(invActs.Release, mock.Anything, mock.Anything).Return(nil).Maybe()
	env.OnActivity(payActs.Charge, mock.Anything, mock.Anything).Return(testCharge, nil).Maybe()
	env.OnActivity(payActs.Authorize, mock.Anything, mock.Anything).Return(testAuth, nil).Maybe()
	env.OnActivity(payActs.Capture, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in payment.CaptureInput) (payment.CaptureResult, error) {
			return payment.CaptureResult{CaptureID: "cap_" + in.ShipmentID, CapturedCents: in.AmountCents}, nil
		}).Maybe()
	env.OnActivity(payActs.Void, mock.Anything, mock.Anything).Return(payment.VoidResult{Voided: true}, nil).Maybe()
	env.OnActivity(payActs.Refund, mock.Anything, mock.Anything).Return(payment.RefundResult{Refunded: true}, nil).Maybe()
	env.OnActivity(ordersActs.Confirm, mock.Anything, mock.Anything).Return(nil).Maybe()
	env.OnActivity(ordersActs.Revert, mock.Anything, mock.Anything).Return(nil).Maybe()
	env.OnActivity(ordersActs.SetStatus, mock.Anything, mock.Anything).Return(nil).Maybe()
}

func (h *orderTest) run() {
	h.t.Helper()
	h.mockDefaults()
	h.env.ExecuteWorkflow(order.Workflow, testInput())
	require.True(h.t, h.env.IsWorkflowCompleted(), "workflow did not complete")
}

// result returns the saga's View and requires that it completed without error.
func (h *orderTest) result() order.View {
	h.t.Helper()
	require.NoError(h.t, h.env.GetWorkflowError())
	var v order.View
	require.NoError(h.t, h.env.GetWorkflowResult(&v))
	return v
}

func (h *orderTest) query() order.View {
	h.t.Helper()
	val, err := h.env.QueryWorkflow(order.StatusQuery)
	require.NoError(h.t, err)
	var v order.View
	require.NoError(h.t, val.Get(&v))
	return v
}

func (h *orderTest) recorded() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.calls)
}

func (h *orderTest) upserted() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.statuses)
}

// attempts is how many times the named local activity was started.
func (h *orderTest) attempts(name string) int {
	n := 0
	for _, c := range h.recorded() {
		if c == name {
			n++
		}
	}
	return n
}

// compensations lists the compensating activity attempts in the order they ran.
func (h *orderTest) compensations() []string {
	var out []string
	for _, c := range h.recorded() {
		if slices.Contains(compensationNames, c) {
			out = append(out, c)
		}
	}
	return out
}

// updateOutcome is what the cancel update's caller saw.
type updateOutcome struct {
	accepted, rejected, completed bool
	rejectErr, completeErr        error
	result                        order.CancelResult
}

// cancelAfter sends the cancel update after d on the workflow clock.
func (h *orderTest) cancelAfter(d time.Duration) *updateOutcome {
	out := &updateOutcome{}
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(order.CancelUpdate, "cancel-1", &testsuite.TestUpdateCallback{
			OnAccept: func() { out.accepted = true },
			OnReject: func(err error) { out.rejected, out.rejectErr = true, err },
			OnComplete: func(v any, err error) {
				out.completed, out.completeErr = true, err
				if r, ok := v.(order.CancelResult); ok {
					out.result = r
				}
			},
		}, order.CancelRequest{Reason: "customer changed their mind"})
	}, d)
	return out
}

func requireAppErrType(t *testing.T, err error, want orderflow.Kind) *temporal.ApplicationError {
	t.Helper()
	require.Error(t, err)
	var app *temporal.ApplicationError
	require.True(t, errors.As(err, &app), "want an application error of type %s, got %v", want, err)
	require.Equal(t, string(want), app.Type())
	return app
}

// --- forward path ----------------------------------------------------------

func TestOrder_HappyPath_ConfirmsAndCompensatesNothing(t *testing.T) {
	h := newOrderTest(t)
	// The charge must be for the priced total, not for anything the caller sent.
	h.env.OnActivity(payActs.Charge, mock.Anything, payment.ChargeInput{
		OrderID: "o-1", Token: "tok_visa", AmountCents: 3000, Currency: "EUR",
	}).Return(testCharge, nil).Once()
	h.run()

	v := h.result()
	assert.Equal(t, orderflow.StatusConfirmed, v.Status)
	assert.Empty(t, v.FailureReason)
	assert.Equal(t, "ch_1", v.ChargeID)
	assert.Equal(t, int64(3000), v.TotalCents)
	assert.Equal(t, "EUR", v.Currency)
	assert.Equal(t, testCreated.Lines, v.Lines)
	assert.False(t, v.CancelRequested)
	assert.Equal(t, []string{"Create", "Reserve", "Charge", "Confirm"}, h.recorded(),
		"forward steps once each, then the confirmation; no compensation, no status writes outside the steps")
	assert.Empty(t, h.compensations())
}

func TestOrder_OutOfStock_FailsReleasesAndNeverCharges(t *testing.T) {
	h := newOrderTest(t)
	h.env.OnActivity(invActs.Reserve, mock.Anything, mock.Anything).Return(businessErr(orderflow.OutOfStock)).Once()
	h.run()

	v := h.result()
	assert.Equal(t, orderflow.StatusFailed, v.Status)
	assert.Equal(t, order.ReasonOutOfStock, v.FailureReason)
	assert.Equal(t, 1, h.attempts("Reserve"), "a business error is not retried")
	assert.Equal(t, 0, h.attempts("Charge"))
	assert.Equal(t, []string{"Release"}, h.compensations())
	assert.Equal(t, []string{
		"Create", "Reserve", "SetStatus(COMPENSATING)", "Release", "SetStatus(FAILED)",
	}, h.recorded())
}

func TestOrder_PaymentDeclined_FailsRefundsThenReleasesAndNeverConfirms(t *testing.T) {
	h := newOrderTest(t)
	h.env.OnActivity(payActs.Charge, mock.Anything, mock.Anything).
		Return(payment.ChargeResult{}, businessErr(orderflow.PaymentDeclined)).Once()
	h.run()

	v := h.result()
	assert.Equal(t, orderflow.StatusFailed, v.Status)
	assert.Equal(t, order.ReasonPaymentDeclined, v.FailureReason)
	assert.Equal(t, 1, h.attempts("Charge"), "a decline is not retried")
	assert.Equal(t, 0, h.attempts("Confirm"))
	assert.Equal(t, []string{"Refund", "Release"}, h.compensations(), "compensations run in reverse order")
}

func TestOrder_TransientChargeErrors_ConfirmsOnTheThirdAttempt(t *testing.T) {
	h := newOrderTest(t)
	h.env.OnActivity(payActs.Charge, mock.Anything, mock.Anything).Return(payment.ChargeResult{}, errInfra).Times(2)
	h.env.OnActivity(payActs.Charge, mock.Anything, mock.Anything).Return(testCharge, nil).Once()
	h.run()

	v := h.result()
	assert.Equal(t, orderflow.StatusConfirmed, v.Status)
	assert.Equal(t, "ch_1", v.ChargeID)
	assert.Equal(t, 3, h.attempts("Charge"))
	assert.Empty(t, h.compensations())
}

// With the provider down for good, the order is parked after the policy's 5
// attempts and retried on timers (10 s doubling to 2 min, 5 attempts each)
// until the 30 min deadline, then compensated as payment_unavailable.
func TestOrder_PaymentProviderDown_ParksThenFailsPaymentUnavailableAtTheDeadline(t *testing.T) {
	h := newOrderTest(t)
	h.env.OnActivity(payActs.Charge, mock.Anything, mock.Anything).Return(payment.ChargeResult{}, errInfra)
	start := h.env.Now()
	h.run()

	v := h.result()
	assert.Equal(t, orderflow.StatusFailed, v.Status)
	assert.Equal(t, order.ReasonPaymentUnavailable, v.FailureReason)
	assert.GreaterOrEqual(t, h.env.Now().Sub(start), 30*time.Minute, "the order waits for its payment deadline")
	assert.Less(t, h.env.Now().Sub(start), 35*time.Minute)
	// 10+20+40+80+120*14 s fit in 30 min: 1 parking + 18 timed rounds of 5 attempts.
	assert.Equal(t, 5*19, h.attempts("Charge"))
	assert.Equal(t, 0, h.attempts("Confirm"))
	assert.Equal(t, 1, h.attempts("SetStatus(PAYMENT_PENDING)"))
	assert.Equal(t, []string{"Refund", "Release"}, h.compensations())
	assert.Equal(t, []string{orderflow.StatusPaymentPending, orderflow.StatusCompensating, orderflow.StatusFailed}, h.upserted())
}

// A charge no provider can take is parked at once: PaymentUnavailable is
// not retried by the step's policy, the timers retry it.
func TestOrder_PaymentUnavailable_ParksAndConfirmsWhenAProviderReturns(t *testing.T) {
	h := newOrderTest(t)
	h.env.OnActivity(payActs.Charge, mock.Anything, mock.Anything).Return(payment.ChargeResult{}, businessErr(orderflow.PaymentUnavailable)).Times(3)
	h.env.OnActivity(payActs.Charge, mock.Anything, mock.Anything).Return(testCharge, nil).Once()
	start := h.env.Now()
	h.run()

	v := h.result()
	assert.Equal(t, orderflow.StatusConfirmed, v.Status)
	assert.Equal(t, "ch_1", v.ChargeID)
	assert.Equal(t, 4, h.attempts("Charge"))
	assert.Equal(t, 1, h.attempts("SetStatus(PAYMENT_PENDING)"))
	assert.Empty(t, h.compensations())
	elapsed := h.env.Now().Sub(start)
	assert.GreaterOrEqual(t, elapsed, 70*time.Second, "timers of 10, 20 and 40 s")
	assert.Less(t, elapsed, 80*time.Second)
	assert.Equal(t, []string{orderflow.StatusPaymentPending, orderflow.StatusConfirmed}, h.upserted())
}

func TestOrder_ParkingSchedule_ComesFromTheInput(t *testing.T) {
	h := newOrderTest(t)
	h.env.OnActivity(payActs.Charge, mock.Anything, mock.Anything).Return(payment.ChargeResult{}, businessErr(orderflow.PaymentUnavailable))
	in := testInput()
	in.PaymentDeadline, in.PaymentRetryInitial, in.PaymentRetryMax = 10*time.Second, time.Second, 2*time.Second
	start := h.env.Now()
	h.mockDefaults()
	h.env.ExecuteWorkflow(order.Workflow, in)
	require.True(t, h.env.IsWorkflowCompleted())

	v := h.result()
	assert.Equal(t, order.ReasonPaymentUnavailable, v.FailureReason)
	// 1+2+2+2+2+1 s: six timed attempts after the first.
	assert.Equal(t, 7, h.attempts("Charge"))
	elapsed := h.env.Now().Sub(start)
	assert.GreaterOrEqual(t, elapsed, 10*time.Second)
	assert.Less(t, elapsed, 12*time.Second)
}

func TestOrder_CancelWhileParked_RefundsReleasesAndEndsCancelled(t *testing.T) {
	h := newOrderTest(t)
	h.env.OnActivity(payActs.Charge, mock.Anything, mock.Anything).Return(payment.ChargeResult{}, businessErr(orderflow.PaymentUnavailable))
	cancel := h.cancelAfter(5 * time.Minute)
	start := h.env.Now()
	h.run()

	require.True(t, cancel.accepted, "cancel is accepted while parked: %v", cancel.rejectErr)
	v := h.result()
	assert.Equal(t, orderflow.StatusCancelled, v.Status)
	assert.Less(t, h.env.Now().Sub(start), 6*time.Minute, "the cancel interrupts the parking timer")
	assert.Equal(t, 0, h.attempts("Confirm"))
	assert.Equal(t, []string{"Refund", "Release"}, h.compensations())
}

// Each attempt fails after 3 s, well inside the 10 s payment StartToCloseTimeout,
// so the design's policy (5 attempts, 100-800 ms apart) still applies before
// the order is parked.
//
// A local activity's schedule-to-close defaults to its start-to-close (10 s for
// Charge), which would cap the whole retry sequence at 4 slow attempts.
func TestOrder_SlowFailingCharge_StillGetsFiveAttemptsBeforeParking(t *testing.T) {
	h := newOrderTest(t)
	h.env.OnActivity(payActs.Charge, mock.Anything, mock.Anything).After(3*time.Second).Return(payment.ChargeResult{}, errInfra).Times(5)
	h.env.OnActivity(payActs.Charge, mock.Anything, mock.Anything).Return(testCharge, nil).Once()
	h.run()

	v := h.result()
	assert.Equal(t, orderflow.StatusConfirmed, v.Status)
	assert.Equal(t, 6, h.attempts("Charge"), "forwardRetry allows 5 attempts, then the parked retry")
	assert.Equal(t, 1, h.attempts("SetStatus(PAYMENT_PENDING)"))
	assert.Empty(t, h.compensations())
}

func TestOrder_CreateRecordsTheShippingAddressTheOrderWasPlacedWith(t *testing.T) {
	h := newOrderTest(t)
	var got orders.CreateOrderInput
	h.env.OnActivity(ordersActs.Create, mock.Anything, mock.Anything).Run(func(args mock.Arguments) {
		got = args.Get(1).(orders.CreateOrderInput)
	}).Return(testCreated, nil).Once()
	h.run()

	assert.Equal(t, orderflow.StatusConfirmed, h.result().Status)
	require.NotNil(t, got.ShippingAddress)
	assert.Equal(t, testAddress, *got.ShippingAddress)
	assert.Equal(t, "ada@example.com", got.Email)
}

func TestOrder_InvalidOrder_FailsWithoutReservingAnything(t *testing.T) {
	h := newOrderTest(t)
	h.env.OnActivity(ordersActs.Create, mock.Anything, mock.Anything).
		Return(orders.CreateOrderResult{}, businessErr(orderflow.InvalidOrder)).Once()
	h.run()

	v := h.result()
	assert.Equal(t, orderflow.StatusFailed, v.Status)
	assert.Equal(t, order.ReasonInvalidOrder, v.FailureReason)
	assert.Equal(t, 1, h.attempts("Create"))
	assert.Equal(t, 0, h.attempts("Reserve"))
	assert.Empty(t, h.compensations(), "nothing was reserved, so nothing is released")
	assert.Equal(t, []string{"Create", "SetStatus(FAILED)"}, h.recorded())
}

func TestOrder_OrdersServiceDown_FailsOrderUnavailableAfterFiveAttempts(t *testing.T) {
	h := newOrderTest(t)
	h.env.OnActivity(ordersActs.Create, mock.Anything, mock.Anything).Return(orders.CreateOrderResult{}, errInfra)
	h.run()

	v := h.result()
	assert.Equal(t, orderflow.StatusFailed, v.Status)
	assert.Equal(t, order.ReasonCreateFailed, v.FailureReason)
	assert.Equal(t, 5, h.attempts("Create"))
	assert.Equal(t, 0, h.attempts("Reserve"))
	assert.Empty(t, h.compensations())
}

func TestOrder_InventoryServiceDown_FailsInventoryUnavailableAndReleases(t *testing.T) {
	h := newOrderTest(t)
	h.env.OnActivity(invActs.Reserve, mock.Anything, mock.Anything).Return(errInfra)
	h.run()

	v := h.result()
	assert.Equal(t, orderflow.StatusFailed, v.Status)
	assert.Equal(t, order.ReasonInventoryFailed, v.FailureReason)
	assert.Equal(t, 5, h.attempts("Reserve"))
	assert.Equal(t, 0, h.attempts("Charge"))
	assert.Equal(t, []string{"Release"}, h.compensations())
}

func TestOrder_ConfirmFails_RevertsRefundsAndReleasesInReverseOrder(t *testing.T) {
	h := newOrderTest(t)
	h.env.OnActivity(ordersActs.Confirm, mock.Anything, mock.Anything).Return(errInfra)
	h.run()

	v := h.result()
	assert.Equal(t, orderflow.StatusFailed, v.Status)
	assert.Equal(t, order.ReasonConfirmFailed, v.FailureReason)
	assert.Equal(t, 5, h.attempts("Confirm"))
	assert.Equal(t, []string{"Revert", "Refund", "Release"}, h.compensations())
	assert.NotContains(t, h.upserted(), orderflow.StatusPaid, "an infrastructure failure is not held for an operator")
}

// A non-retryable error from Confirm after the payment was taken is an
// internal fault: the saga keeps the charge and the stock, leaves the order
// PAID and fails for an operator, instead of refunding the customer.
func TestOrder_ConfirmFailsNonRetryably_HoldsThePaidOrderForAnOperator(t *testing.T) {
	h := newOrderTest(t)
	h.env.OnActivity(ordersActs.Confirm, mock.Anything, mock.Anything).Return(businessErr("InjectedFault"))
	h.run()

	app := requireAppErrType(t, h.env.GetWorkflowError(), orderflow.ConfirmFailed)
	assert.True(t, app.NonRetryable())
	assert.Contains(t, app.Error(), "o-1", "the failure names the order")
	var orderID string
	require.NoError(t, app.Details(&orderID))
	assert.Equal(t, "o-1", orderID)
	assert.Equal(t, 1, h.attempts("Confirm"), "a non-retryable error is not retried")
	assert.Empty(t, h.compensations(), "nothing refunded, released or reverted")
	assert.Equal(t, []string{"Create", "Reserve", "Charge", "Confirm"}, h.recorded(), "no status write: the record stays PAID")
	assert.Equal(t, []string{orderflow.StatusPaid}, h.upserted(), "visibility shows where the order rests")
	v := h.query()
	assert.Equal(t, orderflow.StatusPaid, v.Status)
	assert.Equal(t, "ch_1", v.ChargeID)
}

// Histories written before ConfirmFailed existed compensated on the same
// error; replaying them takes the old branch.
func TestOrder_ConfirmFailsNonRetryably_BeforeTheChange_CompensatesAsBefore(t *testing.T) {
	h := newOrderTest(t)
	h.env.OnGetVersion("confirm-fault-holds-for-operator", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	h.env.OnActivity(ordersActs.Confirm, mock.Anything, mock.Anything).Return(businessErr("InjectedFault"))
	h.run()

	v := h.result()
	assert.Equal(t, orderflow.StatusFailed, v.Status)
	assert.Equal(t, order.ReasonConfirmFailed, v.FailureReason)
	assert.Equal(t, 1, h.attempts("Confirm"))
	assert.Equal(t, []string{"Revert", "Refund", "Release"}, h.compensations())
	assert.Equal(t, []string{orderflow.StatusCompensating, orderflow.StatusFailed}, h.upserted())
}

// --- cancel update -----------------------------------------------------------

// Create runs on a disconnected context so that an accepted order always has
// its record: a cancel landing mid-Create lets it finish, then stops the saga
// before anything is reserved or charged.
func TestOrder_CancelWhileCreating_FinishesTheRecordThenCancelsBeforeReserving(t *testing.T) {
	h := newOrderTest(t)
	h.env.OnActivity(ordersActs.Create, mock.Anything, mock.Anything).After(2*time.Second).Return(testCreated, nil)
	upd := h.cancelAfter(time.Second)
	h.run()

	require.True(t, upd.accepted, "cancel while PENDING is accepted: %v", upd.rejectErr)
	assert.True(t, upd.completed)
	assert.NoError(t, upd.completeErr)
	assert.Equal(t, orderflow.StatusPending, upd.result.Status)

	v := h.result()
	assert.Equal(t, orderflow.StatusCancelled, v.Status)
	assert.Equal(t, order.ReasonCancelled, v.FailureReason)
	assert.True(t, v.CancelRequested)
	assert.Equal(t, 1, h.attempts("Create"), "the create was not interrupted")
	assert.Equal(t, testCreated.Lines, v.Lines)
	assert.Equal(t, 0, h.attempts("Reserve"))
	assert.Equal(t, 0, h.attempts("Charge"))
	assert.NotContains(t, h.compensations(), "Refund", "nothing was charged")
	assert.NotContains(t, h.compensations(), "Revert", "nothing was confirmed")
	assert.Equal(t, 1, h.attempts("SetStatus(CANCELLED)"))
}

func TestOrder_CancelWhileReserving_ReleasesAndEndsCancelled(t *testing.T) {
	h := newOrderTest(t)
	h.env.OnActivity(invActs.Reserve, mock.Anything, mock.Anything).After(2 * time.Second).Return(nil)
	upd := h.cancelAfter(time.Second)
	h.run()

	require.True(t, upd.accepted, "cancel before reserve completes is accepted: %v", upd.rejectErr)
	assert.Equal(t, orderflow.StatusPending, upd.result.Status)

	v := h.result()
	assert.Equal(t, orderflow.StatusCancelled, v.Status)
	assert.Equal(t, order.ReasonCancelled, v.FailureReason)
	assert.Equal(t, 0, h.attempts("Charge"))
	assert.Equal(t, []string{"Release"}, h.compensations(), "an interrupted reserve may have taken effect")
	assert.Equal(t, []string{
		"Create", "Reserve", "SetStatus(COMPENSATING)", "Release", "SetStatus(CANCELLED)",
	}, h.recorded())
}

func TestOrder_CancelAfterReserved_RefundsThenReleasesAndNeverConfirms(t *testing.T) {
	h := newOrderTest(t)
	// The charge is in flight when the cancel lands; it may already have
	// reached the provider, so the refund must run.
	h.env.OnActivity(payActs.Charge, mock.Anything, mock.Anything).After(2*time.Second).Return(testCharge, nil)
	upd := h.cancelAfter(time.Second)
	h.run()

	require.True(t, upd.accepted, "cancel while RESERVED is accepted: %v", upd.rejectErr)
	assert.Equal(t, orderflow.StatusReserved, upd.result.Status)

	v := h.result()
	assert.Equal(t, orderflow.StatusCancelled, v.Status)
	assert.Equal(t, order.ReasonCancelled, v.FailureReason)
	assert.Equal(t, testCharge.ChargeID, v.ChargeID,
		"the charge in flight finished before the refund looked for it (cut short, it could land at the provider after the refund)")
	assert.Equal(t, 0, h.attempts("Confirm"))
	assert.Equal(t, []string{"Refund", "Release"}, h.compensations())
}

func TestOrder_CancelDuringChargeRetryBackoff_LetsTheChargeFinishThenRefundsAndReleases(t *testing.T) {
	h := newOrderTest(t)
	// Attempt 1 fails at 0 s, attempt 2 at 0.1 s, attempt 3 is due at 0.3 s.
	h.env.OnActivity(payActs.Charge, mock.Anything, mock.Anything).Return(payment.ChargeResult{}, errInfra).Times(2)
	h.env.OnActivity(payActs.Charge, mock.Anything, mock.Anything).Return(testCharge, nil)
	upd := h.cancelAfter(200 * time.Millisecond)
	h.run()

	require.True(t, upd.accepted, "cancel while retrying the charge is accepted: %v", upd.rejectErr)
	v := h.result()
	assert.Equal(t, orderflow.StatusCancelled, v.Status)
	assert.Equal(t, 3, h.attempts("Charge"), "the step's retries are not cut short")
	assert.Equal(t, testCharge.ChargeID, v.ChargeID)
	assert.Equal(t, 0, h.attempts("Confirm"))
	assert.Equal(t, []string{"Refund", "Release"}, h.compensations())
}

func TestOrder_CancelWhileConfirming_IsRejectedTooLateAndOrderConfirms(t *testing.T) {
	h := newOrderTest(t)
	h.env.OnActivity(ordersActs.Confirm, mock.Anything, mock.Anything).After(2 * time.Second).Return(nil)
	upd := h.cancelAfter(time.Second)
	h.run()

	require.True(t, upd.rejected, "cancel while confirming must be rejected")
	assert.False(t, upd.accepted)
	requireAppErrType(t, upd.rejectErr, orderflow.TooLateToCancel)
	assert.Contains(t, upd.rejectErr.Error(), "being confirmed")

	v := h.result()
	assert.Equal(t, orderflow.StatusConfirmed, v.Status)
	assert.False(t, v.CancelRequested)
	assert.Empty(t, h.compensations())
}

func TestOrder_CancelWhileCompensating_IsRejectedTooLate(t *testing.T) {
	h := newOrderTest(t)
	h.env.OnActivity(invActs.Reserve, mock.Anything, mock.Anything).Return(businessErr(orderflow.OutOfStock)).Once()
	h.env.OnActivity(invActs.Release, mock.Anything, mock.Anything).After(2 * time.Second).Return(nil)
	upd := h.cancelAfter(time.Second)
	h.run()

	require.True(t, upd.rejected, "cancel while compensating must be rejected")
	requireAppErrType(t, upd.rejectErr, orderflow.TooLateToCancel)

	v := h.result()
	assert.Equal(t, orderflow.StatusFailed, v.Status)
	assert.Equal(t, order.ReasonOutOfStock, v.FailureReason, "the failure reason is not overwritten by the cancel")
	assert.Equal(t, []string{"Release"}, h.compensations())
}

// --- Temporal cancellation -----------------------------------------------------

func TestOrder_WorkflowCancelledWhileCharging_CompensatesOnDisconnectedContext(t *testing.T) {
	h := newOrderTest(t)
	h.env.OnActivity(payActs.Charge, mock.Anything, mock.Anything).After(2*time.Second).Return(testCharge, nil)
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, time.Second)
	h.run()

	v := h.result()
	assert.Equal(t, orderflow.StatusCancelled, v.Status)
	assert.Equal(t, order.ReasonCancelled, v.FailureReason)
	assert.Equal(t, 0, h.attempts("Confirm"))
	assert.Equal(t, []string{
		"Create", "Reserve", "Charge", "SetStatus(COMPENSATING)", "Refund", "Release", "SetStatus(CANCELLED)",
	}, h.recorded(), "every compensation and status write ran although the workflow context was cancelled")
}

func TestOrder_WorkflowCancelledWhileCreating_FinishesTheRecordThenCancelsBeforeReserving(t *testing.T) {
	h := newOrderTest(t)
	h.env.OnActivity(ordersActs.Create, mock.Anything, mock.Anything).After(2*time.Second).Return(testCreated, nil)
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, time.Second)
	h.run()

	v := h.result()
	assert.Equal(t, orderflow.StatusCancelled, v.Status)
	assert.Equal(t, order.ReasonCancelled, v.FailureReason)
	assert.Equal(t, testCreated.Lines, v.Lines, "the create ran to completion on its disconnected context")
	assert.Equal(t, 0, h.attempts("Reserve"))
	assert.Equal(t, 0, h.attempts("Charge"))
	assert.Equal(t, 1, h.attempts("SetStatus(CANCELLED)"))
}

// Unlike the cancel update, which is refused from Confirm on, a Temporal
// cancellation still interrupts Confirm and unwinds every step, Confirm
// included, as the Order doc comment describes.
func TestOrder_WorkflowCancelledWhileConfirming_StillConfirms(t *testing.T) {
	h := newOrderTest(t)
	h.env.OnActivity(ordersActs.Confirm, mock.Anything, mock.Anything).After(2 * time.Second).Return(nil)
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, time.Second)
	h.run()

	v := h.result()
	assert.Equal(t, orderflow.StatusConfirmed, v.Status, "past the point of no return a cancellation no longer unwinds the order")
	assert.Empty(t, h.compensations())
}

// --- compensation failures -----------------------------------------------------

func TestOrder_RefundRetriesThenSucceeds_OrderStillFailsCleanly(t *testing.T) {
	h := newOrderTest(t)
	h.env.OnActivity(payActs.Charge, mock.Anything, mock.Anything).
		Return(payment.ChargeResult{}, businessErr(orderflow.PaymentDeclined)).Once()
	h.env.OnActivity(payActs.Refund, mock.Anything, mock.Anything).Return(payment.RefundResult{}, errInfra).Times(3)
	h.run()

	v := h.result()
	assert.Equal(t, orderflow.StatusFailed, v.Status)
	assert.Equal(t, order.ReasonPaymentDeclined, v.FailureReason)
	assert.Equal(t, []string{"Refund", "Refund", "Refund", "Refund", "Release"}, h.compensations(),
		"the refund is retried until it succeeds, then the release runs")
}

func TestOrder_RefundRetriesThenSucceedsAfterCancel_OrderStillCancelsCleanly(t *testing.T) {
	h := newOrderTest(t)
	h.env.OnActivity(payActs.Charge, mock.Anything, mock.Anything).After(2*time.Second).Return(testCharge, nil)
	h.env.OnActivity(payActs.Refund, mock.Anything, mock.Anything).Return(payment.RefundResult{}, errInfra).Times(2)
	upd := h.cancelAfter(time.Second)
	h.run()

	require.True(t, upd.accepted, "cancel while RESERVED is accepted: %v", upd.rejectErr)
	v := h.result()
	assert.Equal(t, orderflow.StatusCancelled, v.Status)
	assert.Equal(t, []string{"Refund", "Refund", "Refund", "Release"}, h.compensations())
}

func TestOrder_RefundFailsNonRetryably_ReturnsCompensationFailedAfterRunningTheOthers(t *testing.T) {
	h := newOrderTest(t)
	h.env.OnActivity(payActs.Charge, mock.Anything, mock.Anything).
		Return(payment.ChargeResult{}, businessErr(orderflow.PaymentDeclined)).Once()
	h.env.OnActivity(payActs.Refund, mock.Anything, mock.Anything).
		Return(payment.RefundResult{}, businessErr("RefundRejected"))
	h.run()

	err := h.env.GetWorkflowError()
	app := requireAppErrType(t, err, "CompensationFailed")
	assert.True(t, app.NonRetryable())
	assert.Contains(t, err.Error(), "needs an operator")
	assert.Equal(t, []string{"Refund", "Release"}, h.compensations(),
		"a failed refund is not retried and does not stop the release")
	assert.Equal(t, 1, h.attempts("SetStatus(FAILED)"), "the final status is still recorded")

	v := h.query()
	assert.Equal(t, orderflow.StatusFailed, v.Status)
	assert.Equal(t, order.ReasonPaymentDeclined, v.FailureReason)
}

// compensationRetry has no MaximumAttempts because "a release or refund that
// stops trying loses stock or money": a release failing for longer than its
// 3 s StartToCloseTimeout must keep being retried.
//
// Compensations must outlast an outage: the release keeps retrying well past
// one attempt's timeout instead of failing the workflow with CompensationFailed.
func TestOrder_ReleaseFailingLongerThanItsTimeout_IsRetriedUntilItSucceeds(t *testing.T) {
	h := newOrderTest(t)
	h.env.OnActivity(invActs.Reserve, mock.Anything, mock.Anything).Return(businessErr(orderflow.OutOfStock)).Once()
	h.env.OnActivity(invActs.Release, mock.Anything, mock.Anything).Return(errInfra).Times(8)
	h.run()

	require.NoError(t, h.env.GetWorkflowError(), "an infrastructure error in a compensation must be retried, not escalated")
	v := h.result()
	assert.Equal(t, orderflow.StatusFailed, v.Status)
	assert.Equal(t, order.ReasonOutOfStock, v.FailureReason)
	assert.Equal(t, 9, h.attempts("Release"))
}

// --- query and search attributes ----------------------------------------------

func TestOrder_StatusQuery_ReturnsTheCurrentView(t *testing.T) {
	h := newOrderTest(t)
	h.env.OnActivity(payActs.Charge, mock.Anything, mock.Anything).After(2*time.Second).Return(testCharge, nil)
	var during order.View
	h.env.RegisterDelayedCallback(func() { during = h.query() }, time.Second)
	h.run()

	assert.Equal(t, "o-1", during.OrderID)
	assert.Equal(t, "c-1", during.CustomerID)
	assert.Equal(t, orderflow.StatusReserved, during.Status, "the charge is in flight")
	assert.Equal(t, testCreated.Lines, during.Lines)
	assert.Equal(t, int64(3000), during.TotalCents)
	assert.Equal(t, "EUR", during.Currency)
	assert.Empty(t, during.ChargeID)
	assert.False(t, during.UpdatedAt.IsZero())

	after := h.query()
	assert.Equal(t, orderflow.StatusConfirmed, after.Status)
	assert.Equal(t, "ch_1", after.ChargeID)
	assert.Equal(t, h.result(), after, "the query answers with the same view the workflow returned")
	assert.True(t, after.UpdatedAt.After(during.UpdatedAt), "UpdatedAt follows the workflow clock")
}

func TestOrder_SearchAttribute_OrderStatusFollowsTheHappyPath(t *testing.T) {
	h := newOrderTest(t)
	h.run()

	h.result()
	assert.Equal(t, []string{orderflow.StatusConfirmed}, h.upserted(), "PENDING comes from the start; RESERVED and PAID are passed through")
}

func TestOrder_SearchAttribute_OrderStatusFollowsCompensation(t *testing.T) {
	h := newOrderTest(t)
	h.env.OnActivity(payActs.Charge, mock.Anything, mock.Anything).
		Return(payment.ChargeResult{}, businessErr(orderflow.PaymentDeclined)).Once()
	h.run()

	h.result()
	assert.Equal(t, []string{orderflow.StatusCompensating, orderflow.StatusFailed}, h.upserted())
}

// currentDetails reads the saga's current details the way the Web UI does,
// through the SDK's built-in metadata query.
func (h *orderTest) currentDetails() string {
	h.t.Helper()
	val, err := h.env.QueryWorkflow("__temporal_workflow_metadata")
	require.NoError(h.t, err)
	var md sdkpb.WorkflowMetadata
	require.NoError(h.t, val.Get(&md))
	return md.GetCurrentDetails()
}

func TestOrder_CurrentDetails_SayTheStatusInWords(t *testing.T) {
	h := newOrderTest(t)
	h.env.OnActivity(payActs.Charge, mock.Anything, mock.Anything).After(2*time.Second).Return(testCharge, nil)
	var during string
	h.env.RegisterDelayedCallback(func() { during = h.currentDetails() }, time.Second)
	h.run()

	h.result()
	assert.Equal(t, "**Order status: RESERVED** — stock reserved; charging the payment.", during)
	assert.Equal(t, "**Order status: CONFIRMED** — confirmed: stock reserved, payment charged, the customer's notification queued.", h.currentDetails())
}

func TestOrder_CurrentDetails_NameTheFailureReason(t *testing.T) {
	h := newOrderTest(t)
	h.env.OnActivity(payActs.Charge, mock.Anything, mock.Anything).
		Return(payment.ChargeResult{}, businessErr(orderflow.PaymentDeclined)).Once()
	h.run()

	h.result()
	assert.Equal(t, "**Order status: FAILED** — failed: "+order.ReasonPaymentDeclined+".", h.currentDetails())
}
