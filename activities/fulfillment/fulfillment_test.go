package fulfillment_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/catalog"
	"github.com/orderflow/orderflow/activities/fulfillment"
	"github.com/orderflow/orderflow/activities/fulfillment/wire"
	"github.com/orderflow/orderflow/activities/orders"
	"github.com/orderflow/orderflow/devtools/testkit"
)

// fixture runs the activities against the real PostgreSQL and Redis.
type fixture struct {
	t    *testing.T
	pool *pgxpool.Pool
	env  *testsuite.TestActivityEnvironment
	ord  *orders.Activities
	inv  *catalog.Inventory
	ful  *fulfillment.Activities
}

func newFixture(t *testing.T) *fixture {
	pool, rc := testkit.DB(t), testkit.Redis(t)
	var suite testsuite.WorkflowTestSuite
	f := &fixture{t: t, pool: pool, env: suite.NewTestActivityEnvironment()}
	f.ord = &orders.Activities{DB: pool, Cache: rc, PII: testkit.PII(t)}
	f.inv = &catalog.Inventory{DB: pool, Cache: rc, SetStatus: orders.RecordStatus}
	f.ful = &fulfillment.Activities{DB: pool, Cache: rc, PII: f.ord.PII}
	f.env.RegisterActivity(f.ord)
	f.env.RegisterActivity(f.inv)
	f.env.RegisterActivity(f.ful)
	return f
}

func (f *fixture) run(fn, arg, out any) {
	f.t.Helper()
	v, err := f.env.ExecuteActivity(fn, arg)
	require.NoError(f.t, err)
	if out != nil {
		require.NoError(f.t, v.Get(out))
	}
}

// paid creates an order of the items with its stock reserved, as the saga
// leaves it before fulfillment, and returns its id and lines.
func (f *fixture) paid(items ...orderflow.Item) (string, []orderflow.Line) {
	f.t.Helper()
	id := uuid.NewString()
	var res orders.CreateOrderResult
	f.run(f.ord.Create, orders.CreateOrderInput{OrderID: id, CustomerID: "c-ful", Email: "a@b.co", Region: "test", Items: items}, &res)
	f.run(f.inv.Reserve, catalog.ReserveInput{OrderID: id, Lines: res.Lines}, nil)
	return id, res.Lines
}

func (f *fixture) start(id string, lines []orderflow.Line) []fulfillment.Shipment {
	f.t.Helper()
	var res fulfillment.StartResult
	f.run(f.ful.StartFulfillment, fulfillment.StartInput{OrderID: id, Lines: lines}, &res)
	return res.Shipments
}

func (f *fixture) advance(id, shipment, typ string) fulfillment.AdvanceResult {
	f.t.Helper()
	var res fulfillment.AdvanceResult
	f.run(f.ful.AdvanceShipment, fulfillment.AdvanceInput{OrderID: id, ShipmentID: shipment, Type: typ, At: time.Now()}, &res)
	return res
}

func (f *fixture) history(id string) []string {
	f.t.Helper()
	o, err := orders.Store{DB: f.pool}.Order(context.Background(), id)
	require.NoError(f.t, err)
	var out []string
	for _, h := range o.History {
		out = append(out, h.Status)
	}
	return out
}

func (f *fixture) warehouses(sku string) map[string][2]int {
	f.t.Helper()
	list, err := catalog.Store{DB: f.pool}.Warehouses(context.Background(), sku)
	require.NoError(f.t, err)
	out := map[string][2]int{}
	for _, w := range list {
		out[w.Warehouse] = [2]int{w.OnHand, w.Allocated}
	}
	return out
}

func (f *fixture) notifications(id string) []string {
	f.t.Helper()
	rows, err := f.pool.Query(context.Background(), `SELECT kind FROM notifications WHERE order_id = $1 ORDER BY kind`, id)
	require.NoError(f.t, err)
	var kinds []string
	for rows.Next() {
		var k string
		require.NoError(f.t, rows.Scan(&k))
		kinds = append(kinds, k)
	}
	require.NoError(f.t, rows.Err())
	return kinds
}

// audited checks that a SKU's event log replays to its inventory row and
// to every warehouse's row, and that the warehouses add up to the SKU.
func (f *fixture) audited(sku string) {
	f.t.Helper()
	onHand, reserved, violated := testkit.ReplayEvents(f.t, f.pool, sku)
	require.NoError(f.t, violated)
	st := testkit.StockOf(f.t, f.pool, sku)
	assert.Equal(f.t, [2]int{st.OnHand, st.Reserved}, [2]int{onHand, reserved}, "the log replays to the SKU's row")
	r, err := catalog.ReplayWarehouses(context.Background(), f.pool, sku)
	require.NoError(f.t, err)
	assert.Equal(f.t, r.Rows, r.Events, "the log replays to every warehouse's row")
	assert.Zero(f.t, r.Unfiled, "no stock outside a warehouse")
	sum := 0
	for _, n := range r.Rows {
		sum += n
	}
	assert.Equal(f.t, st.OnHand, sum, "the warehouses add up to the SKU")
}

func TestStartConfirmsAllocatesOneShipmentAndKeepsTheStockReserved(t *testing.T) {
	f := newFixture(t)
	sku := testkit.Product(t, f.pool, 500, 5)
	id, lines := f.paid(orderflow.Item{SKU: sku, Quantity: 3})

	got := f.start(id, lines)
	require.Len(t, got, 1)
	assert.Equal(t, catalog.DefaultWarehouse, got[0].Warehouse)
	assert.Equal(t, []orderflow.Item{{SKU: sku, Quantity: 3}}, got[0].Items)
	assert.Equal(t, int64(1500), got[0].ValueCents)
	assert.Equal(t, fulfillment.ShipmentAllocated, got[0].Status)
	assert.Equal(t, got, f.start(id, lines), "a retried start returns the same shipments")

	assert.Equal(t, []string{"PENDING", "RESERVED", "CONFIRMED", "FULFILLING"}, f.history(id))
	assert.Equal(t, testkit.Stock{OnHand: 5, Reserved: 3}, stock(t, f, sku), "nothing leaves before the carrier picks it up")
	assert.Equal(t, map[string][2]int{"main": {5, 3}}, f.warehouses(sku))
	assert.Equal(t, []string{"order_confirmed"}, f.notifications(id))
	f.audited(sku)
}

func TestHandOffGivesTheCarrierTheOrdersShippingAddress(t *testing.T) {
	f := newFixture(t)
	// The real simulated carrier, holding the parcel: its events are not
	// due within the test.
	carrier := testkit.StartCarrier(t, "http://127.0.0.1:9", "whsec-handoff", "CARRIER_PICKUP_AFTER=1h")
	ful := &fulfillment.Activities{DB: f.pool, PII: f.ord.PII, Carrier: &fulfillment.Carrier{URL: carrier.URL}}
	f.env.RegisterActivity(ful)
	sku := testkit.Product(t, f.pool, 500, 5)
	addr := &orderflow.Address{Name: "Ada Lovelace", Line1: "12 St James's Square", City: "London", PostalCode: "SW1Y 4JH", Country: "GB"}
	id := uuid.NewString()
	var res orders.CreateOrderResult
	f.run(f.ord.Create, orders.CreateOrderInput{OrderID: id, CustomerID: "c-ful", Email: "a@b.co", Region: "test",
		ShippingAddress: addr, Items: []orderflow.Item{{SKU: sku, Quantity: 1}}}, &res)
	f.run(f.inv.Reserve, catalog.ReserveInput{OrderID: id, Lines: res.Lines}, nil)
	shipments := f.start(id, res.Lines)
	require.Len(t, shipments, 1)

	var handed fulfillment.HandoffResult
	f.run(ful.HandOffShipment, fulfillment.HandoffInput{OrderID: id, Shipment: shipments[0]}, &handed)
	require.NotEmpty(t, handed.TrackingNumber)

	parcel := carrier.Parcel(t, shipments[0].ShipmentID)
	assert.Equal(t, addr, parcel.Address, "the carrier holds the address the order was placed with")
	assert.Equal(t, id, parcel.OrderID)
}

func TestStartSplitsAnOrderNoOneWarehouseCovers(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a := testkit.Product(t, f.pool, 100, 5)
	b := testkit.Product(t, f.pool, 200, 4)
	c := testkit.Product(t, f.pool, 300, 3)
	d := testkit.Product(t, f.pool, 400, 1)
	store := catalog.Store{DB: f.pool}
	require.NoError(t, store.Transfer(ctx, a, "main", "t-east", 3)) // a: main 2, east 3
	require.NoError(t, store.Transfer(ctx, b, "main", "t-east", 4)) // b: east 4
	require.NoError(t, store.Transfer(ctx, c, "main", "t-east", 1)) // c: main 2, east 1
	require.NoError(t, store.Transfer(ctx, d, "main", "t-east", 1)) // d: east 1
	id, lines := f.paid(orderflow.Item{SKU: a, Quantity: 4}, orderflow.Item{SKU: b, Quantity: 2},
		orderflow.Item{SKU: c, Quantity: 2}, orderflow.Item{SKU: d, Quantity: 1})

	got := f.start(id, lines)
	byWarehouse := map[string][]orderflow.Item{}
	for _, s := range got {
		sort.Slice(s.Items, func(i, j int) bool { return s.Items[i].SKU < s.Items[j].SKU })
		byWarehouse[s.Warehouse] = s.Items
	}
	assert.Equal(t, map[string][]orderflow.Item{
		"t-east": sortItems(orderflow.Item{SKU: a, Quantity: 3}, orderflow.Item{SKU: b, Quantity: 2}, orderflow.Item{SKU: d, Quantity: 1}),
		"main":   sortItems(orderflow.Item{SKU: a, Quantity: 1}, orderflow.Item{SKU: c, Quantity: 2}),
	}, byWarehouse, "the warehouse covering most lines ships them; a line goes whole where one warehouse holds it all (c), "+
		"and only a line no warehouse covers is split (a)")
	assert.Equal(t, map[string][2]int{"main": {2, 1}, "t-east": {3, 3}}, f.warehouses(a))
	for _, sku := range []string{a, b, c, d} {
		f.audited(sku)
	}
}

func TestAdvanceCommitsAShipmentsStockOnceWhenItLeaves(t *testing.T) {
	f := newFixture(t)
	sku := testkit.Product(t, f.pool, 500, 5)
	id, lines := f.paid(orderflow.Item{SKU: sku, Quantity: 2})
	s := f.start(id, lines)[0]

	res := f.advance(id, s.ShipmentID, fulfillment.ShipmentPickedUp)
	assert.Equal(t, fulfillment.AdvanceResult{ShipmentStatus: "picked_up", OrderStatus: orderflow.StatusShipped}, res)
	assert.Equal(t, testkit.Stock{OnHand: 3, Reserved: 0}, stock(t, f, sku))
	assert.Equal(t, map[string][2]int{"main": {3, 0}}, f.warehouses(sku))

	f.advance(id, s.ShipmentID, fulfillment.ShipmentPickedUp)
	f.advance(id, s.ShipmentID, fulfillment.ShipmentInTransit)
	assert.Equal(t, testkit.Stock{OnHand: 3, Reserved: 0}, stock(t, f, sku), "the stock leaves once")

	res = f.advance(id, s.ShipmentID, fulfillment.ShipmentDelivered)
	assert.Equal(t, orderflow.StatusDelivered, res.OrderStatus)
	res = f.advance(id, s.ShipmentID, fulfillment.ShipmentInTransit)
	assert.Equal(t, fulfillment.ShipmentDelivered, res.ShipmentStatus, "a late in_transit changes nothing")
	assert.Equal(t, []string{"PENDING", "RESERVED", "CONFIRMED", "FULFILLING", "SHIPPED", "DELIVERED"}, f.history(id))
	assert.Equal(t, []string{"order_confirmed", "order_delivered", "order_shipped"}, f.notifications(id))
	var status string
	var shipped int
	require.NoError(t, f.pool.QueryRow(context.Background(), `SELECT status, shipped FROM reservations WHERE order_id = $1`, id).Scan(&status, &shipped))
	assert.Equal(t, "committed", status)
	assert.Equal(t, 2, shipped)
	f.audited(sku)
}

func TestAdvanceDeliveredBeforePickedUpStillCommitsTheStockAndDelivers(t *testing.T) {
	f := newFixture(t)
	sku := testkit.Product(t, f.pool, 500, 5)
	id, lines := f.paid(orderflow.Item{SKU: sku, Quantity: 2})
	s := f.start(id, lines)[0]

	res := f.advance(id, s.ShipmentID, fulfillment.ShipmentDelivered)
	assert.Equal(t, orderflow.StatusDelivered, res.OrderStatus)
	f.advance(id, s.ShipmentID, fulfillment.ShipmentPickedUp)
	assert.Equal(t, testkit.Stock{OnHand: 3, Reserved: 0}, stock(t, f, sku))
	f.audited(sku)
}

// Each shipment that leaves writes one order.shipped event, and the order
// one order.delivered when its last shipment arrives, however often the
// carrier repeats itself.
func TestAdvanceWritesAShippedEventPerShipmentAndOneDelivered(t *testing.T) {
	f := newFixture(t)
	a := testkit.Product(t, f.pool, 100, 5)
	b := testkit.Product(t, f.pool, 200, 5)
	require.NoError(t, catalog.Store{DB: f.pool}.Transfer(context.Background(), b, "main", "t-east", 5))
	id, lines := f.paid(orderflow.Item{SKU: a, Quantity: 1}, orderflow.Item{SKU: b, Quantity: 1})
	ships := f.start(id, lines)
	require.Len(t, ships, 2)
	for _, typ := range []string{fulfillment.ShipmentPickedUp, fulfillment.ShipmentDelivered} {
		for _, s := range ships {
			f.advance(id, s.ShipmentID, typ)
			f.advance(id, s.ShipmentID, typ)
		}
	}
	rows, err := f.pool.Query(context.Background(), `SELECT type, coalesce(payload->>'shipment_id', '') FROM event_outbox
		WHERE order_id = $1 AND type IN ('order.shipped', 'order.delivered') ORDER BY id`, id)
	require.NoError(t, err)
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]string, error) {
		var v [2]string
		return v, r.Scan(&v[0], &v[1])
	})
	require.NoError(t, err)
	assert.Equal(t, [][2]string{{"order.shipped", ships[0].ShipmentID}, {"order.shipped", ships[1].ShipmentID}, {"order.delivered", ""}}, got)
}

func TestCancelShipmentsWithdrawsThemAndReleaseReturnsTheStock(t *testing.T) {
	f := newFixture(t)
	sku := testkit.Product(t, f.pool, 500, 5)
	id, lines := f.paid(orderflow.Item{SKU: sku, Quantity: 2})
	f.start(id, lines)

	ref := orderflow.OrderRef{OrderID: id}
	f.run(f.ful.CancelShipments, ref, nil)
	f.run(f.ful.CancelShipments, ref, nil)
	f.run(f.inv.Release, ref, nil)
	assert.Equal(t, testkit.Stock{OnHand: 5, Reserved: 0}, stock(t, f, sku))
	assert.Equal(t, map[string][2]int{"main": {5, 0}}, f.warehouses(sku))
	list, err := fulfillment.Store{DB: f.pool}.Shipments(context.Background(), id)
	require.NoError(t, err)
	assert.Empty(t, list, "cancelled shipments are not the order's any more")
	assert.Equal(t, []string{"order_cancelled", "order_confirmed"}, f.notifications(id))
	f.audited(sku)
}

func TestTransferRefusesMoreThanTheUnallocatedStock(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	sku := testkit.Product(t, f.pool, 500, 5)
	id, lines := f.paid(orderflow.Item{SKU: sku, Quantity: 4})
	f.start(id, lines)
	store := catalog.Store{DB: f.pool}
	assert.ErrorIs(t, store.Transfer(ctx, sku, "main", "t-west", 2), catalog.ErrTransferTooLarge, "4 of main's 5 are promised")
	require.NoError(t, store.Transfer(ctx, sku, "main", "t-west", 1))
	assert.ErrorIs(t, store.Transfer(ctx, "NOPE-"+uuid.NewString()[:6], "main", "t-west", 1), catalog.ErrNoSuchSKU)
	f.audited(sku)
}

func TestStoreRecordsACarrierEventOnce(t *testing.T) {
	f := newFixture(t)
	sku := testkit.Product(t, f.pool, 500, 5)
	id, lines := f.paid(orderflow.Item{SKU: sku, Quantity: 1})
	s := f.start(id, lines)[0]
	store := fulfillment.Store{DB: f.pool}
	ctx := context.Background()

	got, err := store.ShipmentOrder(ctx, s.ShipmentID)
	require.NoError(t, err)
	assert.Equal(t, id, got)
	got, err = store.ShipmentOrder(ctx, uuid.NewString())
	require.NoError(t, err)
	assert.Empty(t, got)

	ev := wireEvent(uuid.NewString())
	fresh, err := store.RecordEvent(ctx, s.ShipmentID, ev)
	require.NoError(t, err)
	assert.True(t, fresh)
	fresh, err = store.RecordEvent(ctx, s.ShipmentID, ev)
	require.NoError(t, err)
	assert.False(t, fresh, "the same event id again is a duplicate")
}

func stock(t *testing.T, f *fixture, sku string) testkit.Stock {
	st := testkit.StockOf(t, f.pool, sku)
	st.Version = 0
	return st
}

func sortItems(items ...orderflow.Item) []orderflow.Item {
	sort.Slice(items, func(i, j int) bool { return items[i].SKU < items[j].SKU })
	return items
}

func wireEvent(id string) wire.Event {
	return wire.Event{EventID: id, Type: wire.EventPickedUp, At: time.Now().UTC().Truncate(time.Second)}
}
