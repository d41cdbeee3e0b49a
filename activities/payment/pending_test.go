package payment_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/devtools/testkit"
)

// bareOrder writes an order row for the payment tables to refer to.
func bareOrder(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	id := uuid.NewString()
	_, err := pool.Exec(context.Background(), `INSERT INTO orders (order_id, customer_id, region, status, total_cents, currency)
		VALUES ($1, 'c-pending', 'test', 'RESERVED', 1500, 'USD')`, id)
	require.NoError(t, err)
	return id
}

// The provider's webhook may be handled before the step that asked for the
// charge has stored the provider's pending answer. A provider that keeps
// answering the key with its first answer (pending, as Stripe's idempotent
// replay does) must not hold the order back: the step finds the outcome the
// webhook stored and records the charge.
func TestChargeTakesAnOutcomeTheWebhookStoredBeforeThePendingAnswer(t *testing.T) {
	pool := testkit.DB(t)
	srv, client := testkit.Paysim(t, pool, "paysim-pending-"+uuid.NewString()[:6])
	pay := &payment.Activities{DB: pool, Providers: payment.NewRouter(testkit.Breaker(), client)}
	hooks := &payment.Webhooks{Payments: pay}
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(pay)
	env.RegisterActivity(hooks)
	ctx := context.Background()

	for _, c := range []struct {
		name    string
		outcome string // the webhook's, stored before the step runs; "" none
		want    string // the order's status after the step
		kind    orderflow.Kind
	}{
		{"no webhook yet: the step parks", "", orderflow.StatusReserved, orderflow.PaymentPending},
		{"success first: the step records the charge", payment.EventSucceeded, orderflow.StatusPaid, ""},
		{"failure first: the step declines", payment.EventFailed, orderflow.StatusReserved, orderflow.PaymentDeclined},
	} {
		t.Run(c.name, func(t *testing.T) {
			id := bareOrder(t, pool)
			key := payment.ChargeKey(id, 1)
			in := payment.ChargeInput{OrderID: id, Token: payment.TokenThreeDSecure, AmountCents: 1500, Currency: "USD"}
			// The provider holds the pending charge: its answer to the key stays "pending".
			_, err := client.Charge(ctx, payment.ChargeRequest{IdempotencyKey: key, Token: in.Token, AmountCents: 1500, Currency: "USD",
				Description: "order " + id})
			var pending *payment.PendingError
			require.ErrorAs(t, err, &pending)
			if c.outcome != "" {
				_, err = env.ExecuteActivity(hooks.ApplyPaymentOutcome, payment.ProviderEvent{Provider: srv.Name(), Kind: c.outcome,
					OrderID: id, ChargeKey: key, ChargeID: pending.ChargeID, AmountCents: 1500, Currency: "USD", Reason: "authentication_failed"})
				require.NoError(t, err)
			}
			got, err := env.ExecuteActivity(pay.Charge, in)
			var status string
			require.NoError(t, pool.QueryRow(ctx, `SELECT status FROM orders WHERE order_id = $1`, id).Scan(&status))
			assert.Equal(t, c.want, status)
			if c.kind != "" {
				var app *temporal.ApplicationError
				require.ErrorAs(t, err, &app)
				assert.Equal(t, string(c.kind), app.Type())
				return
			}
			require.NoError(t, err)
			var res payment.ChargeResult
			require.NoError(t, got.Get(&res))
			assert.Equal(t, pending.ChargeID, res.ChargeID)
			var n int
			require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM payments WHERE order_id = $1 AND status = 'charged'`, id).Scan(&n))
			assert.Equal(t, 1, n)
		})
	}
}

// An authorization whose 3-D Secure step succeeded after the order's saga
// ended (cancelled, or past its payment deadline) held money for no order.
// Nothing of it was captured, so a refund is refused: it is voided, once,
// under the void key the saga's compensation uses.
func TestLateAuthorizationAfterTheSagaEndedIsVoided(t *testing.T) {
	pool := testkit.DB(t)
	srv, client := testkit.Paysim(t, pool, "paysim-late-"+uuid.NewString()[:6])
	pay := &payment.Activities{DB: pool, Providers: payment.NewRouter(testkit.Breaker(), client)}
	hooks := &payment.Webhooks{Payments: pay, Temporal: testkit.Temporal(t)}
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(hooks)
	ctx := context.Background()

	id := bareOrder(t, pool)
	key := payment.AuthorizationKey(id, 1)
	_, err := client.Authorize(ctx, payment.ChargeRequest{IdempotencyKey: key, Token: payment.TokenThreeDSecure, AmountCents: 1500,
		Currency: "USD", Description: "order " + id})
	var pending *payment.PendingError
	require.ErrorAs(t, err, &pending)
	status, err := srv.CompleteThreeDSecure(ctx, pending.ChargeID, "succeeded")
	require.NoError(t, err)
	require.Equal(t, "succeeded", status)

	// The saga (never started here) is not found: it ended long ago.
	ev := payment.ProviderEvent{Provider: srv.Name(), EventID: "evt_" + uuid.NewString(), Type: "payment_intent.amount_capturable_updated",
		Kind: payment.EventSucceeded, OrderID: id, ChargeKey: key, ChargeID: pending.ChargeID, AmountCents: 1500, Currency: "USD",
		SagaID: "order-" + id}
	got, err := env.ExecuteActivity(hooks.SettlePaymentOutcome, ev)
	require.NoError(t, err)
	var res payment.SettleResult
	require.NoError(t, got.Get(&res))
	assert.True(t, res.Refunded, "released: %+v", res)
	_, err = env.ExecuteActivity(hooks.SettlePaymentOutcome, ev) // retried: nothing more
	require.NoError(t, err)
	var voids int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM paysim.ledger WHERE instance = $1 AND kind = 'void' AND charge_ref = $2`,
		srv.Name(), pending.ChargeID).Scan(&voids))
	assert.Equal(t, 1, voids, "the authorization voided once at the provider")
	var st string
	require.NoError(t, pool.QueryRow(ctx, `SELECT status FROM payments WHERE idempotency_key = $1`, key).Scan(&st))
	assert.Equal(t, "voided", st)
}
