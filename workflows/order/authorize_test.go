package order_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/fulfillment"
	"github.com/orderflow/orderflow/activities/fulfillment/wire"
	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/workflows/order"
)

// t0 is when every saga of these tests starts, so that the authorization's
// expiry and its renewal fall at known times.
var t0 = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

// testAuth is the first authorization: the order's total, for the
// provider's default 7 days. The saga renews it a day before: at t0+6d.
var testAuth = payment.AuthorizeResult{Provider: "sim", ChargeID: "au_1", AmountCents: 3000, ExpiresAt: t0.Add(7 * 24 * time.Hour)}

const day = 24 * time.Hour

// newAuthTest runs the saga of authorizeCapture: authorize, then capture.
func newAuthTest(t *testing.T) *orderTest {
	t.Helper()
	h := newSagaTest(t, &testsuite.WorkflowTestSuite{})
	h.env.SetStartTime(t0)
	return h
}

func newAuthFulfilTest(t *testing.T) *fulfilTest {
	t.Helper()
	return newFulfilTestOn(newAuthTest(t))
}

// calls lists the recorded local activity attempts whose names are in want's
// vocabulary: the payment and fulfillment steps a test is about.
func (h *orderTest) payments() []string {
	var out []string
	for _, c := range h.recorded() {
		for _, p := range []string{"Charge", "Authorize", "Capture", "Void", "Refund", "RefundPart"} {
			if c == p || len(c) > len(p) && c[:len(p)+1] == p+"(" {
				out = append(out, c)
			}
		}
	}
	return out
}

func renewal(n int, amount int64) payment.AuthorizeInput {
	return payment.AuthorizeInput{Renewal: n, ChargeInput: payment.ChargeInput{
		OrderID: "o-1", Token: "tok_visa", AmountCents: amount, Currency: "EUR",
	}}
}

// --- without fulfillment -------------------------------------------------------

func TestAuthorize_WithoutFulfill_AuthorizesThenCapturesTheWholeOrderAtConfirmation(t *testing.T) {
	h := newAuthTest(t)
	h.env.OnActivity(payActs.Authorize, mock.Anything, renewal(0, 3000)).Return(testAuth, nil).Once()
	h.run()

	v := h.result()
	assert.Equal(t, orderflow.StatusConfirmed, v.Status)
	assert.Equal(t, []string{"Create", "Reserve", "Authorize", "Capture( 3000 final)", "SetStatus(PAID)", "Confirm"}, h.recorded(),
		"authorized for the priced total, captured in full and finally (PAID) before the confirmation; never charged")
	require.NotNil(t, v.Authorization)
	assert.Equal(t, order.Authorization{Provider: "sim", ChargeID: "au_1", AmountCents: 3000, ExpiresAt: testAuth.ExpiresAt, Released: true}, *v.Authorization)
	assert.Equal(t, []order.Capture{{CaptureID: "cap_", CapturedCents: 3000, Final: true}}, v.Captures)
	assert.Equal(t, "au_1", v.ChargeID)
	assert.Equal(t, []string{orderflow.StatusConfirmed}, h.upserted(), "AUTHORIZED passes inside one workflow task, like PAID")
}

func TestAuthorize_StatusQuery_ShowsAuthorizedWhileTheWholeOrderIsCaptured(t *testing.T) {
	h := newAuthTest(t)
	h.env.OnActivity(payActs.Capture, mock.Anything, mock.Anything).After(2*time.Second).Return(payment.CaptureResult{CaptureID: "cap_1", CapturedCents: 3000}, nil)
	var during order.View
	h.env.RegisterDelayedCallback(func() { during = h.query() }, time.Second)
	h.run()

	assert.Equal(t, orderflow.StatusAuthorized, during.Status)
	require.NotNil(t, during.Authorization)
	assert.Equal(t, "au_1", during.Authorization.ChargeID)
	assert.Equal(t, orderflow.StatusConfirmed, h.result().Status)
}

func TestAuthorize_Declined_FailsVoidsThroughTheRefundAndReleases(t *testing.T) {
	h := newAuthTest(t)
	h.env.OnActivity(payActs.Authorize, mock.Anything, mock.Anything).
		Return(payment.AuthorizeResult{}, businessErr(orderflow.PaymentDeclined)).Once()
	h.run()

	v := h.result()
	assert.Equal(t, orderflow.StatusFailed, v.Status)
	assert.Equal(t, order.ReasonPaymentDeclined, v.FailureReason)
	assert.Equal(t, 1, h.attempts("Authorize"), "a decline is not retried")
	assert.Equal(t, []string{"Authorize", "Refund"}, h.payments(), "nothing captured; Refund voids whatever the order holds")
	assert.Equal(t, []string{"Refund", "Release"}, h.compensations())
	assert.Nil(t, v.Authorization)
}

func TestAuthorize_ProviderUnavailable_ParksThenAuthorizesAndConfirms(t *testing.T) {
	h := newAuthTest(t)
	h.env.OnActivity(payActs.Authorize, mock.Anything, mock.Anything).
		Return(payment.AuthorizeResult{}, businessErr(orderflow.PaymentUnavailable)).Times(3)
	h.run()

	v := h.result()
	assert.Equal(t, orderflow.StatusConfirmed, v.Status)
	assert.Equal(t, 4, h.attempts("Authorize"))
	assert.Equal(t, 1, h.attempts("SetStatus(PAYMENT_PENDING)"))
	assert.Equal(t, 1, h.attempts("Capture( 3000 final)"))
}

// The provider holding the authorization is down when the order is
// captured: the capture cannot go elsewhere, so the order parks until it
// answers, as a charge does, instead of failing.
func TestAuthorize_WithoutFulfill_ProviderDownAtCapture_ParksThenCapturesAndConfirms(t *testing.T) {
	h := newAuthTest(t)
	h.env.OnActivity(payActs.Capture, mock.Anything, mock.Anything).Return(payment.CaptureResult{}, errInfra).Times(5)
	h.env.OnActivity(payActs.Capture, mock.Anything, mock.Anything).Return(payment.CaptureResult{}, businessErr(orderflow.PaymentUnavailable)).Times(2)
	h.run()

	v := h.result()
	assert.Equal(t, orderflow.StatusConfirmed, v.Status)
	assert.Equal(t, 8, h.attempts("Capture( 3000 final)"))
	assert.Equal(t, 1, h.attempts("SetStatus(PAYMENT_PENDING)"))
	assert.Empty(t, h.compensations())
}

func TestAuthorize_WithoutFulfill_CaptureRefusedByTheAuthorization_FailsAtOnceAndVoids(t *testing.T) {
	h := newAuthTest(t)
	h.env.OnActivity(payActs.Capture, mock.Anything, mock.Anything).Return(payment.CaptureResult{}, businessErr(orderflow.AuthorizationExpired)).Once()
	h.run()

	v := h.result()
	assert.Equal(t, orderflow.StatusFailed, v.Status)
	assert.Equal(t, 1, h.attempts("Capture( 3000 final)"), "no retry, no parking: the authorization is gone")
	assert.Zero(t, h.attempts("SetStatus(PAYMENT_PENDING)"))
	assert.Equal(t, []string{"Refund", "Release"}, h.compensations(), "never confirmed: nothing to revert")
}

func TestAuthorize_CancelWhileAuthorizing_LetsItFinishThenVoidsThroughTheRefund(t *testing.T) {
	h := newAuthTest(t)
	h.env.OnActivity(payActs.Authorize, mock.Anything, mock.Anything).After(2*time.Second).Return(testAuth, nil)
	upd := h.cancelAfter(time.Second)
	h.run()

	require.True(t, upd.accepted, "cancel while authorizing is accepted: %v", upd.rejectErr)
	v := h.result()
	assert.Equal(t, orderflow.StatusCancelled, v.Status)
	assert.Equal(t, []string{"Authorize", "Refund"}, h.payments(), "never captured")
	assert.Equal(t, []string{"Refund", "Release"}, h.compensations())
	assert.Zero(t, h.attempts("Confirm"))
}

// --- with fulfillment ----------------------------------------------------------

func TestAuthorize_Fulfil_CapturesEachShipmentOnceAsItLeavesAndTheLastFinally(t *testing.T) {
	h := newAuthFulfilTest(t)
	h.carrier(time.Hour, "e1", "s-1", wire.EventPickedUp)
	h.carrier(2*time.Hour, "e2", "s-1", wire.EventInTransit)
	h.carrier(3*time.Hour, "e3", "s-2", wire.EventInTransit) // no picked_up first
	h.carrier(4*time.Hour, "e4", "s-1", wire.EventDelivered)
	h.carrier(5*time.Hour, "e5", "s-2", wire.EventDelivered)
	h.runFulfilled(testInput())

	v := h.result()
	assert.Equal(t, orderflow.StatusDelivered, v.Status)
	assert.Equal(t, []string{"Authorize", "Capture(s-1 1500)", "Capture(s-2 1500 final)"}, h.payments())
	assert.Equal(t, []order.Capture{
		{ShipmentID: "s-1", CaptureID: "cap_s-1", CapturedCents: 1500},
		{ShipmentID: "s-2", CaptureID: "cap_s-2", CapturedCents: 1500, Final: true},
	}, v.Captures)
	require.NotNil(t, v.Authorization)
	assert.True(t, v.Authorization.Released)
	assert.Equal(t, []string{"FULFILLING", "PARTIALLY_SHIPPED", "SHIPPED", "DELIVERED"}, h.upserted())
}

func TestAuthorize_Fulfil_CancelBeforePickup_VoidsThroughTheRefundAndCapturesNothing(t *testing.T) {
	h := newAuthFulfilTest(t)
	upd := h.cancelAfter(time.Hour)
	h.runFulfilled(testInput())

	require.True(t, upd.accepted, "cancel before any pickup is accepted: %v", upd.rejectErr)
	assert.Equal(t, orderflow.StatusCancelled, h.result().Status)
	assert.Equal(t, []string{"Authorize", "Refund"}, h.payments())
	assert.Equal(t, []string{"CancelShipments", "Refund", "Release"}, h.compensations())
}

func TestAuthorize_Fulfil_ShipmentLostBeforePickup_IsNeverCapturedNorRefundedAndTheRestIsVoided(t *testing.T) {
	h := newAuthFulfilTest(t)
	h.carrier(time.Hour, "e1", "s-1", wire.EventPickedUp)
	h.carrier(2*time.Hour, "e2", "s-2", wire.EventLost)
	h.carrier(3*time.Hour, "e3", "s-1", wire.EventDelivered)
	h.runFulfilled(testInput())

	v := h.result()
	assert.Equal(t, orderflow.StatusDelivered, v.Status)
	assert.Equal(t, []string{"Authorize", "Capture(s-1 1500)", "Void"}, h.payments(),
		"the lost shipment's 1500 is released with the rest of the authorization, not captured then refunded")
	require.NotNil(t, v.Authorization)
	assert.True(t, v.Authorization.Released)
}

func TestAuthorize_Fulfil_ShipmentLostAfterPickup_RefundsItsCapture(t *testing.T) {
	h := newAuthFulfilTest(t)
	h.env.OnActivity(payActs.RefundPart, mock.Anything, payment.RefundPartInput{
		OrderID: "o-1", Key: "refund-o-1-s-2", AmountCents: 1500,
	}).Return(payment.RefundResult{Refunded: true}, nil).Once()
	h.carrier(time.Hour, "e1", "s-1", wire.EventPickedUp)
	h.carrier(time.Hour, "e2", "s-2", wire.EventPickedUp)
	h.carrier(2*time.Hour, "e3", "s-2", wire.EventLost)
	h.carrier(3*time.Hour, "e4", "s-1", wire.EventDelivered)
	h.runFulfilled(testInput())

	assert.Equal(t, orderflow.StatusDelivered, h.result().Status)
	assert.Equal(t, []string{"Authorize", "Capture(s-1 1500)", "Capture(s-2 1500 final)", "RefundPart"}, h.payments())
}

func TestAuthorize_Fulfil_EveryShipmentLostBeforePickup_VoidsTheAuthorizationAndFails(t *testing.T) {
	h := newAuthFulfilTest(t)
	h.carrier(time.Hour, "e1", "s-1", wire.EventLost)
	h.carrier(time.Hour, "e2", "s-2", wire.EventLost)
	h.runFulfilled(testInput())

	v := h.result()
	assert.Equal(t, orderflow.StatusFailed, v.Status)
	assert.Equal(t, order.ReasonLostInTransit, v.FailureReason)
	assert.Equal(t, []string{"Authorize", "Void"}, h.payments())
}

// --- the authorization's expiry -------------------------------------------------

// A shipment waits past the authorization's renewal time (a day before its
// 7 days run out): the remainder still to capture is re-authorized, and
// the late shipment is captured from the renewal.
func TestAuthorize_Expiry_RenewsTheUncapturedRemainderADayBefore(t *testing.T) {
	h := newAuthFulfilTest(t)
	renewed := payment.AuthorizeResult{Provider: "sim", ChargeID: "au_2", AmountCents: 1500, ExpiresAt: t0.Add(13 * day)}
	h.env.OnActivity(payActs.Authorize, mock.Anything, renewal(1, 1500)).Return(renewed, nil).Once()
	var before, after order.View
	h.env.RegisterDelayedCallback(func() { before = h.query() }, 6*day-time.Minute)
	h.env.RegisterDelayedCallback(func() { after = h.query() }, 6*day+time.Minute)
	h.carrier(time.Hour, "e1", "s-1", wire.EventPickedUp)
	h.carrier(8*day, "e2", "s-2", wire.EventPickedUp)
	h.carrier(9*day, "e3", "s-1", wire.EventDelivered)
	h.carrier(9*day, "e4", "s-2", wire.EventDelivered)
	h.runFulfilled(testInput())

	v := h.result()
	assert.Equal(t, orderflow.StatusDelivered, v.Status)
	assert.Equal(t, []string{"Authorize", "Capture(s-1 1500)", "Authorize(renewal 1: 1500)", "Capture(s-2 1500 final)"}, h.payments(),
		"renewed once, for what was left to capture; the renewal's own expiry (13 d) came after the last shipment left")
	require.NotNil(t, before.Authorization)
	require.NotNil(t, after.Authorization)
	assert.Equal(t, 0, before.Authorization.Renewal, "not renewed before its time")
	assert.Equal(t, order.Authorization{Provider: "sim", ChargeID: "au_2", AmountCents: 1500, ExpiresAt: t0.Add(13 * day), Renewal: 1}, *after.Authorization)
	assert.Equal(t, 1, v.Authorization.Renewal)
	assert.Equal(t, "au_2", v.ChargeID)
}

func TestAuthorize_Expiry_EverythingShippedInTime_NeverRenews(t *testing.T) {
	h := newAuthFulfilTest(t)
	h.carrier(time.Hour, "e1", "s-1", wire.EventPickedUp)
	h.carrier(2*time.Hour, "e2", "s-2", wire.EventPickedUp)
	h.carrier(10*day, "e3", "s-1", wire.EventDelivered)
	h.carrier(10*day, "e4", "s-2", wire.EventDelivered)
	h.runFulfilled(testInput())

	assert.Equal(t, orderflow.StatusDelivered, h.result().Status)
	assert.Equal(t, 1, h.attempts("Authorize"), "captured in full before the expiry: nothing to renew")
}

func TestAuthorize_Expiry_RenewalDeclinedWithNothingShipped_CancelsTheOrderAndTellsTheCustomer(t *testing.T) {
	h := newAuthFulfilTest(t)
	h.env.OnActivity(payActs.Authorize, mock.Anything, renewal(1, 3000)).
		Return(payment.AuthorizeResult{}, businessErr(orderflow.PaymentDeclined)).Once()
	h.runFulfilled(testInput())

	v := h.result()
	assert.Equal(t, orderflow.StatusFailed, v.Status)
	assert.Equal(t, order.ReasonAuthorizationExpired, v.FailureReason)
	assert.Equal(t, []string{"CancelShipments", "Refund", "Release"}, h.compensations(),
		"shipments withdrawn (CancelShipments queues the customer's message), the authorization voided, the stock released")
	assert.Contains(t, h.recorded(), "SetStatus(FAILED)")
	assert.Equal(t, []string{"Authorize", "Authorize(renewal 1: 3000)", "Refund"}, h.payments())
}

func TestAuthorize_Expiry_RenewalDeclinedAfterAShipmentLeft_CancelsTheRestAndDeliversWhatShipped(t *testing.T) {
	h := newAuthFulfilTest(t)
	h.env.OnActivity(payActs.Authorize, mock.Anything, renewal(1, 1500)).
		Return(payment.AuthorizeResult{}, businessErr(orderflow.PaymentDeclined)).Once()
	h.carrier(time.Hour, "e1", "s-1", wire.EventPickedUp)
	h.carrier(7*day, "late", "s-2", wire.EventPickedUp) // after its shipment was withdrawn
	h.carrier(8*day, "e3", "s-1", wire.EventDelivered)
	h.runFulfilled(testInput())

	v := h.result()
	assert.Equal(t, orderflow.StatusDelivered, v.Status)
	assert.Empty(t, v.FailureReason)
	assert.Equal(t, []string{"Authorize", "Capture(s-1 1500)", "Authorize(renewal 1: 1500)", "Void"}, h.payments(),
		"what shipped stays captured, the rest of the authorization is released")
	assert.Equal(t, 1, h.attempts("CancelShipments"), "the unshipped shipment is withdrawn and the customer told")
	assert.Equal(t, 1, h.attempts("Release"), "its stock released")
	assert.Equal(t, fulfillment.ShipmentCancelled, v.Shipments[1].Status)
	assert.False(t, h.events["late"].result.Applied, "a pickup of the withdrawn shipment changes nothing")
	assert.Equal(t, []string{"s-1:picked_up", "s-1:delivered"}, h.ship.calls())
}

// The carrier picks a shipment up while its renewal is being declined: the
// pickup is applied (and captured from the authorization, still valid for a
// day) before the saga cancels what has not shipped.
func TestAuthorize_Expiry_PickupDuringADeclinedRenewal_IsCapturedBeforeTheRestIsCancelled(t *testing.T) {
	h := newAuthFulfilTest(t)
	h.env.OnActivity(payActs.Authorize, mock.Anything, renewal(1, 3000)).After(5*time.Second).
		Return(payment.AuthorizeResult{}, businessErr(orderflow.PaymentDeclined)).Once()
	h.carrier(6*day+time.Second, "e1", "s-1", wire.EventPickedUp)
	h.carrier(8*day, "e2", "s-1", wire.EventDelivered)
	h.runFulfilled(testInput())

	v := h.result()
	assert.Equal(t, orderflow.StatusDelivered, v.Status)
	assert.Equal(t, []string{"Authorize", "Authorize(renewal 1: 3000)", "Capture(s-1 1500)", "Void"}, h.payments())
	assert.Equal(t, fulfillment.ShipmentCancelled, v.Shipments[1].Status)
	assert.Equal(t, 1, h.attempts("CancelShipments"))
}

// A cancel accepted while the renewal runs lets it finish, then compensates:
// Refund voids the renewed authorization with the rest.
func TestAuthorize_Expiry_CancelDuringTheRenewal_CompensatesOnceItEnds(t *testing.T) {
	h := newAuthFulfilTest(t)
	renewed := payment.AuthorizeResult{Provider: "sim", ChargeID: "au_2", AmountCents: 3000, ExpiresAt: t0.Add(13 * day)}
	h.env.OnActivity(payActs.Authorize, mock.Anything, renewal(1, 3000)).After(5*time.Second).Return(renewed, nil).Once()
	upd := h.cancelAfter(6*day + time.Second)
	h.runFulfilled(testInput())

	require.True(t, upd.accepted, "nothing left: the cancel is accepted: %v", upd.rejectErr)
	v := h.result()
	assert.Equal(t, orderflow.StatusCancelled, v.Status)
	assert.Equal(t, []string{"Authorize", "Authorize(renewal 1: 3000)", "Refund"}, h.payments())
	assert.Equal(t, []string{"CancelShipments", "Refund", "Release"}, h.compensations())
}
