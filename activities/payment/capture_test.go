package payment_test

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/activities/payment/paysim"
	paysimsrv "github.com/orderflow/orderflow/devtools/paysim"
	"github.com/orderflow/orderflow/devtools/testkit"
)

// authFixture runs the payment activities against the test database and
// in-process paysim instances.
type authFixture struct {
	t    *testing.T
	pool *pgxpool.Pool
	env  *testsuite.TestActivityEnvironment
	pay  *payment.Activities
	srv  *paysimsrv.Server
	sim  *paysim.Client
}

func newAuthFixture(t *testing.T, primary ...payment.Provider) *authFixture {
	pool := testkit.DB(t)
	var suite testsuite.WorkflowTestSuite
	f := &authFixture{t: t, pool: pool, env: suite.NewTestActivityEnvironment()}
	f.srv, f.sim = testkit.Paysim(t, pool, "auth-"+uuid.NewString()[:8])
	f.pay = &payment.Activities{DB: pool, Providers: payment.NewRouter(testkit.Breaker(), append(primary, f.sim)...)}
	f.env.RegisterActivity(f.pay)
	return f
}

// order writes an order of total cents, as the saga's first step leaves it.
func (f *authFixture) order(total int64) string {
	f.t.Helper()
	id := uuid.NewString()
	_, err := f.pool.Exec(context.Background(), `INSERT INTO orders (order_id, customer_id, region, status, total_cents, currency)
		VALUES ($1, 'c-pay', 'test', $2, $3, 'USD')`, id, orderflow.StatusReserved, total)
	require.NoError(f.t, err)
	return id
}

// run executes an activity and decodes its result into out (may be nil).
func (f *authFixture) run(fn, in, out any) error {
	v, err := f.env.ExecuteActivity(fn, in)
	if err != nil || out == nil {
		return err
	}
	return v.Get(out)
}

func (f *authFixture) authorize(id string, amount int64, renewal int) payment.AuthorizeResult {
	f.t.Helper()
	var res payment.AuthorizeResult
	require.NoError(f.t, f.run(f.pay.Authorize, payment.AuthorizeInput{ChargeInput: payment.ChargeInput{OrderID: id,
		Token: payment.TokenVisa, AmountCents: amount, Currency: "USD"}, Renewal: renewal}, &res))
	return res
}

// ledgerSum adds up the paysim ledger's rows of a kind under an authorization.
func (f *authFixture) ledgerSum(chargeID, kind string) (n int, sum int64) {
	f.t.Helper()
	require.NoError(f.t, f.pool.QueryRow(context.Background(), `SELECT count(*), coalesce(sum(amount_cents), 0) FROM paysim.ledger
		WHERE charge_ref = $1 AND kind = $2`, chargeID, kind).Scan(&n, &sum))
	return n, sum
}

// refused asserts a non-retryable business error of kind.
func refused(t *testing.T, err error, kind orderflow.Kind) {
	t.Helper()
	require.Error(t, err)
	assert.Equal(t, kind, orderflow.KindOf(err), "%v", err)
	var app *temporal.ApplicationError
	require.True(t, errors.As(err, &app), "%v", err)
	assert.True(t, app.NonRetryable(), "%v", err)
}

func TestAuthorizeThenCaptureByShipmentNeverBeyondTheAuthorization(t *testing.T) {
	f := newAuthFixture(t)
	ctx := context.Background()
	id := f.order(1000)

	auth := f.authorize(id, 1000, 0)
	assert.Equal(t, int64(1000), auth.AmountCents)
	assert.False(t, auth.ExpiresAt.IsZero(), "the provider's expiry")
	assert.Equal(t, auth, f.authorize(id, 1000, 0), "a repeat gets the same authorization")
	var status string
	require.NoError(t, f.pool.QueryRow(ctx, `SELECT status FROM orders WHERE order_id = $1`, id).Scan(&status))
	assert.Equal(t, orderflow.StatusAuthorized, status)

	var cp, again payment.CaptureResult
	require.NoError(t, f.run(f.pay.Capture, payment.CaptureInput{OrderID: id, ShipmentID: "s1", AmountCents: 300}, &cp))
	require.NoError(t, f.run(f.pay.Capture, payment.CaptureInput{OrderID: id, ShipmentID: "s1", AmountCents: 300}, &again))
	assert.Equal(t, cp, again, "one capture per shipment")
	n, sum := f.ledgerSum(auth.ChargeID, "capture")
	assert.Equal(t, 1, n)
	assert.Equal(t, int64(300), sum)

	err := f.run(f.pay.Capture, payment.CaptureInput{OrderID: id, ShipmentID: "s2", AmountCents: 800}, nil)
	refused(t, err, orderflow.CaptureExceedsAuthorization)
	assert.Contains(t, err.Error(), "100 over the authorization", "the refusal names the excess")

	err = f.run(f.pay.RefundPart, payment.RefundPartInput{OrderID: id, Key: payment.PartialRefundKey(id, "r1"), AmountCents: 301}, nil)
	refused(t, err, orderflow.RefundExceedsCapture)
	var rf payment.RefundResult
	require.NoError(t, f.run(f.pay.RefundPart, payment.RefundPartInput{OrderID: id, Key: payment.PartialRefundKey(id, "r1"), AmountCents: 100}, &rf))
	assert.True(t, rf.Refunded)
	require.NoError(t, f.run(f.pay.RefundPart, payment.RefundPartInput{OrderID: id, Key: payment.PartialRefundKey(id, "r1"), AmountCents: 100}, &rf))
	err = f.run(f.pay.RefundPart, payment.RefundPartInput{OrderID: id, Key: payment.PartialRefundKey(id, "r2"), AmountCents: 201}, nil)
	refused(t, err, orderflow.RefundExceedsCapture) // 300 captured, 100 refunded

	require.NoError(t, f.run(f.pay.Capture, payment.CaptureInput{OrderID: id, ShipmentID: "s2", AmountCents: 500, Final: true}, &cp))
	assert.Equal(t, payment.CaptureResult{CaptureID: cp.CaptureID, CapturedCents: 500, ReleasedCents: 200}, cp)
	refused(t, f.run(f.pay.Capture, payment.CaptureInput{OrderID: id, ShipmentID: "s3", AmountCents: 1}, nil), orderflow.AuthorizationExpired)

	// The compensation's full refund: what was captured and not refunded.
	require.NoError(t, f.run(f.pay.Refund, orderflow.OrderRef{OrderID: id}, &rf))
	assert.True(t, rf.Refunded)
	require.NoError(t, f.run(f.pay.Refund, orderflow.OrderRef{OrderID: id}, &rf))
	n, sum = f.ledgerSum(auth.ChargeID, "refund")
	assert.Equal(t, 2, n, "the partial refund and the rest, once")
	assert.Equal(t, int64(800), sum, "every cent captured, and no more")
}

func TestVoidReleasesAnAuthorizedOrderOnceAndRefundVoidsTheRest(t *testing.T) {
	f := newAuthFixture(t)
	var res payment.VoidResult
	require.NoError(t, f.run(f.pay.Void, orderflow.OrderRef{OrderID: f.order(500)}, &res))
	assert.Equal(t, payment.VoidResult{}, res, "nothing authorized: a no-op")

	id := f.order(1000)
	auth := f.authorize(id, 1000, 0)
	require.NoError(t, f.run(f.pay.Void, orderflow.OrderRef{OrderID: id}, &res))
	assert.Equal(t, payment.VoidResult{Voided: true, ReleasedCents: 1000}, res)
	require.NoError(t, f.run(f.pay.Void, orderflow.OrderRef{OrderID: id}, &res))
	assert.Equal(t, payment.VoidResult{Voided: true}, res, "a repeat releases nothing more")
	n, sum := f.ledgerSum(auth.ChargeID, "void")
	assert.Equal(t, 1, n)
	assert.Equal(t, int64(1000), sum)
	refused(t, f.run(f.pay.Capture, payment.CaptureInput{OrderID: id, ShipmentID: "s1", AmountCents: 100}, nil), orderflow.AuthorizationExpired)

	// Refund of an order with one shipment captured: the capture comes back,
	// the rest is voided.
	id = f.order(1000)
	auth = f.authorize(id, 1000, 0)
	require.NoError(t, f.run(f.pay.Capture, payment.CaptureInput{OrderID: id, ShipmentID: "s1", AmountCents: 400}, nil))
	var rf payment.RefundResult
	require.NoError(t, f.run(f.pay.Refund, orderflow.OrderRef{OrderID: id}, &rf))
	assert.True(t, rf.Refunded)
	_, refunded := f.ledgerSum(auth.ChargeID, "refund")
	_, voided := f.ledgerSum(auth.ChargeID, "void")
	assert.Equal(t, int64(400), refunded)
	assert.Equal(t, int64(600), voided)
}

func TestRenewalAuthorizesTheUncapturedRestUnderANewKeyAndVoidsThePrevious(t *testing.T) {
	f := newAuthFixture(t)
	id := f.order(1000)
	first := f.authorize(id, 1000, 0)
	require.NoError(t, f.run(f.pay.Capture, payment.CaptureInput{OrderID: id, ShipmentID: "s1", AmountCents: 300}, nil))

	renewed := f.authorize(id, 1000, 1)
	assert.NotEqual(t, first.ChargeID, renewed.ChargeID)
	assert.Equal(t, int64(700), renewed.AmountCents, "what was not captured")
	assert.Equal(t, renewed, f.authorize(id, 1000, 1), "a repeat of the renewal gets it back")
	n, voided := f.ledgerSum(first.ChargeID, "void")
	assert.Equal(t, 1, n, "the previous authorization is voided once")
	assert.Equal(t, int64(700), voided)

	var cp payment.CaptureResult
	require.NoError(t, f.run(f.pay.Capture, payment.CaptureInput{OrderID: id, ShipmentID: "s2", AmountCents: 700, Final: true}, &cp))
	_, captured := f.ledgerSum(renewed.ChargeID, "capture")
	assert.Equal(t, int64(700), captured, "captured on the renewal")

	// The full refund returns the captures of both: the one the renewal
	// voided kept what it had captured.
	require.NoError(t, f.run(f.pay.Refund, orderflow.OrderRef{OrderID: id}, nil))
	_, onFirst := f.ledgerSum(first.ChargeID, "refund")
	_, onRenewal := f.ledgerSum(renewed.ChargeID, "refund")
	assert.Equal(t, int64(300), onFirst)
	assert.Equal(t, int64(700), onRenewal)
}

func TestCaptureOfAnExpiredAuthorizationIsRefused(t *testing.T) {
	f := newAuthFixture(t)
	f.srv.Ledger().SetAuthorizationTTL(1) // a nanosecond: expired by the next statement
	id := f.order(1000)
	f.authorize(id, 1000, 0)
	refused(t, f.run(f.pay.Capture, payment.CaptureInput{OrderID: id, ShipmentID: "s1", AmountCents: 100}, nil), orderflow.AuthorizationExpired)
	var status string
	require.NoError(t, f.pool.QueryRow(context.Background(), `SELECT status FROM payments WHERE order_id = $1`, id).Scan(&status))
	assert.Equal(t, "expired", status)
}

func TestAuthorizationFailsOverAsAChargeDoes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // the primary refuses connections
	f := newAuthFixture(t, paysim.NewClient("down", "http://"+addr, testkit.PaysimTimeout))

	id := f.order(700)
	auth := f.authorize(id, 700, 0)
	assert.Equal(t, f.sim.Name(), auth.Provider, "the request never reached the primary: the secondary holds it")

	err = f.run(f.pay.Authorize, payment.AuthorizeInput{ChargeInput: payment.ChargeInput{OrderID: f.order(700),
		Token: payment.TokenChargeDeclined, AmountCents: 700, Currency: "USD"}}, nil)
	refused(t, err, orderflow.PaymentDeclined)
}
