package events_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/catalog"
	"github.com/orderflow/orderflow/activities/events"
	"github.com/orderflow/orderflow/activities/orders"
	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/db"
)

// saga runs the saga's activities against the real test database, with the
// simulated payment provider in process.
type saga struct {
	t    *testing.T
	pool *pgxpool.Pool
	env  *testsuite.TestActivityEnvironment
	ord  *orders.Activities
	inv  *catalog.Inventory
	pay  *payment.Activities
}

func newSaga(t *testing.T) *saga {
	pool, rc := testkit.DB(t), testkit.Redis(t)
	var suite testsuite.WorkflowTestSuite
	s := &saga{t: t, pool: pool, env: suite.NewTestActivityEnvironment()}
	_, sim := testkit.Paysim(t, pool, "paysim-events")
	s.ord = &orders.Activities{DB: pool, Cache: rc, PII: testkit.PII(t)}
	s.inv = &catalog.Inventory{DB: pool, Cache: rc, SetStatus: orders.RecordStatus}
	s.pay = &payment.Activities{DB: pool, Cache: rc, Providers: payment.NewRouter(testkit.Breaker(), sim)}
	s.env.RegisterActivity(s.ord)
	s.env.RegisterActivity(s.inv)
	s.env.RegisterActivity(s.pay)
	return s
}

// twice runs an activity twice, as a retry after a lost answer does.
func (s *saga) twice(fn, arg any) {
	s.t.Helper()
	for range 2 {
		_, err := s.env.ExecuteActivity(fn, arg)
		require.NoError(s.t, err)
	}
}

func (s *saga) create(region, sku string, qty int) (string, []orderflow.Line) {
	s.t.Helper()
	id := uuid.NewString()
	in := orders.CreateOrderInput{OrderID: id, CustomerID: "c-events", Email: "ev@example.com", Region: region,
		Items: []orderflow.Item{{SKU: sku, Quantity: qty}}}
	s.twice(s.ord.Create, in)
	v, err := s.env.ExecuteActivity(s.ord.Create, in)
	require.NoError(s.t, err)
	var res orders.CreateOrderResult
	require.NoError(s.t, v.Get(&res))
	return id, res.Lines
}

type row struct {
	Type    string
	Payload json.RawMessage
}

// outbox returns an order's events in id order.
func outbox(t *testing.T, pool *pgxpool.Pool, orderID string) []row {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT type, payload FROM event_outbox WHERE order_id = $1 ORDER BY id`, orderID)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
	require.NoError(t, err)
	return out
}

func types(rows []row) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.Type)
	}
	return out
}

// Each step of the saga writes its event in its own transaction, once
// however often it is retried, in the order the steps ran.
// Published, each follows its type's schema.
func TestEverySagaStepWritesItsEventOnceInOrder(t *testing.T) {
	s := newSaga(t)
	region := "saga-" + uuid.NewString()[:8]
	sku := testkit.Product(t, s.pool, 250, 10)
	id, lines := s.create(region, sku, 2)
	s.twice(s.inv.Reserve, catalog.ReserveInput{OrderID: id, Lines: lines})
	s.twice(s.pay.Charge, payment.ChargeInput{OrderID: id, Token: payment.TokenVisa, AmountCents: 500, Currency: "USD"})
	s.twice(s.ord.Confirm, orderflow.OrderRef{OrderID: id})
	s.twice(s.pay.Refund, orderflow.OrderRef{OrderID: id})

	got := outbox(t, s.pool, id)
	assert.Equal(t, []string{events.OrderCreated, events.InventoryUpdated, events.PaymentProcessed, events.InventoryUpdated,
		events.OrderConfirmed, events.PaymentRefunded}, types(got))
	var created struct {
		TotalCents int64            `json:"total_cents"`
		Items      []orderflow.Line `json:"items"`
	}
	require.NoError(t, json.Unmarshal(got[0].Payload, &created))
	assert.Equal(t, int64(500), created.TotalCents)
	assert.Equal(t, []orderflow.Line{{SKU: sku, Quantity: 2, UnitPriceCents: 250}}, created.Items)
	var reserve, commit struct {
		Reason        string `json:"reason"`
		DeltaOnHand   int    `json:"delta_on_hand"`
		DeltaReserved int    `json:"delta_reserved"`
	}
	require.NoError(t, json.Unmarshal(got[1].Payload, &reserve))
	require.NoError(t, json.Unmarshal(got[3].Payload, &commit))
	assert.Equal(t, "reserve", reserve.Reason)
	assert.Equal(t, [2]int{0, 2}, [2]int{reserve.DeltaOnHand, reserve.DeltaReserved})
	assert.Equal(t, [2]int{-2, -2}, [2]int{commit.DeltaOnHand, commit.DeltaReserved})

	failed, _ := s.create(region, sku, 1)
	s.twice(s.ord.SetStatus, orders.SetStatusInput{OrderID: failed, Status: orderflow.StatusFailed, FailureReason: "out_of_stock"})
	s.twice(s.ord.SetStatus, orders.SetStatusInput{OrderID: failed, Status: orderflow.StatusCancelled})
	assert.Equal(t, []string{events.OrderCreated, events.OrderFailed, events.OrderCancelled}, types(outbox(t, s.pool, failed)))

	e := newRelayEnv(t)
	e.region = region
	e.relay()
	e.waitPublished()
	schemas := compileSchemas(t)
	envs, raw := e.received()
	assert.Len(t, envs, 9)
	for _, body := range raw {
		validate(t, schemas, body)
	}
}

// Authorized, then captured shipment by shipment: the authorization and the
// void of its remainder move no money and write no event; each capture is a
// payment.processed of the captured amount, once however often retried.
func TestEachCaptureIsAPaymentProcessedEvent(t *testing.T) {
	s := newSaga(t)
	sku := testkit.Product(t, s.pool, 250, 10)
	id, lines := s.create("saga-"+uuid.NewString()[:8], sku, 2)
	s.twice(s.inv.Reserve, catalog.ReserveInput{OrderID: id, Lines: lines})
	s.twice(s.pay.Authorize, payment.AuthorizeInput{ChargeInput: payment.ChargeInput{OrderID: id, Token: payment.TokenVisa,
		AmountCents: 500, Currency: "USD"}})
	s.twice(s.pay.Capture, payment.CaptureInput{OrderID: id, ShipmentID: "s-1", AmountCents: 200})
	s.twice(s.pay.Capture, payment.CaptureInput{OrderID: id, ShipmentID: "s-2", AmountCents: 250, Final: true})

	got := outbox(t, s.pool, id)
	assert.Equal(t, []string{events.OrderCreated, events.InventoryUpdated, events.PaymentProcessed, events.PaymentProcessed}, types(got))
	var amounts []int64
	for _, r := range got[2:] {
		var p struct {
			AmountCents int64 `json:"amount_cents"`
		}
		require.NoError(t, json.Unmarshal(r.Payload, &p))
		amounts = append(amounts, p.AmountCents)
	}
	assert.Equal(t, []int64{200, 250}, amounts)
}

// A rolled-back change leaves no event: the event is part of its transaction.
func TestAnEventIsWrittenOnlyWithItsTransaction(t *testing.T) {
	pool := testkit.DB(t)
	id := newOrder(t, pool, "test")
	boom := fmt.Errorf("rolled back")
	err := db.InTx(context.Background(), pool, func(tx pgx.Tx) error {
		if err := orders.RecordStatus(context.Background(), tx, id, orderflow.StatusConfirmed, ""); err != nil {
			return err
		}
		return boom
	})
	require.ErrorIs(t, err, boom)
	assert.Empty(t, outbox(t, pool, id))
}

func TestEnqueueWritesOneEventPerKeyAndRefusesWhatNoStreamHolds(t *testing.T) {
	pool := testkit.DB(t)
	ctx := context.Background()
	id := newOrder(t, pool, "test")
	shipped := func(shipment string) events.Event {
		return events.Event{Type: events.OrderShipped, OrderID: id, Key: "order.shipped:" + id + "/" + shipment,
			Data: map[string]any{"order_id": id, "shipment_id": shipment, "carrier": "sim", "tracking_number": "T1"}}
	}
	for range 2 {
		require.NoError(t, db.InTx(ctx, pool, func(tx pgx.Tx) error {
			for _, ev := range []events.Event{shipped("s1"), shipped("s2"),
				{Type: events.OrderDelivered, OrderID: id, Data: map[string]any{"order_id": id}}} {
				if err := events.Enqueue(ctx, tx, ev); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	assert.Equal(t, []string{events.OrderShipped, events.OrderShipped, events.OrderDelivered}, types(outbox(t, pool, id)))

	for name, ev := range map[string]events.Event{
		"an unknown type":    {Type: "order.teleported", OrderID: id, Data: map[string]any{}},
		"no key or order":    {Type: events.AnalyticsEvents, Data: map[string]any{"name": "x"}},
		"data not an object": {Type: events.OrderDelivered, OrderID: id, Data: []int{1}},
	} {
		err := db.InTx(ctx, pool, func(tx pgx.Tx) error { return events.Enqueue(ctx, tx, ev) })
		assert.ErrorIs(t, err, events.ErrInvalid, name)
	}
}

// newOrder writes a bare order row of region (the outbox reads its region
// and acceptance time) and returns its id.
func newOrder(t *testing.T, pool *pgxpool.Pool, region string) string {
	t.Helper()
	id := uuid.NewString()
	_, err := pool.Exec(context.Background(), `INSERT INTO orders (order_id, customer_id, region, status, total_cents, currency)
		VALUES ($1, 'c-events', $2, 'PENDING', 1000, 'USD')`, id, region)
	require.NoError(t, err)
	return id
}

// compileSchemas loads every committed event schema, keyed by type.
func compileSchemas(t *testing.T) map[string]*jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	files, err := fs.Glob(events.Schemas, "schemas/*.v1.json")
	require.NoError(t, err)
	out := map[string]*jsonschema.Schema{}
	for _, f := range files {
		raw, err := events.Schemas.ReadFile(f)
		require.NoError(t, err)
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		require.NoError(t, err)
		require.NoError(t, c.AddResource(f, doc))
		s, err := c.Compile(f)
		require.NoError(t, err, f)
		out[strings.TrimSuffix(strings.TrimPrefix(f, "schemas/"), ".v1.json")] = s
	}
	for _, st := range events.Streams {
		for _, typ := range st.Subjects {
			require.Contains(t, out, typ, "every event type has a schema")
		}
	}
	return out
}

// validate checks a published envelope against its type's schema.
func validate(t *testing.T, schemas map[string]*jsonschema.Schema, data []byte) {
	t.Helper()
	var env events.Envelope
	require.NoError(t, json.Unmarshal(data, &env))
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	require.NoError(t, err)
	require.NotNil(t, schemas[env.Type], env.Type)
	assert.NoError(t, schemas[env.Type].Validate(doc), "%s: %s", env.Type, data)
}
