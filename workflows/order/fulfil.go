package order

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/fulfillment"
	"github.com/orderflow/orderflow/activities/fulfillment/wire"
	"github.com/orderflow/orderflow/activities/payment"
)

// fulfillmentVersion is the change ID of fulfil: sagas started before it
// (and every saga without Input.Fulfill) end CONFIRMED.
const fulfillmentVersion = "fulfillment"

// ReasonLostInTransit: every shipment of the order was lost by the carrier
// (each refunded).
const ReasonLostInTransit = "lost_in_transit"

// defaultShipmentSLA is how long shipments may wait for their pickup.
const defaultShipmentSLA = 48 * time.Hour

// MetricShipmentSLABreached counts orders whose shipments were not picked
// up within the shipment SLA (orderflow_fulfillment_sla_breached_total):
// an operator should chase the warehouse or the carrier.
const MetricShipmentSLABreached = "orderflow.fulfillment.sla_breached"

// Application error types of a rejected CarrierEventUpdate.
const (
	// RejectNoSuchShipment: the order is not fulfilled, or has no such shipment.
	RejectNoSuchShipment = "NoSuchShipment"
	// RejectOrderEnded: the order was cancelled or has ended; the event
	// changes nothing.
	RejectOrderEnded = "OrderEnded"
)

// CarrierEvent is the argument of CarrierEventUpdate: one carrier event
// about one shipment of the order.
type CarrierEvent struct {
	EventID        string    `json:"event_id"`
	ShipmentID     string    `json:"shipment_id"`
	Type           string    `json:"type"`
	At             time.Time `json:"at"`
	TrackingNumber string    `json:"tracking_number,omitempty"`
}

// CarrierEventResult answers a CarrierEventUpdate: the shipment's and the
// order's status once the event was applied, and whether it changed
// anything (an event that does not rank above the shipment's status, a
// late in_transit after delivered say, changes nothing).
type CarrierEventResult struct {
	ShipmentStatus string `json:"shipment_status"`
	OrderStatus    string `json:"order_status"`
	Applied        bool   `json:"applied"`
}

// carrierState is what the saga holds of the carrier's events: those
// queued by the update handler, the results of those applied, and the
// shipments an event (applied or queued) says have left, which a cancel
// must respect at once.
type carrierState struct {
	queue   []CarrierEvent
	queued  map[string]bool
	results map[string]CarrierEventResult
	leaving map[string]bool
	// closed once the order ended: later events are refused, as they are
	// once a cancel was accepted.
	closed bool
}

// registerCarrierEvents sets the CarrierEventUpdate handler. Events are
// applied one at a time by fulfil's loop, in the order they were accepted,
// so two events of one order never race in the database.
func (o *saga) registerCarrierEvents(ctx workflow.Context) error {
	o.carrier = carrierState{queued: map[string]bool{}, results: map[string]CarrierEventResult{}, leaving: map[string]bool{}}
	return workflow.SetUpdateHandlerWithOptions(ctx, CarrierEventUpdate,
		func(ctx workflow.Context, ev CarrierEvent) (CarrierEventResult, error) {
			if !o.carrier.queued[ev.EventID] {
				o.carrier.queued[ev.EventID] = true
				o.carrier.queue = append(o.carrier.queue, ev)
				if fulfillment.Left(ev.Type) {
					o.carrier.leaving[ev.ShipmentID] = true
				}
			}
			err := workflow.Await(ctx, func() bool {
				_, done := o.carrier.results[ev.EventID]
				return done || o.carrier.closed
			})
			return o.carrier.results[ev.EventID], err
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, ev CarrierEvent) error {
			switch {
			case !o.fulfilling || o.view.Shipments != nil && o.shipment(ev.ShipmentID) == nil:
				return temporal.NewApplicationError("order "+o.in.OrderID+" has no shipment "+ev.ShipmentID, RejectNoSuchShipment)
			case (o.carrier.closed || o.view.CancelRequested) && o.carrier.results[ev.EventID] == (CarrierEventResult{}):
				return temporal.NewApplicationError("order "+o.in.OrderID+" is "+o.view.Status, RejectOrderEnded, o.view.Status)
			case !wire.ValidEvent(ev.Type):
				return temporal.NewApplicationError("unknown carrier event type "+ev.Type, RejectNoSuchShipment)
			}
			return nil
		}})
}

// validateCancelFulfilling decides a cancel once the order is in
// fulfillment: accepted while no shipment has left its warehouse (as far
// as any carrier event the saga accepted says), refused with
// AlreadyShipped after, and with TooLateToCancel once the order ended.
func (o *saga) validateCancelFulfilling() error {
	if o.anyLeft() {
		return temporal.NewApplicationError("a shipment of the order has left its warehouse; too late to cancel: return the goods instead",
			string(orderflow.AlreadyShipped), o.view.Status)
	}
	if orderflow.Terminal(o.view.Status) || o.view.Status == orderflow.StatusCompensating || o.carrier.closed {
		return temporal.NewApplicationError("order is "+o.view.Status+"; too late to cancel", string(orderflow.TooLateToCancel), o.view.Status)
	}
	return nil
}

func (o *saga) anyLeft() bool {
	for _, s := range o.view.Shipments {
		if fulfillment.Left(s.Status) {
			return true
		}
	}
	return len(o.carrier.leaving) > 0
}

func (o *saga) shipment(id string) *fulfillment.Shipment {
	for i := range o.view.Shipments {
		if o.view.Shipments[i].ShipmentID == id {
			return &o.view.Shipments[i]
		}
	}
	return nil
}

// fulfil confirms a paid order into fulfillment and follows it to the door.
// Start confirms it and allocates its lines to shipments (one per
// warehouse) with its stock still reserved, each shipment is handed to the
// carrier, and the carrier's events (CarrierEventUpdate) move the shipments
// on; a shipment's stock is committed when it leaves. The order ends
// DELIVERED once every shipment is delivered or lost (lost ones refunded),
// FAILED when all were lost. Shipments not picked up within the SLA flag
// the order FULFILLMENT_OVERDUE (and MetricShipmentSLABreached). Until a
// shipment leaves, a cancel is accepted: the shipments are withdrawn, the
// payment refunded in full and the stock released (abort's compensations).
func (o *saga) fulfil(ctx workflow.Context, lines []orderflow.Line) (View, error) {
	var ful *fulfillment.Activities
	ref := orderflow.OrderRef{OrderID: o.in.OrderID}
	o.fulfilling = true
	o.compensate("cancel shipments", serviceTimeout, ful.CancelShipments, ref)
	var started fulfillment.StartResult
	if err := o.step(ctx, serviceTimeout, ful.StartFulfillment, fulfillment.StartInput{OrderID: o.in.OrderID, Lines: lines}, &started); err != nil {
		return o.abort(ctx, err, ReasonConfirmFailed)
	}
	o.view.Shipments = started.Shipments
	o.setStatus(ctx, orderflow.StatusFulfilling)

	// A workflow cancellation is a cancel request: honoured while nothing
	// left, and from then on the saga waits on a context it cannot cut.
	wctx, stopWaiting := workflow.NewDisconnectedContext(ctx)
	defer stopWaiting()
	hctx, stopHandoffs := workflow.WithCancel(wctx)
	defer stopHandoffs()
	o.handOff(hctx)

	sla := o.in.ShipmentSLA
	if sla <= 0 {
		sla = defaultShipmentSLA
	}
	due := workflow.Now(ctx).Add(sla)
	cancelled := func() bool { return o.view.CancelRequested || ctx.Err() != nil && !o.anyLeft() }
	for !o.allFinal() {
		if cancelled() {
			stopHandoffs()
			o.carrier.closed = true
			return o.abort(ctx, errCancelled, ReasonCancelled)
		}
		if len(o.carrier.queue) > 0 {
			ev := o.carrier.queue[0]
			o.carrier.queue = o.carrier.queue[1:]
			if err := o.applyCarrierEvent(wctx, ev); err != nil {
				o.carrier.closed = true
				return o.view, err
			}
			continue
		}
		if o.lapsing {
			// The authorization could not be renewed; the events queued
			// meanwhile were applied (their shipments captured) first.
			stopHandoffs()
			if !o.anyLeft() {
				o.carrier.closed = true
				return o.abort(ctx, errAuthorizationLapsed, ReasonAuthorizationExpired)
			}
			if err := o.cancelUnshipped(wctx); err != nil {
				o.carrier.closed = true
				return o.view, err
			}
			continue
		}
		ready := func() bool { return cancelled() || len(o.carrier.queue) > 0 }
		sla := !o.view.Overdue && o.anyWaiting()
		if renew := o.renewalDue(); sla || renew {
			at := due
			if renew && (!sla || o.renewAt.Before(due)) {
				at = o.renewAt
			}
			left := at.Sub(workflow.Now(wctx))
			ok := false
			if left > 0 {
				var err error
				if ok, err = workflow.AwaitWithTimeout(wctx, left, ready); err != nil {
					return o.view, err
				}
			}
			switch {
			case ok:
			case at.Equal(o.renewAt) && renew:
				o.renew(wctx)
			default:
				o.breachSLA(wctx)
			}
			continue
		}
		if err := workflow.Await(wctx, ready); err != nil {
			return o.view, err
		}
	}
	o.carrier.closed = true
	stopHandoffs()
	statuses := make([]string, len(o.view.Shipments))
	for i, s := range o.view.Shipments {
		statuses[i] = s.Status
	}
	if final := fulfillment.OrderStatus(statuses, false); final == orderflow.StatusFailed {
		o.view.FailureReason = ReasonLostInTransit
		if err := o.record(wctx, orderflow.StatusFailed, ReasonLostInTransit); err != nil {
			return o.view, err
		}
		o.setStatus(wctx, orderflow.StatusFailed)
	} else if o.view.Status != final {
		o.setStatus(wctx, final)
	}
	return o.view, nil
}

// handOff hands every allocated shipment to the carrier, each in its own
// activity retried until the carrier takes it; ctx's cancellation (the
// order was cancelled) stops them.
func (o *saga) handOff(ctx workflow.Context) {
	var ful *fulfillment.Activities
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    paymentTimeout,
		ScheduleToCloseTimeout: compensationDeadline,
		RetryPolicy:            compensationRetry,
	})
	for _, sh := range o.view.Shipments {
		if sh.Status != fulfillment.ShipmentAllocated {
			continue
		}
		workflow.Go(actx, func(gctx workflow.Context) {
			var res fulfillment.HandoffResult
			err := workflow.ExecuteActivity(gctx, ful.HandOffShipment, fulfillment.HandoffInput{OrderID: o.in.OrderID, Shipment: sh}).Get(gctx, &res)
			if err != nil {
				workflow.GetLogger(gctx).Warn("handoff stopped", "order_id", o.in.OrderID, "shipment_id", sh.ShipmentID, "error", err)
				return
			}
			if s := o.shipment(sh.ShipmentID); s != nil && fulfillment.Rank(s.Status) < fulfillment.Rank(fulfillment.ShipmentHandedOver) {
				s.Status, s.TrackingNumber = fulfillment.ShipmentHandedOver, res.TrackingNumber
			}
		})
	}
}

// applyCarrierEvent applies one accepted carrier event (Advance) and
// records its result for the update that brought it. A lost shipment is
// refunded.
func (o *saga) applyCarrierEvent(ctx workflow.Context, ev CarrierEvent) error {
	var ful *fulfillment.Activities
	s := o.shipment(ev.ShipmentID)
	if s == nil || fulfillment.Rank(ev.Type) <= fulfillment.Rank(s.Status) {
		res := CarrierEventResult{OrderStatus: o.view.Status}
		if s != nil {
			res.ShipmentStatus = s.Status
		}
		o.carrier.results[ev.EventID] = res
		return nil
	}
	var adv fulfillment.AdvanceResult
	err := workflow.ExecuteLocalActivity(compensationOptions(ctx, serviceTimeout), ful.AdvanceShipment, fulfillment.AdvanceInput{
		OrderID: o.in.OrderID, ShipmentID: ev.ShipmentID, Type: ev.Type, At: ev.At, TrackingNumber: ev.TrackingNumber, Overdue: o.view.Overdue,
	}).Get(ctx, &adv)
	if err != nil {
		return fmt.Errorf("apply carrier event %s: %w", ev.EventID, err)
	}
	applied := adv.ShipmentStatus != s.Status
	s.Status = adv.ShipmentStatus
	if ev.TrackingNumber != "" {
		s.TrackingNumber = ev.TrackingNumber
	}
	if applied {
		if err := o.settle(ctx, *s); err != nil {
			return err
		}
	}
	// A lost shipment is refunded; one that was authorized only, never
	// captured (lost before its pickup), has nothing to refund.
	if applied && s.Status == fulfillment.ShipmentLost && (o.view.Authorization == nil || o.captured(s.ShipmentID)) {
		if err := o.refundLost(ctx, *s); err != nil {
			return err
		}
	}
	if adv.OrderStatus != o.view.Status && adv.OrderStatus != orderflow.StatusFailed && !o.allFinal() {
		o.setStatus(ctx, adv.OrderStatus)
	}
	o.carrier.results[ev.EventID] = CarrierEventResult{ShipmentStatus: s.Status, OrderStatus: o.view.Status, Applied: applied}
	return nil
}

// refundLost refunds a lost shipment's value: the carrier lost goods that
// left our warehouse, and re-shipping would take stock other orders
// reserved, so the customer gets the money back (docs/fulfillment.md).
func (o *saga) refundLost(ctx workflow.Context, s fulfillment.Shipment) error {
	var pay *payment.Activities
	err := workflow.ExecuteLocalActivity(compensationOptions(ctx, paymentTimeout), pay.RefundPart, payment.RefundPartInput{
		OrderID: o.in.OrderID, Key: payment.PartialRefundKey(o.in.OrderID, s.ShipmentID), AmountCents: s.ValueCents,
	}).Get(ctx, nil)
	if err != nil {
		return fmt.Errorf("refund lost shipment %s: %w", s.ShipmentID, err)
	}
	return nil
}

func (o *saga) allFinal() bool {
	for _, s := range o.view.Shipments {
		if !fulfillment.Final(s.Status) {
			return false
		}
	}
	return len(o.view.Shipments) > 0
}

// anyWaiting reports whether a shipment has not left its warehouse.
func (o *saga) anyWaiting() bool {
	for _, s := range o.view.Shipments {
		if !fulfillment.Left(s.Status) && !o.carrier.leaving[s.ShipmentID] {
			return true
		}
	}
	return false
}

// breachSLA flags an order whose shipments were not all picked up within
// the SLA: the metric for the alert, FULFILLMENT_OVERDUE for the operator
// (the database, OrderStatus in visibility, the Web UI's details).
func (o *saga) breachSLA(ctx workflow.Context) {
	o.view.Overdue = true
	workflow.GetLogger(ctx).Warn("shipment SLA breached", "order_id", o.in.OrderID)
	workflow.GetMetricsHandler(ctx).Counter(MetricShipmentSLABreached).Inc(1)
	if err := o.record(ctx, orderflow.StatusFulfillmentOverdue, ""); err != nil {
		workflow.GetLogger(ctx).Error("record overdue status", "order_id", o.in.OrderID, "error", err)
		return
	}
	o.setStatus(ctx, orderflow.StatusFulfillmentOverdue)
}
