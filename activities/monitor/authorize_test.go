package monitor_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/monitor"
	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/devtools/testkit"
)

// Orders paid by authorization, on the real paysim ledger: captured, not
// authorized, is what was paid. Clean ones give no finding; each drift
// planted (a refund beyond the captures, a shipped order not captured in
// full, an authorization payments record that paysim does not hold) is
// found by the check it concerns.
func TestTheMoneyChecksUnderstandAuthorizations(t *testing.T) {
	pool := freshDB(t)
	_, ps := testkit.Paysim(t, pool, "paysim-auth-mon")
	ctx := context.Background()
	f := &fixture{t: t, pool: pool, paysim: ps, region: "mon-" + uuid.NewString()[:8], now: time.Now()}
	recent := f.now.Add(-30 * time.Minute)

	// authorized writes an order of total in status, authorized on paysim
	// and recorded as the payment activities record it, with captured of it
	// captured.
	authorized := func(status string, total, captured int64) (string, payment.Charge) {
		id := f.order(status, testkit.Product(t, pool, unit, 10), int(total/unit), recent)
		key := payment.AuthorizationKey(id, 1)
		auth, err := ps.Authorize(ctx, payment.ChargeRequest{IdempotencyKey: key, Token: payment.TokenVisa, AmountCents: total, Currency: "USD"})
		require.NoError(t, err)
		f.exec(`INSERT INTO payments (idempotency_key, order_id, provider, charge_id, amount_cents, currency, status, kind)
			VALUES ($1, $2, $3, $4, $5, 'USD', 'authorized', 'authorization')`, key, id, ps.Name(), auth.ID, total)
		f.exec(`INSERT INTO payment_transactions (order_id, kind, provider, provider_ref, amount_cents, currency, idempotency_key)
			VALUES ($1, 'authorization', $2, $3, $4, 'USD', $5)`, id, ps.Name(), auth.ID, total, key)
		if captured > 0 {
			_, err := ps.Capture(ctx, payment.CaptureRequest{IdempotencyKey: payment.CaptureKey(id, "s1"), ChargeID: auth.ID, AmountCents: captured})
			require.NoError(t, err)
		}
		return id, auth
	}
	check := func(orders []monitor.Order) map[[2]string]bool {
		t.Helper()
		all, err := ps.ListCharges(ctx, time.Time{}, time.Time{})
		require.NoError(t, err)
		listed := []monitor.Listed{{Provider: ps.Name(), Charges: all}}
		ledger := monitor.Ledgers(listed)
		rep, err := monitor.CheckLedger(ctx, pool, orders, listed, time.Time{}, time.Time{})
		require.NoError(t, err)
		found := map[[2]string]bool{}
		for _, r := range []monitor.Report{monitor.CheckCharges(orders, ledger), monitor.CheckRefunds(ledger), rep} {
			for _, fd := range r.Findings {
				found[[2]string{fd.Kind, fd.Subject}] = true
			}
		}
		return found
	}

	var orders []monitor.Order
	add := func(id, status string, total int64) string {
		orders = append(orders, monitor.Order{ID: id, Status: status, Total: total})
		return id
	}
	// Clean: one shipment of two captured while the other is on its way;
	// everything captured once shipped; a cancelled order's capture refunded.
	id, _ := authorized(orderflow.StatusPartiallyShipped, 2*unit, unit)
	add(id, orderflow.StatusPartiallyShipped, 2*unit)
	id, _ = authorized(orderflow.StatusShipped, 2*unit, 2*unit)
	add(id, orderflow.StatusShipped, 2*unit)
	id, auth := authorized(orderflow.StatusCancelled, 2*unit, unit)
	_, err := ps.Refund(ctx, payment.RefundRequest{IdempotencyKey: payment.RefundKey(payment.AuthorizationKey(id, 1)), ChargeID: auth.ID})
	require.NoError(t, err)
	f.exec(`INSERT INTO payment_transactions (order_id, kind, provider, provider_ref, amount_cents, currency, idempotency_key)
		VALUES ($1, 'refund', $2, $3, $4, 'USD', $5)`, id, ps.Name(), "re_x", unit, payment.RefundKey(payment.AuthorizationKey(id, 1)))
	add(id, orderflow.StatusCancelled, 2*unit)
	assert.Empty(t, check(orders), "orders paid by authorization, as the activities leave them: no finding")

	// A refund beyond what was captured (planted in the ledger: paysim
	// itself refuses it), though within what was authorized.
	over, overAuth := authorized(orderflow.StatusDelivered, 2*unit, unit)
	add(over, orderflow.StatusDelivered, 2*unit)
	f.exec(`INSERT INTO paysim.ledger (instance, idempotency_key, kind, ref, charge_ref, amount_cents, currency) VALUES ($1, $2, 'refund', $3, $4, $5, 'USD')`,
		ps.Name(), payment.PartialRefundKey(over, "r1"), "re_"+uuid.NewString(), overAuth.ID, unit+1)
	// A shipped order whose authorization was captured in part only.
	short, _ := authorized(orderflow.StatusShipped, 2*unit, unit)
	add(short, orderflow.StatusShipped, 2*unit)
	// Payments record an authorization paysim does not hold.
	ghost := f.order(orderflow.StatusFulfilling, testkit.Product(t, pool, unit, 10), 1, recent)
	add(ghost, orderflow.StatusFulfilling, unit)
	fake := "pi_" + uuid.NewString()
	f.exec(`INSERT INTO payment_transactions (order_id, kind, provider, provider_ref, amount_cents, currency, idempotency_key)
		VALUES ($1, 'authorization', $2, $3, $4, 'USD', $5)`, ghost, ps.Name(), fake, unit, payment.AuthorizationKey(ghost, 1))

	found := check(orders)
	for _, want := range [][2]string{
		{monitor.KindRefundOverCharge, over},
		{monitor.KindChargeMismatch, over},
		{monitor.KindChargeMismatch, short},
		{monitor.KindLedgerMismatch, ps.Name() + ":" + fake},
		{monitor.KindChargeMismatch, ghost}, // paid for, and no money at the provider
	} {
		assert.True(t, found[want], "%v found; findings: %v", want, found)
	}
	// The planted refund is also one payments do not record.
	assert.True(t, found[[2]string{monitor.KindLedgerMismatch, ps.Name() + ":" + over}], "%v", found)
	assert.Len(t, found, 6, "and nothing else: %v", found)
}
