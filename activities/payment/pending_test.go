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
