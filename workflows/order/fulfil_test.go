package order_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/fulfillment"
	"github.com/orderflow/orderflow/activities/fulfillment/wire"
	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/workflows/order"
)

var fulActs *fulfillment.Activities

// Two shipments: the order's SKU-1 split over two warehouses.
var testShipments = []fulfillment.Shipment{
	{ShipmentID: "s-1", Warehouse: "main", Items: []orderflow.Item{{SKU: "SKU-1", Quantity: 1}}, Status: fulfillment.ShipmentAllocated, ValueCents: 1500},
	{ShipmentID: "s-2", Warehouse: "east", Items: []orderflow.Item{{SKU: "SKU-1", Quantity: 1}}, Status: fulfillment.ShipmentAllocated, ValueCents: 1500},
}

// fakeShipments stands in for the fulfillment tables: AdvanceShipment moves
// a shipment forward only and derives the order's status, as the real one
// does in the database.
type fakeShipments struct {
	mu       sync.Mutex
	status   map[string]string
	advanced []string // "s-1:picked_up", per call
}

func newFakeShipments() *fakeShipments {
	f := &fakeShipments{status: map[string]string{}}
	for _, s := range testShipments {
		f.status[s.ShipmentID] = s.Status
	}
	return f
}

func (f *fakeShipments) advance(_ context.Context, in fulfillment.AdvanceInput) (fulfillment.AdvanceResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.advanced = append(f.advanced, in.ShipmentID+":"+in.Type)
	if fulfillment.Rank(in.Type) > fulfillment.Rank(f.status[in.ShipmentID]) {
		f.status[in.ShipmentID] = in.Type
	}
	var statuses []string
	for _, s := range testShipments {
		statuses = append(statuses, f.status[s.ShipmentID])
	}
	return fulfillment.AdvanceResult{ShipmentStatus: f.status[in.ShipmentID], OrderStatus: fulfillment.OrderStatus(statuses, in.Overdue)}, nil
}

func (f *fakeShipments) calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.advanced...)
}

type fulfilTest struct {
	*orderTest
	ship   *fakeShipments
	events map[string]*carrierOutcome
}

type carrierOutcome struct {
	accepted, rejected bool
	rejectErr          error
	result             order.CarrierEventResult
}

func newFulfilTest(t *testing.T, s *testsuite.WorkflowTestSuite) *fulfilTest {
	if s == nil {
		s = &testsuite.WorkflowTestSuite{}
	}
	return newFulfilTestOn(newOrderTestIn(t, s))
}

// newFulfilTestOn fulfils the orders of base.
func newFulfilTestOn(base *orderTest) *fulfilTest {
	h := &fulfilTest{orderTest: base, ship: newFakeShipments(), events: map[string]*carrierOutcome{}}
	h.env.OnActivity(fulActs.StartFulfillment, mock.Anything, mock.Anything).Return(fulfillment.StartResult{Shipments: testShipments}, nil).Maybe()
	h.env.OnActivity(fulActs.HandOffShipment, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in fulfillment.HandoffInput) (fulfillment.HandoffResult, error) {
			return fulfillment.HandoffResult{TrackingNumber: "TRK-" + in.Shipment.ShipmentID}, nil
		}).Maybe()
	h.env.OnActivity(fulActs.AdvanceShipment, mock.Anything, mock.Anything).Return(h.ship.advance).Maybe()
	h.env.OnActivity(fulActs.CancelShipments, mock.Anything, mock.Anything).Return(nil).Maybe()
	h.env.OnActivity(payActs.RefundPart, mock.Anything, mock.Anything).Return(payment.RefundResult{Refunded: true}, nil).Maybe()
	return h
}

// carrier sends a carrier event after d on the workflow clock, as the
// gateway does: the event id is the update id.
func (h *fulfilTest) carrier(d time.Duration, eventID, shipmentID, typ string) {
	out := &carrierOutcome{}
	h.events[eventID] = out
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(order.CarrierEventUpdate, eventID, &testsuite.TestUpdateCallback{
			OnAccept: func() { out.accepted = true },
			OnReject: func(err error) { out.rejected, out.rejectErr = true, err },
			OnComplete: func(v any, err error) {
				if r, ok := v.(order.CarrierEventResult); ok {
					out.result = r
				}
			},
		}, order.CarrierEvent{EventID: eventID, ShipmentID: shipmentID, Type: typ, At: time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)})
	}, d)
}

func (h *fulfilTest) runFulfilled(in order.Input) {
	h.t.Helper()
	h.mockDefaults()
	in.Fulfill = true
	h.env.ExecuteWorkflow(order.Workflow, in)
	require.True(h.t, h.env.IsWorkflowCompleted(), "workflow did not complete")
}

func TestFulfil_HappyPath_ShipsBothShipmentsAndEndsDelivered(t *testing.T) {
	h := newFulfilTest(t, nil)
	h.carrier(time.Hour, "e1", "s-1", wire.EventPickedUp)
	h.carrier(2*time.Hour, "e2", "s-2", wire.EventPickedUp)
	h.carrier(3*time.Hour, "e3", "s-1", wire.EventInTransit)
	h.carrier(4*time.Hour, "e4", "s-1", wire.EventDelivered)
	h.carrier(5*time.Hour, "e5", "s-2", wire.EventDelivered)
	h.runFulfilled(testInput())

	v := h.result()
	assert.Equal(t, orderflow.StatusDelivered, v.Status)
	assert.Equal(t, 0, h.attempts("Confirm"), "the stock stays reserved until each shipment leaves: no Confirm")
	assert.Equal(t, 1, h.attempts("StartFulfillment"))
	assert.Empty(t, h.compensations())
	assert.Equal(t, []string{"FULFILLING", "PARTIALLY_SHIPPED", "SHIPPED", "DELIVERED"}, h.upserted())
	for _, s := range v.Shipments {
		assert.Equal(t, fulfillment.ShipmentDelivered, s.Status)
		assert.Equal(t, "TRK-"+s.ShipmentID, s.TrackingNumber)
	}
	assert.Equal(t, orderflow.StatusShipped, h.events["e2"].result.OrderStatus)
	assert.True(t, h.events["e4"].result.Applied)
}

func TestFulfil_OutOfOrderEvents_DeliveredFirstStillEndsDeliveredAndLateOnesChangeNothing(t *testing.T) {
	h := newFulfilTest(t, nil)
	h.carrier(time.Hour, "e1", "s-1", wire.EventDelivered) // before its picked_up
	h.carrier(2*time.Hour, "e2", "s-1", wire.EventPickedUp)
	h.carrier(3*time.Hour, "e3", "s-1", wire.EventInTransit)
	h.carrier(4*time.Hour, "e1", "s-1", wire.EventDelivered) // re-sent
	h.carrier(5*time.Hour, "e5", "s-2", wire.EventDelivered)
	h.runFulfilled(testInput())

	assert.Equal(t, orderflow.StatusDelivered, h.result().Status)
	assert.Equal(t, []string{"s-1:delivered", "s-2:delivered"}, h.ship.calls(),
		"late and re-sent events never reach the database")
	assert.False(t, h.events["e2"].result.Applied)
	assert.Equal(t, fulfillment.ShipmentDelivered, h.events["e3"].result.ShipmentStatus)
}

func TestFulfil_UnknownShipment_IsRejected(t *testing.T) {
	h := newFulfilTest(t, nil)
	h.carrier(time.Hour, "e0", "s-9", wire.EventPickedUp)
	h.carrier(2*time.Hour, "e1", "s-1", wire.EventDelivered)
	h.carrier(2*time.Hour, "e2", "s-2", wire.EventDelivered)
	h.runFulfilled(testInput())

	require.True(t, h.events["e0"].rejected)
	assert.Contains(t, h.events["e0"].rejectErr.Error(), "no shipment s-9")
	assert.Equal(t, orderflow.StatusDelivered, h.result().Status)
}

func TestFulfil_CancelBeforePickup_WithdrawsShipmentsRefundsReleasesAndEndsCancelled(t *testing.T) {
	h := newFulfilTest(t, nil)
	upd := h.cancelAfter(time.Hour)
	h.carrier(time.Hour, "late", "s-1", wire.EventPickedUp) // right behind the cancel
	h.runFulfilled(testInput())

	require.True(t, upd.accepted, "cancel before any pickup is accepted: %v", upd.rejectErr)
	assert.Equal(t, orderflow.StatusFulfilling, upd.result.Status)
	v := h.result()
	assert.Equal(t, orderflow.StatusCancelled, v.Status)
	assert.Equal(t, order.ReasonCancelled, v.FailureReason)
	assert.Equal(t, []string{"CancelShipments", "Refund", "Release"}, h.compensations(),
		"shipments withdrawn, then the full refund, then the stock released")
	assert.True(t, h.events["late"].rejected, "a pickup after the cancel changes nothing")
	assert.Empty(t, h.ship.calls())
}

func TestFulfil_CancelAfterAPickup_IsRejectedAlreadyShipped(t *testing.T) {
	h := newFulfilTest(t, nil)
	h.carrier(time.Hour, "e1", "s-1", wire.EventPickedUp)
	upd := h.cancelAfter(2 * time.Hour)
	h.carrier(3*time.Hour, "e2", "s-1", wire.EventDelivered)
	h.carrier(3*time.Hour, "e3", "s-2", wire.EventDelivered)
	h.runFulfilled(testInput())

	require.True(t, upd.rejected)
	app := requireAppErrType(t, upd.rejectErr, orderflow.AlreadyShipped)
	assert.Contains(t, app.Error(), "return the goods")
	assert.Equal(t, orderflow.StatusDelivered, h.result().Status)
	assert.Empty(t, h.compensations())
}

func TestFulfil_ShipmentSLA_FlagsTheOrderOverdueAndCountsTheBreach(t *testing.T) {
	counts := &counter{}
	s := &testsuite.WorkflowTestSuite{}
	s.SetMetricsHandler(counts)
	h := newFulfilTest(t, s)
	in := testInput()
	in.ShipmentSLA = 24 * time.Hour
	h.carrier(23*time.Hour, "e1", "s-1", wire.EventPickedUp)
	h.carrier(30*time.Hour, "e2", "s-2", wire.EventPickedUp) // past the SLA
	h.carrier(40*time.Hour, "e3", "s-1", wire.EventDelivered)
	h.carrier(40*time.Hour, "e4", "s-2", wire.EventDelivered)
	h.runFulfilled(in)

	assert.Equal(t, orderflow.StatusDelivered, h.result().Status)
	assert.Equal(t, []string{"FULFILLING", "PARTIALLY_SHIPPED", "FULFILLMENT_OVERDUE", "SHIPPED", "DELIVERED"}, h.upserted())
	assert.Contains(t, h.recorded(), "SetStatus(FULFILLMENT_OVERDUE)")
	assert.Equal(t, int64(1), counts.get(order.MetricShipmentSLABreached))
}

func TestFulfil_PickedUpWithinTheSLA_IsNeverOverdue(t *testing.T) {
	counts := &counter{}
	s := &testsuite.WorkflowTestSuite{}
	s.SetMetricsHandler(counts)
	h := newFulfilTest(t, s)
	h.carrier(47*time.Hour, "e1", "s-1", wire.EventPickedUp)
	h.carrier(47*time.Hour, "e2", "s-2", wire.EventPickedUp)
	h.carrier(100*time.Hour, "e3", "s-1", wire.EventDelivered)
	h.carrier(100*time.Hour, "e4", "s-2", wire.EventDelivered)
	h.runFulfilled(testInput()) // the default SLA, 48 h

	assert.Equal(t, orderflow.StatusDelivered, h.result().Status)
	assert.NotContains(t, h.upserted(), orderflow.StatusFulfillmentOverdue)
	assert.Zero(t, counts.get(order.MetricShipmentSLABreached))
}

func TestFulfil_LostShipment_IsRefundedAndTheOrderStillEndsDelivered(t *testing.T) {
	h := newFulfilTest(t, nil)
	h.env.OnActivity(payActs.RefundPart, mock.Anything, payment.RefundPartInput{
		OrderID: "o-1", Key: "refund-o-1-s-2", AmountCents: 1500,
	}).Return(payment.RefundResult{Refunded: true}, nil).Once()
	h.carrier(time.Hour, "e1", "s-1", wire.EventPickedUp)
	h.carrier(time.Hour, "e2", "s-2", wire.EventPickedUp)
	h.carrier(2*time.Hour, "e3", "s-2", wire.EventLost)
	h.carrier(3*time.Hour, "e4", "s-2", wire.EventLost) // re-sent under a new id
	h.carrier(4*time.Hour, "e5", "s-1", wire.EventDelivered)
	h.runFulfilled(testInput())

	assert.Equal(t, orderflow.StatusDelivered, h.result().Status)
	assert.Equal(t, 1, h.attempts("RefundPart"), "the lost shipment is refunded once")
}

func TestFulfil_EveryShipmentLost_RefundsEachAndFailsLostInTransit(t *testing.T) {
	h := newFulfilTest(t, nil)
	h.carrier(time.Hour, "e1", "s-1", wire.EventLost)
	h.carrier(time.Hour, "e2", "s-2", wire.EventLost)
	h.runFulfilled(testInput())

	v := h.result()
	assert.Equal(t, orderflow.StatusFailed, v.Status)
	assert.Equal(t, order.ReasonLostInTransit, v.FailureReason)
	assert.Equal(t, 2, h.attempts("RefundPart"))
	assert.Contains(t, h.recorded(), "SetStatus(FAILED)")
}

func TestFulfil_WithoutFulfill_EndsConfirmedAsBefore(t *testing.T) {
	h := newFulfilTest(t, nil)
	h.run()
	assert.Equal(t, orderflow.StatusConfirmed, h.result().Status)
	assert.Zero(t, h.attempts("StartFulfillment"))
}

// counter is a metrics handler that counts counters by name.
type counter struct {
	mu sync.Mutex
	n  map[string]int64
}

func (c *counter) get(name string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[name]
}

func (c *counter) WithTags(map[string]string) client.MetricsHandler { return c }
func (c *counter) Counter(name string) client.MetricsCounter        { return counterOf{c, name} }
func (c *counter) Gauge(string) client.MetricsGauge                 { return client.MetricsNopHandler.Gauge("") }
func (c *counter) Timer(string) client.MetricsTimer                 { return client.MetricsNopHandler.Timer("") }

type counterOf struct {
	c    *counter
	name string
}

func (o counterOf) Inc(d int64) {
	o.c.mu.Lock()
	defer o.c.mu.Unlock()
	if o.c.n == nil {
		o.c.n = map[string]int64{}
	}
	o.c.n[o.name] += d
}
