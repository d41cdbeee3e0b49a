package chaos

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// charge writes a paysim ledger row of kind for the order (its description
// names it, as orderflow writes it) and returns its ref.
func (w *testkitPool) charge(orderID, kind string, amount int64) string {
	ref := "ch_" + uuid.NewString()
	_, err := w.pool.Exec(context.Background(), `INSERT INTO paysim.ledger (instance, idempotency_key, kind, ref, amount_cents, currency, description)
		VALUES ('paysim-a', $1, $2, $3, $4, 'EUR', 'order ' || $5)`, uuid.NewString(), kind, ref, amount, orderID)
	require.NoError(w.t, err)
	return ref
}

// release writes a refund or void of the charge ref.
func (w *testkitPool) release(ref, kind string, amount int64) {
	w.ledger(kind, uuid.NewString(), kind+"_"+uuid.NewString(), ref, amount)
}

// record writes orderflow's payment row of the order for the charge ref.
func (w *testkitPool) record(orderID, ref, status string, amount int64) {
	_, err := w.pool.Exec(context.Background(), `INSERT INTO payments (idempotency_key, order_id, provider, charge_id, amount_cents, currency, status)
		VALUES ($1, $2, 'paysim-a', $3, $4, 'EUR', $5)`, uuid.NewString(), orderID, ref, amount, status)
	require.NoError(w.t, err)
}

// status sets an order's status.
func (w *testkitPool) status(orderID, status string) {
	_, err := w.pool.Exec(context.Background(), `UPDATE orders SET status = $2 WHERE order_id = $1`, orderID, status)
	require.NoError(w.t, err)
}

// pending writes paysim's 3-D Secure step of the order's charge ref, in
// step status.
func (w *testkitPool) pending(orderID, ref, step string, amount int64) {
	_, err := w.pool.Exec(context.Background(), `INSERT INTO paysim.pending (instance, idempotency_key, ref, token, amount_cents, currency, description, status)
		VALUES ('paysim-a', $1, $2, 'tok_threeDSecure2Required', $3, 'EUR', 'order ' || $4, $5)`, uuid.NewString(), ref, amount, orderID, step)
	require.NoError(w.t, err)
}

func TestNoChargeWithoutOrder_FindsAChargeNeitherRecordedNorReleased(t *testing.T) {
	w := newCaptureDB(t)
	ctx := context.Background()
	paid := w.order(1000)
	w.record(paid, w.charge(paid, "authorization", 1000), "authorized", 1000)
	cancelled := w.order(800)
	w.status(cancelled, "CANCELLED")
	w.release(w.charge(cancelled, "charge", 800), "refund", 800)      // a late success, refunded
	w.release(w.charge(cancelled, "authorization", 800), "void", 800) // voided
	inv, err := checkNoChargeWithoutOrder(ctx, w.pool, []string{paid, cancelled})
	require.NoError(t, err)
	assert.True(t, inv.Passed, "%v", inv.Counterexamples)
	assert.Equal(t, 3, inv.Checked)

	// The drift: a charge the provider made that orderflow never recorded
	// nor gave back; and one recorded for another order.
	lost := w.charge(cancelled, "charge", 800)
	other := w.order(500)
	elsewhere := w.charge(other, "charge", 500)
	w.record(paid, elsewhere, "refunded", 500)
	inv, err = checkNoChargeWithoutOrder(ctx, w.pool, []string{paid, cancelled, other})
	require.NoError(t, err)
	require.False(t, inv.Passed)
	assert.Len(t, inv.Counterexamples, 2)
	assert.Contains(t, inv.Counterexamples[0]+inv.Counterexamples[1], lost)
	assert.Contains(t, inv.Counterexamples[0]+inv.Counterexamples[1], elsewhere)
}

func TestDisputesRecordedOnce_FindsAMissingDisputeAndAnOrderNotDisputed(t *testing.T) {
	w := newCaptureDB(t)
	ctx := context.Background()
	// extra order.disputed events beside the one a recorded dispute writes.
	dispute := func(orderID, id string, extra int) openedDispute {
		_, err := w.pool.Exec(ctx, `INSERT INTO payment_disputes (provider, dispute_id, order_id, charge_id, amount_cents, currency, event_id)
			VALUES ('paysim-a', $1, $2, 'ch_x', 1000, 'EUR', 'evt_' || $1)`, id, orderID)
		require.NoError(t, err)
		for range extra {
			_, err = w.pool.Exec(ctx, `INSERT INTO event_outbox (type, key, order_id, partition, payload)
				VALUES ('order.disputed', gen_random_uuid()::text, $1, $2, '{}')`, orderID, orderID)
			require.NoError(t, err)
		}
		return openedDispute{Provider: "paysim-a", ID: id, OrderID: orderID}
	}
	good := w.order(1000)
	w.status(good, "DISPUTED")
	d := dispute(good, "dp_1", 0)
	inv, err := checkDisputesRecordedOnce(ctx, w.pool, []openedDispute{d})
	require.NoError(t, err)
	assert.True(t, inv.Passed, "%v", inv.Counterexamples)
	assert.Equal(t, 1, inv.Checked)

	unrecorded := w.order(1000) // opened, but its webhook never landed
	w.status(unrecorded, "DISPUTED")
	notMoved := w.order(1000) // recorded, the order left DELIVERED
	twice := w.order(1000)    // two order.disputed events
	w.status(twice, "DISPUTED")
	inv, err = checkDisputesRecordedOnce(ctx, w.pool, []openedDispute{d, {Provider: "paysim-a", ID: "dp_2", OrderID: unrecorded},
		dispute(notMoved, "dp_3", 0), dispute(twice, "dp_4", 1)})
	require.NoError(t, err)
	require.False(t, inv.Passed)
	assert.Equal(t, []string{
		"paysim-a dp_2 of order " + unrecorded + ": recorded 0 times, order DISPUTED, 0 order.disputed events",
		"paysim-a dp_3 of order " + notMoved + ": recorded 1 times, order DELIVERED, 1 order.disputed events",
		"paysim-a dp_4 of order " + twice + ": recorded 1 times, order DISPUTED, 2 order.disputed events",
	}, inv.Counterexamples)
}

func TestThreeDSConsistent_FindsAHeldChargeOfAFailedOrderAndAPaidOrderWithoutItsCharge(t *testing.T) {
	w := newCaptureDB(t)
	ctx := context.Background()
	// Paid: the step succeeded, the charge made and recorded.
	paid := w.order(1000)
	ref := w.charge(paid, "authorization", 1000)
	w.pending(paid, ref, "succeeded", 1000)
	w.record(paid, ref, "authorized", 1000)
	// Failed: the step failed, nothing made.
	declined := w.order(700)
	w.status(declined, "FAILED")
	w.pending(declined, "pi_"+uuid.NewString(), "failed", 700)
	// Cancelled, then a late success: refunded.
	late := w.order(900)
	w.status(late, "CANCELLED")
	lateRef := w.charge(late, "charge", 900)
	w.pending(late, lateRef, "succeeded", 900)
	w.record(late, lateRef, "refunded", 900)
	w.release(lateRef, "refund", 900)
	// Paid on its second pending charge; the first never completed.
	retried := w.order(800)
	w.pending(retried, "pi_"+uuid.NewString(), "requires_action", 800)
	retriedRef := w.charge(retried, "authorization", 800)
	w.pending(retried, retriedRef, "succeeded", 800)
	w.record(retried, retriedRef, "authorized", 800)
	ids := []string{paid, declined, late, retried}
	inv, n, err := checkThreeDSConsistent(ctx, w.pool, ids)
	require.NoError(t, err)
	assert.True(t, inv.Passed, "%v", inv.Counterexamples)
	assert.Equal(t, 4, inv.Checked)
	assert.Equal(t, 1, n, "one late success refunded")

	// The drift: a late success never refunded; a paid order whose step
	// never succeeded; an order left waiting.
	held := w.order(600)
	w.status(held, "FAILED")
	heldRef := w.charge(held, "authorization", 600)
	w.pending(held, heldRef, "succeeded", 600)
	unpaid := w.order(500)
	w.pending(unpaid, "pi_"+uuid.NewString(), "requires_action", 500)
	waiting := w.order(400)
	w.status(waiting, "PAYMENT_PENDING")
	unrecorded := w.order(300) // paid, its charge made but not in payments
	unrecordedRef := w.charge(unrecorded, "authorization", 300)
	w.pending(unrecorded, unrecordedRef, "succeeded", 300)
	inv, _, err = checkThreeDSConsistent(ctx, w.pool, append(ids, held, unpaid, waiting, unrecorded))
	require.NoError(t, err)
	require.False(t, inv.Passed)
	assert.Len(t, inv.Counterexamples, 4)
	all := strings.Join(inv.Counterexamples, "\n")
	assert.Contains(t, all, "order "+unrecorded+" DELIVERED: step \"succeeded\", charge made true, recorded false")
	assert.Contains(t, all, "order "+held+" FAILED: step \"succeeded\": charge "+heldRef+" held (recorded false), never refunded or voided")
	assert.Contains(t, all, "order "+unpaid+" DELIVERED: step \"requires_action\", charge made false, recorded false")
	assert.Contains(t, all, "order "+waiting+" PAYMENT_PENDING: did not end")
}
