package orders_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/orders"
	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/pii"
)

// insertOrder writes an order row as the saga would, at a chosen time.
func insertOrder(t *testing.T, pool *pgxpool.Pool, customer, status string, at time.Time, synthetic bool) string {
	t.Helper()
	id := uuid.NewString()
	_, err := pool.Exec(context.Background(), `INSERT INTO orders (order_id, customer_id, region, status, total_cents, currency, created_at, updated_at, synthetic)
		VALUES ($1, $2, 'test', $3, 100, 'USD', $4, $4, $5)`, id, customer, status, at, synthetic)
	require.NoError(t, err)
	return id
}

func ids(list []orders.Summary) []string {
	out := make([]string, len(list))
	for i, o := range list {
		out[i] = o.OrderID
	}
	return out
}

// pages reads the whole history a page of limit at a time.
func pages(t *testing.T, store orders.Store, q orders.HistoryQuery) (all []string, n int) {
	t.Helper()
	for {
		page, err := store.History(context.Background(), q)
		require.NoError(t, err)
		require.LessOrEqual(t, len(page.Orders), q.Limit)
		all, n = append(all, ids(page.Orders)...), n+1
		if page.Next == nil {
			return all, n
		}
		q.After = page.Next
	}
}

func TestHistoryIsNewestFirstPagedWithoutGapsOrRepeatsAndFiltered(t *testing.T) {
	pool := testkit.DB(t)
	store := orders.Store{DB: pool}
	customer := "c-hist-" + uuid.NewString()[:8]
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	// Three orders share one instant: the id breaks the tie, so a page
	// boundary among them loses and repeats nothing.
	var want []string // newest first
	for i, at := range []time.Time{base.Add(3 * time.Hour), base.Add(time.Hour), base.Add(time.Hour), base.Add(time.Hour), base} {
		status := orderflow.StatusConfirmed
		if i%2 == 1 {
			status = orderflow.StatusFailed
		}
		want = append(want, insertOrder(t, pool, customer, status, at, false))
	}
	// Ties are ordered by id, descending.
	slices.Sort(want[1:4])
	slices.Reverse(want[1:4])
	var failed []string
	for _, id := range want {
		var status string
		require.NoError(t, pool.QueryRow(context.Background(), `SELECT status FROM orders WHERE order_id = $1`, id).Scan(&status))
		if status == orderflow.StatusFailed {
			failed = append(failed, id)
		}
	}
	insertOrder(t, pool, customer, orderflow.StatusConfirmed, base.Add(time.Minute), true) // synthetic: never listed
	insertOrder(t, pool, "c-other-"+uuid.NewString()[:8], orderflow.StatusConfirmed, base.Add(time.Hour), false)

	for _, limit := range []int{1, 2, 3, 5, 100} {
		got, n := pages(t, store, orders.HistoryQuery{CustomerID: customer, Limit: limit})
		assert.Equal(t, want, got, "pages of %d", limit)
		assert.Equal(t, (len(want)+limit-1)/limit, n, "pages of %d: the last full page says no more follow", limit)
	}
	got, _ := pages(t, store, orders.HistoryQuery{CustomerID: customer, Status: orderflow.StatusFailed, Limit: 1})
	assert.Equal(t, failed, got)
	got, _ = pages(t, store, orders.HistoryQuery{CustomerID: customer, Status: orderflow.StatusCancelled, Limit: 10})
	assert.Empty(t, got)

	page, err := store.History(context.Background(), orders.HistoryQuery{CustomerID: customer, Limit: 1})
	require.NoError(t, err)
	o := page.Orders[0]
	assert.Equal(t, orders.Summary{OrderID: want[0], CustomerID: customer, Status: orderflow.StatusConfirmed, TotalCents: 100, Currency: "USD",
		CreatedAt: base.Add(3 * time.Hour), UpdatedAt: base.Add(3 * time.Hour)}, orders.Summary{OrderID: o.OrderID, CustomerID: o.CustomerID,
		Status: o.Status, TotalCents: o.TotalCents, Currency: o.Currency, CreatedAt: o.CreatedAt.UTC(), UpdatedAt: o.UpdatedAt.UTC()})

	_, err = store.History(context.Background(), orders.HistoryQuery{CustomerID: customer})
	assert.Error(t, err, "a page of no orders is the caller's mistake")
}

// plan is PostgreSQL's plan for sql with args, with sequential scans off:
// what it reads then shows whether an index can answer the statement.
func plan(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pool.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, `SET LOCAL enable_seqscan = off`)
	require.NoError(t, err)
	rows, err := tx.Query(ctx, "EXPLAIN "+sql, args...)
	require.NoError(t, err)
	var lines []string
	for rows.Next() {
		var l string
		require.NoError(t, rows.Scan(&l))
		lines = append(lines, l)
	}
	require.NoError(t, rows.Err())
	return strings.Join(lines, "\n")
}

// Both history indexes give a customer's orders newest first. Which one the
// planner takes for a status filter depends on the statistics of the
// shared test database (a customer with few orders: the plain one, with a
// filter), so the claim is the one that matters at any size: an index of
// the customer's history is walked and nothing is sorted.
func TestHistoryWalksItsIndexWithoutSorting(t *testing.T) {
	pool := testkit.DB(t)
	far := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		sql     string
		indexes []string
		args    []any
	}{
		{orders.QHistory, []string{"orders_customer_history"}, []any{"c-1", far, uuid.NewString(), 21}},
		{orders.QHistoryStatus, []string{"orders_customer_status_history", "orders_customer_history"},
			[]any{"c-1", far, uuid.NewString(), 21, orderflow.StatusFailed}},
	} {
		p := plan(t, pool, tc.sql, tc.args...)
		walked := false
		for _, index := range tc.indexes {
			walked = walked || strings.Contains(p, "Index Scan using "+index+" ")
		}
		assert.True(t, walked, "an index of the customer's history (%v) is walked: %s", tc.indexes, p)
		assert.NotContains(t, p, "Sort", "the index gives the order: %s", p)
	}
}

func keyring(t *testing.T, spec, active string) *pii.Keyring {
	t.Helper()
	k, err := pii.Load(pii.Config{Keys: spec, ActiveKey: active})
	require.NoError(t, err)
	return k
}

// create runs the Create activity with keys for an order shipping to a.
func create(t *testing.T, pool *pgxpool.Pool, keys *pii.Keyring, region, customer string, a *orderflow.Address) string {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	act := &orders.Activities{DB: pool, PII: keys}
	env.RegisterActivity(act)
	id := uuid.NewString()
	_, err := env.ExecuteActivity(act.Create, orders.CreateOrderInput{OrderID: id, CustomerID: customer, Email: "ship@example.com",
		Region: region, Items: []orderflow.Item{{SKU: testkit.Product(t, pool, 100, 5), Quantity: 1}}, ShippingAddress: a})
	require.NoError(t, err)
	return id
}

func sealedAddress(t *testing.T, pool *pgxpool.Pool, id string) []byte {
	t.Helper()
	var b []byte
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT shipping_address_enc FROM orders WHERE order_id = $1`, id).Scan(&b))
	return b
}

func TestTheShippingAddressIsSealedReadBackAndErased(t *testing.T) {
	pool := testkit.DB(t)
	ctx := context.Background()
	keys := testkit.PII(t)
	customer := "c-ship-" + uuid.NewString()[:8]
	a := &orderflow.Address{Name: "Grace Hopper", Line1: "1 Navy Yard", Line2: "Bldg 7", City: "Arlington", PostalCode: "22202",
		State: "VA", Country: "US"}
	id := create(t, pool, keys, "test", customer, a)
	none := create(t, pool, keys, "test", customer, nil)

	sealed := sealedAddress(t, pool, id)
	require.NotEmpty(t, sealed)
	assert.NotContains(t, string(sealed), "Navy Yard", "stored as ciphertext")
	got, err := orders.ShippingAddress(ctx, pool, keys, id)
	require.NoError(t, err)
	assert.Equal(t, a, got)
	got, err = orders.ShippingAddress(ctx, pool, keys, none)
	require.NoError(t, err)
	assert.Nil(t, got, "an order placed without an address has none")
	_, err = orders.ShippingAddress(ctx, pool, keys, uuid.NewString())
	assert.ErrorIs(t, err, orders.ErrNoOrder)

	// Bound to its order: copied onto another order's row it does not open.
	_, err = pool.Exec(ctx, `UPDATE orders SET shipping_address_enc = $2 WHERE order_id = $1`, none, sealed)
	require.NoError(t, err)
	_, err = orders.ShippingAddress(ctx, pool, keys, none)
	assert.ErrorIs(t, err, pii.ErrTampered)

	e, err := orders.Store{DB: pool}.ErasePII(ctx, customer)
	require.NoError(t, err)
	assert.Equal(t, int64(2), e.OrdersScrubbed)
	for _, o := range []string{id, none} {
		assert.Nil(t, sealedAddress(t, pool, o), "erased")
		got, err := orders.ShippingAddress(ctx, pool, keys, o)
		require.NoError(t, err)
		assert.Nil(t, got)
	}
}

func TestEncryptPIIReSealsShippingAddressesUnderTheActiveKey(t *testing.T) {
	pool := testkit.DB(t)
	ctx := context.Background()
	region := "ship-" + uuid.NewString()[:8]
	k1, k2 := "k1:"+pii.NewKey(), "k2:"+pii.NewKey()
	before, rotated, after := keyring(t, k1, ""), keyring(t, k1+","+k2, "k2"), keyring(t, k2, "")
	a := &orderflow.Address{Name: "Ada", Line1: "1 Main St", City: "London", PostalCode: "N1 9GU", Country: "GB"}
	id := create(t, pool, before, region, "c-rot", a)
	// An erased e-mail with an address still sealed under k1 is re-sealed too.
	erasedEmail := create(t, pool, before, region, "c-rot", a)
	_, err := pool.Exec(ctx, `UPDATE orders SET email_enc = NULL WHERE order_id = $1`, erasedEmail)
	require.NoError(t, err)

	n, err := orders.EncryptPII(ctx, pool, after, region)
	require.NoError(t, err)
	assert.Equal(t, 2, n.Unreadable, "without k1 the addresses cannot be opened, and are left")
	assert.ErrorIs(t, n.UnreadableErr, pii.ErrUnknownKey)

	n, err = orders.EncryptPII(ctx, pool, rotated, region)
	require.NoError(t, err)
	assert.Equal(t, orders.Reencrypted{Orders: 2}, n)
	for _, o := range []string{id, erasedEmail} {
		kid, err := pii.KeyID(sealedAddress(t, pool, o))
		require.NoError(t, err)
		assert.Equal(t, "k2", kid)
		got, err := orders.ShippingAddress(ctx, pool, after, o)
		require.NoError(t, err)
		assert.Equal(t, a, got, "opens with k2 alone")
	}
	var email []byte
	require.NoError(t, pool.QueryRow(ctx, `SELECT email_enc FROM orders WHERE order_id = $1`, erasedEmail).Scan(&email))
	assert.Nil(t, email, "an erased e-mail stays erased")

	n, err = orders.EncryptPII(ctx, pool, rotated, region)
	require.NoError(t, err)
	assert.Zero(t, n, "nothing left to re-seal")
}
