package activities_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/catalog"
	"github.com/orderflow/orderflow/activities/orders"
	"github.com/orderflow/orderflow/devtools/testkit"
)

func TestCatalogPutCreatesUpdatesAndRefusesStockBelowWhatIsReserved(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	store := catalog.Store{DB: f.pool}
	sku := "T-" + uuid.NewString()[:13]

	created, reserved, err := store.Put(ctx, catalog.Product{SKU: sku, Name: "first", PriceCents: 500, Currency: "USD"}, 4)
	require.NoError(t, err)
	assert.True(t, created)
	assert.Zero(t, reserved)

	created, _, err = store.Put(ctx, catalog.Product{SKU: sku, Name: "second", PriceCents: 650, Currency: "USD"}, 6)
	require.NoError(t, err)
	assert.False(t, created, "a second put updates")
	got, err := store.Products(ctx, []string{sku, "NOPE-" + uuid.NewString()[:6]})
	require.NoError(t, err)
	assert.Equal(t, map[string]catalog.Product{sku: {SKU: sku, Name: "second", PriceCents: 650, Currency: "USD"}}, got)

	id, lines := f.order(orderflow.Item{SKU: sku, Quantity: 3})
	require.NoError(t, f.run(f.inv.Reserve, catalog.ReserveInput{OrderID: id, Lines: lines}))
	_, _, err = store.Put(ctx, catalog.Product{SKU: sku, Name: "third", PriceCents: 650, Currency: "USD"}, 2)
	var refused *catalog.ReservedError
	require.True(t, errors.As(err, &refused), "got %v", err)
	assert.Equal(t, catalog.ReservedError{OnHand: 2, Reserved: 3}, *refused)
	st, found, err := store.Stock(ctx, sku)
	require.NoError(t, err)
	assert.True(t, found)
	assert.Equal(t, catalog.Stock{OnHand: 6, Reserved: 3}, st, "a refused put changes nothing")

	_, reserved, err = store.Put(ctx, catalog.Product{SKU: sku, Name: "third", PriceCents: 650, Currency: "USD"}, 3)
	require.NoError(t, err)
	assert.Equal(t, 3, reserved)
	onHand, held, violated := testkit.ReplayEvents(t, f.pool, sku)
	assert.NoError(t, violated)
	assert.Equal(t, [2]int{3, 3}, [2]int{onHand, held}, "the restock events replay to the row")
}

func TestPriceRefusesWhicheverProblemTheItemsNameFirst(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	store := catalog.Store{DB: f.pool}
	usd := testkit.Product(t, f.pool, 100, 5)
	eur := "T-" + uuid.NewString()[:13]
	_, _, err := store.Put(ctx, catalog.Product{SKU: eur, Name: "euro", PriceCents: 100, Currency: "EUR"}, 5)
	require.NoError(t, err)
	unknown := "NOPE-" + uuid.NewString()[:6]

	for _, c := range []struct {
		name  string
		items []orderflow.Item
		want  string
	}{
		{"mixed currencies before an unknown sku", []orderflow.Item{{SKU: usd, Quantity: 1}, {SKU: eur, Quantity: 1}, {SKU: unknown, Quantity: 1}}, "order mixes currencies"},
		{"an unknown sku before mixed currencies", []orderflow.Item{{SKU: usd, Quantity: 1}, {SKU: unknown, Quantity: 1}, {SKU: eur, Quantity: 1}}, "unknown sku " + unknown},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := f.run(f.ord.Create, orders.CreateOrderInput{OrderID: uuid.NewString(), CustomerID: "c", Email: "a@b.co", Region: "test", Items: c.items})
			assert.Equal(t, orderflow.InvalidOrder, appType(err))
			assert.ErrorContains(t, err, c.want)
		})
	}
}

func TestOrdersStoreClaimsAKeyOnceAndTakesOverAnExpiredOne(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	store := orders.Store{DB: f.pool}
	customer, key := "c-"+uuid.NewString()[:8], uuid.NewString()
	first := orders.Acceptance{OrderID: uuid.NewString(), RequestHash: []byte("one"), Status: 202, Body: []byte(`{"n":1}`)}
	claimed, err := store.ClaimKey(ctx, customer, "op", key, first, time.Hour)
	require.NoError(t, err)
	assert.True(t, claimed)

	claimed, err = store.ClaimKey(ctx, customer, "op", key, orders.Acceptance{OrderID: uuid.NewString(), RequestHash: []byte("two"),
		Status: 202, Body: []byte(`{"n":2}`)}, time.Hour)
	require.NoError(t, err)
	assert.False(t, claimed, "a held key is not claimed again")
	got, err := store.LoadKey(ctx, customer, "op", key)
	require.NoError(t, err)
	sameAcceptance(t, first, got, "the first claim stays, its order not yet written")

	claimed, err = store.ClaimKey(ctx, customer, "other-op", key, first, time.Hour)
	require.NoError(t, err)
	assert.True(t, claimed, "keys are scoped by operation")

	_, err = f.pool.Exec(ctx, `UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE customer_id = $1`, customer)
	require.NoError(t, err)
	next := orders.Acceptance{OrderID: uuid.NewString(), RequestHash: []byte("three"), Status: 202, Body: []byte(`{"n":3}`)}
	claimed, err = store.ClaimKey(ctx, customer, "op", key, next, time.Hour)
	require.NoError(t, err)
	assert.True(t, claimed, "an expired key is taken over")
	got, err = store.LoadKey(ctx, customer, "op", key)
	require.NoError(t, err)
	sameAcceptance(t, next, got, "the expired key holds the new claim")
}

// sameAcceptance compares acceptance records; the body is jsonb, which
// keeps the JSON's meaning, not its spacing.
func sameAcceptance(t *testing.T, want, got orders.Acceptance, msg string) {
	t.Helper()
	assert.JSONEq(t, string(want.Body), string(got.Body), msg)
	want.Body, got.Body = nil, nil
	assert.Equal(t, want, got, msg)
}

func TestOrdersStoreReadsAnOrderWithItsLinesAndHistory(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	store := orders.Store{DB: f.pool}
	sku := testkit.Product(t, f.pool, 300, 5)
	id, lines := f.order(orderflow.Item{SKU: sku, Quantity: 2}, orderflow.Item{SKU: sku, Quantity: 1})
	require.NoError(t, f.run(f.inv.Reserve, catalog.ReserveInput{OrderID: id, Lines: lines}))

	o, err := store.Order(ctx, id)
	require.NoError(t, err)
	require.NotNil(t, o)
	assert.Equal(t, "c-act", o.CustomerID)
	assert.Equal(t, orderflow.StatusReserved, o.Status)
	assert.Equal(t, int64(900), o.TotalCents)
	assert.Equal(t, lines, o.Lines)
	require.Len(t, o.History, 2)
	assert.Equal(t, []string{orderflow.StatusPending, orderflow.StatusReserved}, []string{o.History[0].Status, o.History[1].Status})

	none, err := store.Order(ctx, uuid.NewString())
	require.NoError(t, err)
	assert.Nil(t, none, "an order not yet written is nil without an error")
}

func TestErasePIIScrubsTheCustomersOrdersOnceAndKeepsThem(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	store := orders.Store{DB: f.pool}
	sku := testkit.Product(t, f.pool, 300, 5)
	customer := "c-" + uuid.NewString()[:8]
	for range 2 {
		_, err := f.env.ExecuteActivity(f.ord.Create, orders.CreateOrderInput{OrderID: uuid.NewString(), CustomerID: customer, Email: "a@b.co",
			Region: "test", Items: []orderflow.Item{{SKU: sku, Quantity: 1}}})
		require.NoError(t, err)
	}
	e, err := store.ErasePII(ctx, customer)
	require.NoError(t, err)
	assert.Equal(t, orders.Erasure{OrdersScrubbed: 2, OrdersRetained: 2}, e)
	e, err = store.ErasePII(ctx, customer)
	require.NoError(t, err)
	assert.Equal(t, orders.Erasure{OrdersRetained: 2}, e, "a repeat scrubs nothing")
	e, err = store.ErasePII(ctx, "c-"+uuid.NewString()[:8])
	require.NoError(t, err)
	assert.Equal(t, orders.Erasure{}, e)
}
