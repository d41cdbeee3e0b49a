package paysim_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow/activities/payment"
	simclient "github.com/orderflow/orderflow/activities/payment/paysim"
	"github.com/orderflow/orderflow/devtools/paysim"
	"github.com/orderflow/orderflow/devtools/testkit"
)

// listed returns the instance's ledger entry for a charge or authorization.
func (in *instance) listed(c *simclient.Client, id string) payment.LedgerCharge {
	in.t.Helper()
	all, err := c.ListCharges(context.Background(), time.Time{}, time.Time{})
	require.NoError(in.t, err)
	for _, e := range all {
		if e.ID == id {
			return e
		}
	}
	in.t.Fatalf("%s not listed", id)
	return payment.LedgerCharge{}
}

func TestAuthorizationIsCapturedInPartsNeverBeyondWhatItHolds(t *testing.T) {
	pool := testkit.DB(t)
	in := newInstance(t, pool, paysim.Faults{})
	c := in.client(10 * time.Second)
	ctx := context.Background()

	k := key()
	auth, err := c.Authorize(ctx, visa(k, 1000))
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now().Add(paysim.DefaultAuthorizationTTL), auth.ExpiresAt, time.Hour, "7 days by default")
	again, err := c.Authorize(ctx, visa(k, 1000))
	require.NoError(t, err)
	assert.Equal(t, auth, again, "one authorization per key")
	_, err = c.Charge(ctx, visa(k, 1000))
	require.ErrorIs(t, err, simclient.ErrIdempotencyMismatch, "a key holds an authorization or a charge, not both")
	found, ok, err := c.FindCharge(ctx, k)
	require.NoError(t, err)
	require.True(t, ok, "FindCharge finds authorizations")
	assert.Equal(t, auth.ID, found.ID)
	e := in.listed(c, auth.ID)
	assert.True(t, e.Authorization)
	assert.Equal(t, simclient.StatusRequiresCapture, e.Status)
	assert.Equal(t, int64(0), e.CapturedCents, "an authorization took nothing yet")

	cp1, err := c.Capture(ctx, payment.CaptureRequest{IdempotencyKey: k + "-s1", ChargeID: auth.ID, AmountCents: 300})
	require.NoError(t, err)
	replay, err := c.Capture(ctx, payment.CaptureRequest{IdempotencyKey: k + "-s1", ChargeID: auth.ID, AmountCents: 300})
	require.NoError(t, err)
	assert.Equal(t, cp1, replay, "a replayed capture is the first")
	_, err = c.Capture(ctx, payment.CaptureRequest{IdempotencyKey: k + "-s1", ChargeID: auth.ID, AmountCents: 301})
	require.ErrorIs(t, err, simclient.ErrIdempotencyMismatch)

	_, err = c.Capture(ctx, payment.CaptureRequest{IdempotencyKey: k + "-big", ChargeID: auth.ID, AmountCents: 701})
	require.ErrorIs(t, err, payment.ErrExceedsAuthorization, "700 is left")
	assert.Contains(t, err.Error(), "by 1", "the refusal names the excess")

	_, err = c.Refund(ctx, payment.RefundRequest{IdempotencyKey: k + "-r-big", ChargeID: auth.ID, AmountCents: 301})
	require.ErrorIs(t, err, payment.ErrExceedsCapture, "only the 300 captured can be refunded")
	rf, err := c.Refund(ctx, payment.RefundRequest{IdempotencyKey: k + "-r1", ChargeID: auth.ID, AmountCents: 100})
	require.NoError(t, err)
	assert.Equal(t, int64(100), rf.AmountCents)

	last, err := c.Capture(ctx, payment.CaptureRequest{IdempotencyKey: k + "-s2", ChargeID: auth.ID, AmountCents: 500, Final: true})
	require.NoError(t, err)
	assert.Equal(t, int64(200), last.ReleasedCents, "the final capture releases the rest")
	_, err = c.Capture(ctx, payment.CaptureRequest{IdempotencyKey: k + "-s3", ChargeID: auth.ID, AmountCents: 1})
	require.ErrorIs(t, err, payment.ErrAuthorizationClosed, "nothing after a final capture")
	require.NoError(t, c.Void(ctx, payment.VoidRequest{IdempotencyKey: k + "-v", ChargeID: auth.ID}), "a closed authorization has nothing left to void")

	e = in.listed(c, auth.ID)
	assert.Equal(t, simclient.StatusCaptured, e.Status)
	assert.Equal(t, int64(800), e.CapturedCents)
	assert.Equal(t, int64(100), e.RefundedCents)
	assert.Equal(t, int64(800), e.Paid(), "captured, not authorized, is what was paid")
}

func TestVoidReleasesTheRestAndNoCaptureFollows(t *testing.T) {
	pool := testkit.DB(t)
	in := newInstance(t, pool, paysim.Faults{})
	c := in.client(10 * time.Second)
	ctx := context.Background()

	k := key()
	auth, err := c.Authorize(ctx, visa(k, 1000))
	require.NoError(t, err)
	_, err = c.Capture(ctx, payment.CaptureRequest{IdempotencyKey: k + "-s1", ChargeID: auth.ID, AmountCents: 400, Final: false})
	require.NoError(t, err)
	require.NoError(t, c.Void(ctx, payment.VoidRequest{IdempotencyKey: k + "-v", ChargeID: auth.ID}))
	require.NoError(t, c.Void(ctx, payment.VoidRequest{IdempotencyKey: k + "-v", ChargeID: auth.ID}), "a replayed void")
	var released int64
	require.NoError(t, pool.QueryRow(ctx, `SELECT coalesce(sum(amount_cents), 0) FROM paysim.ledger WHERE instance = $1 AND charge_ref = $2 AND kind = 'void'`,
		in.srv.Name(), auth.ID).Scan(&released))
	assert.Equal(t, int64(600), released, "one void, of what was not captured")

	_, err = c.Capture(ctx, payment.CaptureRequest{IdempotencyKey: k + "-s2", ChargeID: auth.ID, AmountCents: 100})
	require.ErrorIs(t, err, payment.ErrAuthorizationClosed, "no capture after a void")
	e := in.listed(c, auth.ID)
	assert.Equal(t, simclient.StatusCanceled, e.Status)
	assert.Equal(t, int64(400), e.CapturedCents, "what was captured before the void stays paid")

	// A charge is not an authorization: nothing to capture or void.
	ch, err := c.Charge(ctx, visa(key(), 500))
	require.NoError(t, err)
	_, err = c.Capture(ctx, payment.CaptureRequest{IdempotencyKey: key(), ChargeID: ch.ID, AmountCents: 100})
	require.ErrorIs(t, err, simclient.ErrNotAnAuthorization)
	require.ErrorIs(t, c.Void(ctx, payment.VoidRequest{IdempotencyKey: key(), ChargeID: ch.ID}), simclient.ErrNotAnAuthorization)
}

func TestFullRefundOfAnAuthorizationRefundsTheCapturesAndVoidsTheRest(t *testing.T) {
	pool := testkit.DB(t)
	in := newInstance(t, pool, paysim.Faults{})
	c := in.client(10 * time.Second)
	ctx := context.Background()

	k := key()
	auth, err := c.Authorize(ctx, visa(k, 1000))
	require.NoError(t, err)
	_, err = c.Capture(ctx, payment.CaptureRequest{IdempotencyKey: k + "-s1", ChargeID: auth.ID, AmountCents: 250, Final: false})
	require.NoError(t, err)
	rf, err := c.Refund(ctx, payment.RefundRequest{IdempotencyKey: k + "-r", ChargeID: auth.ID})
	require.NoError(t, err)
	assert.Equal(t, int64(250), rf.AmountCents, "what was captured")
	again, err := c.Refund(ctx, payment.RefundRequest{IdempotencyKey: k + "-r", ChargeID: auth.ID})
	require.NoError(t, err)
	assert.Equal(t, rf, again)
	e := in.listed(c, auth.ID)
	assert.Equal(t, simclient.StatusCanceled, e.Status, "the rest was voided")
	assert.Equal(t, int64(250), e.RefundedCents)

	// Nothing captured: the full refund only voids.
	k2 := key()
	auth2, err := c.Authorize(ctx, visa(k2, 1000))
	require.NoError(t, err)
	_, err = c.Refund(ctx, payment.RefundRequest{IdempotencyKey: k2 + "-r", ChargeID: auth2.ID})
	require.NoError(t, err)
	assert.Equal(t, simclient.StatusCanceled, in.listed(c, auth2.ID).Status)
}

func TestAuthorizationExpiresAfterItsTTL(t *testing.T) {
	pool := testkit.DB(t)
	in := newInstance(t, pool, paysim.Faults{})
	in.srv.Ledger().SetAuthorizationTTL(time.Millisecond)
	c := in.client(10 * time.Second)
	ctx := context.Background()

	k := key()
	auth, err := c.Authorize(ctx, visa(k, 1000))
	require.NoError(t, err)
	// The expiry is a point on the database's clock a millisecond after the
	// authorization; the capture below is a statement that starts later.
	time.Sleep(10 * time.Millisecond)
	_, err = c.Capture(ctx, payment.CaptureRequest{IdempotencyKey: k + "-s1", ChargeID: auth.ID, AmountCents: 100})
	require.ErrorIs(t, err, simclient.ErrAuthorizationExpired)
	require.ErrorIs(t, err, payment.ErrAuthorizationClosed)
	assert.Equal(t, simclient.StatusExpired, in.listed(c, auth.ID).Status)
	require.NoError(t, c.Void(ctx, payment.VoidRequest{IdempotencyKey: k + "-v", ChargeID: auth.ID}), "an expired authorization has nothing to void")
}
