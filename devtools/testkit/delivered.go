package testkit

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/catalog"
	"github.com/orderflow/orderflow/activities/fulfillment"
	"github.com/orderflow/orderflow/activities/orders"
)

// DeliveredOrder takes an order of items for customer through the saga's
// activities, as its saga would (created, stock reserved, fulfilment
// started, every shipment delivered), in env, and returns its id.
func DeliveredOrder(t *testing.T, env *testsuite.TestActivityEnvironment, pool *pgxpool.Pool, rc *redis.Client,
	customer string, items ...orderflow.Item) string {
	t.Helper()
	ord := &orders.Activities{DB: pool, Cache: rc, PII: PII(t)}
	inv := &catalog.Inventory{DB: pool, Cache: rc, SetStatus: orders.RecordStatus}
	ful := &fulfillment.Activities{DB: pool, Cache: rc}
	env.RegisterActivity(ord)
	env.RegisterActivity(inv)
	env.RegisterActivity(ful)
	id := uuid.NewString()
	run := func(fn, arg, out any) {
		v, err := env.ExecuteActivity(fn, arg)
		require.NoError(t, err)
		if out != nil {
			require.NoError(t, v.Get(out))
		}
	}
	var created orders.CreateOrderResult
	run(ord.Create, orders.CreateOrderInput{OrderID: id, CustomerID: customer, Email: "a@b.co", Region: "test", Items: items}, &created)
	run(inv.Reserve, catalog.ReserveInput{OrderID: id, Lines: created.Lines}, nil)
	var started fulfillment.StartResult
	run(ful.StartFulfillment, fulfillment.StartInput{OrderID: id, Lines: created.Lines}, &started)
	for _, s := range started.Shipments {
		run(ful.AdvanceShipment, fulfillment.AdvanceInput{OrderID: id, ShipmentID: s.ShipmentID, Type: fulfillment.ShipmentDelivered, At: time.Now()}, nil)
	}
	return id
}
