package chaos

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow/devtools/paysim"
	"github.com/orderflow/orderflow/devtools/testkit"
)

// testkitPool is a database with paysim's ledger beside orderflow's
// tables, where a test writes orders, shipments and ledger rows as the
// stack would, then plants one kind of drift.
type testkitPool struct {
	t    *testing.T
	pool *pgxpool.Pool
}

func newCaptureDB(t *testing.T) *testkitPool {
	t.Helper()
	pool := testkit.FreshDB(t, "chaos_captures")
	require.NoError(t, paysim.Migrate(context.Background(), pool))
	return &testkitPool{t: t, pool: pool}
}

// order writes an order of total and returns its id.
func (w *testkitPool) order(total int64) string {
	id := uuid.NewString()
	_, err := w.pool.Exec(context.Background(), `INSERT INTO orders (order_id, customer_id, email, region, status, total_cents, currency)
		VALUES ($1, 'c-1', 'a@b.c', 'local', 'DELIVERED', $2, 'EUR')`, id, total)
	require.NoError(w.t, err)
	return id
}

// shipment writes a shipment of the order worth value; left says whether
// it left its warehouse.
func (w *testkitPool) shipment(orderID string, warehouse string, value int64, left bool) string {
	id := uuid.NewString()
	status := "allocated"
	if left {
		status = "picked_up"
	}
	if warehouse != "main" {
		_, err := w.pool.Exec(context.Background(), `INSERT INTO warehouses (warehouse, name, priority) VALUES ($1, $1, 1) ON CONFLICT DO NOTHING`, warehouse)
		require.NoError(w.t, err)
	}
	_, err := w.pool.Exec(context.Background(), `INSERT INTO shipments (shipment_id, order_id, warehouse, status, value_cents, left_at)
		VALUES ($1, $2, $3, $4, $5, CASE WHEN $6 THEN now() END)`, id, orderID, warehouse, status, value, left)
	require.NoError(w.t, err)
	return id
}

// ledger writes a paysim ledger row: kind authorization under key
// auth-<order>, or capture under capture-<order>-<shipment> of the
// authorization ref.
func (w *testkitPool) ledger(kind, key, ref, chargeRef string, amount int64) {
	_, err := w.pool.Exec(context.Background(), `INSERT INTO paysim.ledger (instance, idempotency_key, kind, ref, charge_ref, amount_cents, currency)
		VALUES ('paysim-a', $1, $2, $3, nullif($4, ''), $5, 'EUR')`, key, kind, ref, chargeRef, amount)
	require.NoError(w.t, err)
}

// shipped writes an order of two shipments worth 1500 each, authorized for
// 3000, the first captured as it left: the state a saga leaves, whole.
func (w *testkitPool) shipped() (orderID, left, waiting string) {
	orderID = w.order(3000)
	left, waiting = w.shipment(orderID, "main", 1500, true), w.shipment(orderID, "east", 1500, false)
	w.ledger("authorization", "auth-"+orderID, "au_"+orderID, "", 3000)
	w.ledger("capture", "capture-"+orderID+"-"+left, "cap_"+left, "au_"+orderID, 1500)
	return orderID, left, waiting
}

func TestCaptureInvariants_HoldForASagasStateAndFindEachKindOfDrift(t *testing.T) {
	w := newCaptureDB(t)
	ctx := context.Background()
	check := func(ids ...string) (within, shipped Invariant) {
		t.Helper()
		var err error
		within, err = checkCapturesWithinAuthorizations(ctx, w.pool, w.pool, ids)
		require.NoError(t, err)
		shipped, err = checkNoCaptureWithoutShipment(ctx, w.pool, w.pool, ids)
		require.NoError(t, err)
		return within, shipped
	}

	clean, _, _ := w.shipped()
	unfulfilled := w.order(2000)
	w.ledger("authorization", "auth-"+unfulfilled, "au_"+unfulfilled, "", 2000)
	w.ledger("capture", "capture-"+unfulfilled+"-", "cap_"+unfulfilled, "au_"+unfulfilled, 2000)
	within, shipped := check(clean, unfulfilled)
	assert.True(t, within.Passed, "%v", within.Counterexamples)
	assert.Equal(t, 4, within.Checked, "two authorizations, two orders")
	assert.True(t, shipped.Passed, "%v", shipped.Counterexamples)
	assert.Equal(t, 2, shipped.Checked)

	t.Run("a capture beyond its authorization", func(t *testing.T) {
		o, _, waiting := w.shipped()
		w.ledger("capture", "capture-"+o+"-"+waiting, "cap_"+waiting, "au_"+o, 1600) // and it never left
		within, shipped := check(o)
		require.False(t, within.Passed)
		assert.Len(t, within.Counterexamples, 2, "the authorization (3100 of 3000) and the order (3100 of its 3000)")
		assert.Contains(t, within.Counterexamples[0], "captured 3100 of an authorization of 3000")
		require.False(t, shipped.Passed)
		assert.Contains(t, shipped.Counterexamples[0], "never left its warehouse")
	})
	t.Run("renewals captured beyond the order's total", func(t *testing.T) {
		o, left, waiting := w.shipped()
		w.ledger("authorization", "auth-"+o+"-2", "au2_"+o, "", 3000)
		w.ledger("capture", "capture-"+o+"-"+left+"x", "cap2_"+left, "au2_"+o, 1500)
		_, err := w.pool.Exec(ctx, `UPDATE shipments SET left_at = now(), status = 'picked_up' WHERE shipment_id = $1`, waiting)
		require.NoError(t, err)
		w.ledger("capture", "capture-"+o+"-"+waiting, "cap2_"+waiting, "au2_"+o, 1500)
		within, shipped := check(o)
		require.False(t, within.Passed)
		assert.Equal(t, []string{"order " + o + ": captured 4500 of a total of 3000"}, within.Counterexamples,
			"each authorization within itself, the order not")
		require.False(t, shipped.Passed)
		assert.Equal(t, []string{"capture-" + o + "-" + left + "x: names no shipment of its order"}, shipped.Counterexamples)
	})
	t.Run("a capture for more than its shipment's value", func(t *testing.T) {
		o := w.order(3000)
		s := w.shipment(o, "main", 1000, true)
		w.ledger("authorization", "auth-"+o, "au_"+o, "", 3000)
		w.ledger("capture", "capture-"+o+"-"+s, "cap_"+s, "au_"+o, 1200)
		within, shipped := check(o)
		assert.True(t, within.Passed, "%v", within.Counterexamples)
		require.False(t, shipped.Passed)
		assert.Equal(t, []string{"capture-" + o + "-" + s + ": captured 1200 for a shipment worth 1000"}, shipped.Counterexamples)
	})
	t.Run("another order's shipment", func(t *testing.T) {
		o, _, _ := w.shipped()
		other, otherLeft, _ := w.shipped()
		w.ledger("capture", "capture-"+o+"-"+otherLeft, "cap_x"+otherLeft, "au_"+o, 100)
		_, shipped := check(o, other)
		require.False(t, shipped.Passed)
		assert.Equal(t, []string{"capture-" + o + "-" + otherLeft + ": names no shipment of its order"}, shipped.Counterexamples)
	})
}
