package order

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/catalog"
	"github.com/orderflow/orderflow/activities/fulfillment"
	"github.com/orderflow/orderflow/activities/payment"
)

// authorizeCapture is the change ID of sagas that authorize the payment at
// the payment step (AUTHORIZED instead of PAID) and capture it as the order
// ships: each shipment's value when it leaves its warehouse, the last
// capture final (releasing the rest), the whole order at confirmation when
// it is not fulfilled. Histories from before it charged the order in full.
const authorizeCapture = "authorize-then-capture"

// ReasonAuthorizationExpired: the payment authorization neared its expiry
// with nothing shipped and could not be renewed; the order was cancelled
// and the customer told.
const ReasonAuthorizationExpired = "authorization_expired"

// maxRenewLead is how long before its expiry an authorization is renewed at
// most; a shorter-lived one (a provider's short expiry) is renewed a
// quarter of its life before.
const maxRenewLead = 24 * time.Hour

var errAuthorizationLapsed = errors.New("payment authorization expiring and not renewed")

// authorized records an authorization (the first, renewal 0, or a renewal)
// in the view and sets the durable renewal time: shortly before it expires.
func (o *saga) authorized(ctx workflow.Context, res payment.AuthorizeResult, renewal int) {
	o.view.ChargeID = res.ChargeID
	o.view.Authorization = &Authorization{Provider: res.Provider, ChargeID: res.ChargeID, AmountCents: res.AmountCents,
		ExpiresAt: res.ExpiresAt, Renewal: renewal}
	o.renewAt = time.Time{}
	if !res.ExpiresAt.IsZero() {
		lead := max(0, min(maxRenewLead, res.ExpiresAt.Sub(workflow.Now(ctx))/4))
		o.renewAt = res.ExpiresAt.Add(-lead)
	}
}

// recordCapture adds a capture to the view; a final one released the rest
// of the authorization.
func (o *saga) recordCapture(shipmentID string, res payment.CaptureResult, final bool) {
	o.view.Captures = append(o.view.Captures, Capture{ShipmentID: shipmentID, CaptureID: res.CaptureID,
		CapturedCents: res.CapturedCents, ReleasedCents: res.ReleasedCents, Final: final})
	if final && o.view.Authorization != nil {
		o.view.Authorization.Released = true
	}
}

func (o *saga) captured(shipmentID string) bool {
	for _, c := range o.view.Captures {
		if c.ShipmentID == shipmentID {
			return true
		}
	}
	return false
}

// mayCapture reports whether a shipment may still be captured: it has not
// left (it may yet), was not cancelled and was not captured. A shipment that
// left uncaptured was lost before it was picked up: it is never captured.
func (o *saga) mayCapture(s fulfillment.Shipment) bool {
	return !fulfillment.Left(s.Status) && s.Status != fulfillment.ShipmentCancelled && !o.captured(s.ShipmentID)
}

// pendingCaptures reports whether a shipment other than except may still
// be captured.
func (o *saga) pendingCaptures(except string) bool {
	for _, s := range o.view.Shipments {
		if s.ShipmentID != except && o.mayCapture(s) {
			return true
		}
	}
	return false
}

// settle moves the money of a shipment whose carrier event was applied, in
// sagas that authorize: a shipment that left (not lost) is captured for its
// value, finally when no other shipment may still be captured; once nothing
// more will be captured, what is left of the authorization is voided. A
// capture is retried like a compensation: the goods are gone, the money
// must follow.
func (o *saga) settle(ctx workflow.Context, s fulfillment.Shipment) error {
	a := o.view.Authorization
	if a == nil || a.Released {
		return nil
	}
	if fulfillment.Left(s.Status) && s.Status != fulfillment.ShipmentLost && !o.captured(s.ShipmentID) {
		var pay *payment.Activities
		final := !o.pendingCaptures(s.ShipmentID)
		var res payment.CaptureResult
		err := workflow.ExecuteLocalActivity(compensationOptions(ctx, paymentTimeout), pay.Capture, payment.CaptureInput{
			OrderID: o.in.OrderID, ShipmentID: s.ShipmentID, AmountCents: s.ValueCents, Final: final,
		}).Get(ctx, &res)
		if err != nil {
			return fmt.Errorf("capture shipment %s: %w", s.ShipmentID, err)
		}
		o.recordCapture(s.ShipmentID, res, final)
		return nil
	}
	return o.releaseRest(ctx)
}

// releaseRest voids what is left of the authorization once no shipment may
// still be captured and no capture was final (the last shipment was lost
// before it was picked up, or withdrawn).
func (o *saga) releaseRest(ctx workflow.Context) error {
	a := o.view.Authorization
	if a == nil || a.Released || o.pendingCaptures("") {
		return nil
	}
	var pay *payment.Activities
	err := workflow.ExecuteLocalActivity(compensationOptions(ctx, paymentTimeout), pay.Void,
		orderflow.OrderRef{OrderID: o.in.OrderID}).Get(ctx, nil)
	if err != nil {
		return fmt.Errorf("release the rest of the authorization: %w", err)
	}
	a.Released = true
	return nil
}

// renewalDue reports whether the authorization must be renewed when
// renewAt comes: goods are still to be captured.
func (o *saga) renewalDue() bool {
	a := o.view.Authorization
	return a != nil && !a.Released && !o.renewAt.IsZero() && !o.lapsing && o.pendingCaptures("")
}

// renew re-authorizes what may still be captured (Renewal n+1; the activity
// voids the previous authorization once the new one holds). A decline, or
// no provider answering, marks the authorization lapsing: fulfil then
// cancels what has not shipped. A cancel accepted meanwhile is left to
// fulfil's loop, which compensates (Refund voids whichever authorization
// holds).
func (o *saga) renew(ctx workflow.Context) {
	var pay *payment.Activities
	a := o.view.Authorization
	var rest int64
	for _, s := range o.view.Shipments {
		if o.mayCapture(s) {
			rest += s.ValueCents
		}
	}
	in := payment.AuthorizeInput{Renewal: a.Renewal + 1, ChargeInput: payment.ChargeInput{
		OrderID: o.in.OrderID, Token: o.in.PaymentToken, AmountCents: rest, Currency: o.view.Currency,
	}}
	var res payment.AuthorizeResult
	err := o.step(ctx, paymentTimeout, pay.Authorize, in, &res)
	switch {
	case errors.Is(err, errCancelled):
	case err != nil:
		workflow.GetLogger(ctx).Warn("authorization could not be renewed; cancelling what has not shipped",
			"order_id", o.in.OrderID, "renewal", in.Renewal, "error", err)
		o.lapsing = true
	default:
		workflow.GetLogger(ctx).Info("authorization renewed", "order_id", o.in.OrderID, "renewal", in.Renewal, "amount_cents", rest)
		o.authorized(ctx, res, in.Renewal)
	}
}

// cancelUnshipped ends the part of an order that has not shipped once its
// authorization lapses: its shipments are withdrawn (the customer told by
// CancelShipments' message), their stock released and the rest of the
// authorization voided. What shipped stays captured and is followed to
// the door.
func (o *saga) cancelUnshipped(ctx workflow.Context) error {
	var ful *fulfillment.Activities
	var inv *catalog.Inventory
	ref := orderflow.OrderRef{OrderID: o.in.OrderID}
	if err := workflow.ExecuteLocalActivity(compensationOptions(ctx, serviceTimeout), ful.CancelShipments, ref).Get(ctx, nil); err != nil {
		return fmt.Errorf("cancel unshipped shipments: %w", err)
	}
	if err := workflow.ExecuteLocalActivity(compensationOptions(ctx, serviceTimeout), inv.Release, ref).Get(ctx, nil); err != nil {
		return fmt.Errorf("release unshipped stock: %w", err)
	}
	var statuses []string
	for i := range o.view.Shipments {
		s := &o.view.Shipments[i]
		if !fulfillment.Left(s.Status) {
			s.Status = fulfillment.ShipmentCancelled
			continue
		}
		statuses = append(statuses, s.Status)
	}
	o.lapsing = false
	if err := o.releaseRest(ctx); err != nil {
		return err
	}
	if status := fulfillment.OrderStatus(statuses, false); status != o.view.Status && !o.allFinal() {
		if err := o.record(ctx, status, ""); err != nil {
			return err
		}
		o.setStatus(ctx, status)
	}
	return nil
}
