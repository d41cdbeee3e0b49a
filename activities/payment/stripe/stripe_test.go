package stripe_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/activities/payment/stripe"
	"github.com/orderflow/orderflow/devtools/testkit"
)

// sent is what the adapter sent, seen by a proxy in front of stripe-mock.
type sent struct {
	method, path, idempotencyKey string
	form                         url.Values
}

// recorder forwards to stripe-mock and records every request, because
// stripe-mock answers from fixtures and cannot tell what it was sent.
type recorder struct {
	mu   sync.Mutex
	reqs []sent
}

func (r *recorder) start(t *testing.T, target string) string {
	u, err := url.Parse(target)
	require.NoError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(u)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if err := req.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.reqs = append(r.reqs, sent{method: req.Method, path: req.URL.Path, idempotencyKey: req.Header.Get("Idempotency-Key"), form: req.Form})
		r.mu.Unlock()
		req.Body = http.NoBody
		if req.Method == http.MethodPost {
			req.Body, req.ContentLength = nopCloser{strings.NewReader(req.PostForm.Encode())}, int64(len(req.PostForm.Encode()))
		}
		proxy.ServeHTTP(w, req)
	}))
	t.Cleanup(hs.Close)
	return hs.URL
}

type nopCloser struct{ *strings.Reader }

func (nopCloser) Close() error { return nil }

func (r *recorder) last() sent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reqs[len(r.reqs)-1]
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs)
}

func TestRoundTripAgainstStripeMock(t *testing.T) {
	var rec recorder
	base := rec.start(t, testkit.StripeMock(t))
	p, err := stripe.New(stripe.Config{Name: "stripe-test", APIKey: "sk_test_123", BaseURL: base, Timeout: 10 * time.Second})
	require.NoError(t, err)
	ctx := context.Background()
	key := "charge-" + uuid.NewString()

	ch, err := p.Charge(ctx, payment.ChargeRequest{IdempotencyKey: key, Token: payment.TokenVisa, AmountCents: 4980, Currency: "USD", Description: "order x"})
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(ch.ID, "pi_"), ch.ID)
	assert.Equal(t, int64(4980), ch.AmountCents)
	assert.Equal(t, "USD", ch.Currency)
	create := rec.last()
	assert.Equal(t, "/v1/payment_intents", create.path)
	assert.Equal(t, key, create.idempotencyKey, "the charge carries its idempotency key")
	assert.Equal(t, key, create.form.Get("metadata["+stripe.MetadataKey+"]"), "and stores it for FindCharge")
	assert.Equal(t, "pm_card_visa", create.form.Get("payment_method"))
	assert.Equal(t, "true", create.form.Get("confirm"))
	assert.Equal(t, "usd", create.form.Get("currency"))

	rf, err := p.Refund(ctx, payment.RefundRequest{IdempotencyKey: "refund-" + key, ChargeID: ch.ID, AmountCents: 4980, Currency: "USD"})
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(rf.ID, "re_"), rf.ID)
	refund := rec.last()
	assert.Equal(t, "/v1/refunds", refund.path)
	assert.Equal(t, "refund-"+key, refund.idempotencyKey)
	assert.Equal(t, ch.ID, refund.form.Get("payment_intent"))
	assert.Equal(t, "4980", refund.form.Get("amount"))

	before := rec.count()
	_, found, err := p.FindCharge(ctx, key)
	require.NoError(t, err)
	assert.False(t, found, "stripe-mock's fixtures do not carry our key: a PaymentIntent without it is not the charge")
	rec.mu.Lock()
	for _, r := range rec.reqs[before:] {
		assert.Equal(t, http.MethodGet, r.method, "FindCharge only reads: %s %s", r.method, r.path)
	}
	paths := []string{}
	for _, r := range rec.reqs[before:] {
		paths = append(paths, r.path)
	}
	rec.mu.Unlock()
	assert.Equal(t, []string{"/v1/payment_intents", "/v1/payment_intents/search"}, paths, "recent list first, then search")
}

func TestStripeErrorsFollowTheProviderContract(t *testing.T) {
	mock := testkit.StripeMock(t)
	ctx := context.Background()

	t.Run("an unknown token is declined without a call", func(t *testing.T) {
		var rec recorder
		p, err := stripe.New(stripe.Config{Name: "stripe-test", APIKey: "sk_test_123", BaseURL: rec.start(t, mock), Timeout: 10 * time.Second})
		require.NoError(t, err)
		_, err = p.Charge(ctx, payment.ChargeRequest{IdempotencyKey: uuid.NewString(), Token: "tok_nonsense", AmountCents: 100, Currency: "USD"})
		var declined *payment.DeclinedError
		require.ErrorAs(t, err, &declined)
		assert.Equal(t, "invalid_token", declined.Code)
		assert.Equal(t, 0, rec.count())
	})

	t.Run("a refused port is ErrNotSent", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := l.Addr().String()
		require.NoError(t, l.Close())
		p, err := stripe.New(stripe.Config{Name: "stripe-test", APIKey: "sk_test_123", BaseURL: "http://" + addr, Timeout: 10 * time.Second})
		require.NoError(t, err)
		_, err = p.Charge(ctx, payment.ChargeRequest{IdempotencyKey: uuid.NewString(), Token: payment.TokenVisa, AmountCents: 100, Currency: "USD"})
		require.ErrorIs(t, err, payment.ErrNotSent)
		_, _, err = p.FindCharge(ctx, "k")
		require.ErrorIs(t, err, payment.ErrNotSent)
	})

	t.Run("a rejected request is a plain error", func(t *testing.T) {
		p, err := stripe.New(stripe.Config{Name: "stripe-test", APIKey: "not-a-key", BaseURL: mock, Timeout: 10 * time.Second})
		require.NoError(t, err)
		_, err = p.Charge(ctx, payment.ChargeRequest{IdempotencyKey: uuid.NewString(), Token: payment.TokenVisa, AmountCents: 100, Currency: "USD"})
		require.ErrorContains(t, err, "authenticate")
		var declined *payment.DeclinedError
		assert.NotErrorAs(t, err, &declined)
		assert.NotErrorIs(t, err, payment.ErrNotSent)
	})
}

// ListCharges lists the PaymentIntents of the window, a page of 100 with
// each one's latest charge expanded (for what it refunded), only reads,
// and counts only PaymentIntents orderflow made: stripe-mock's fixtures
// carry no idempotency key in their metadata, so none is ours.
func TestListChargesAsksForTheWindowWithRefundsAndKeepsOnlyOurs(t *testing.T) {
	var rec recorder
	p, err := stripe.New(stripe.Config{Name: "stripe-test", APIKey: "sk_test_123", BaseURL: rec.start(t, testkit.StripeMock(t)), Timeout: 10 * time.Second})
	require.NoError(t, err)
	since := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	until := since.Add(2 * time.Hour)
	list, err := p.ListCharges(context.Background(), since, until)
	require.NoError(t, err)
	assert.Empty(t, list, "no fixture carries our key")
	require.Positive(t, rec.count())
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, r := range rec.reqs {
		assert.Equal(t, http.MethodGet, r.method, "ListCharges only reads")
		assert.Equal(t, "/v1/payment_intents", r.path)
		assert.Equal(t, "1796637600", r.form.Get("created[gte]"))
		assert.Equal(t, "1796644800", r.form.Get("created[lt]"))
		assert.Equal(t, "100", r.form.Get("limit"))
		assert.Equal(t, "data.latest_charge", r.form.Get("expand[0]"), "%v", r.form)
	}
}

// The authorization lifecycle against stripe-mock: a PaymentIntent with
// manual capture (multicapture asked for), partial captures with
// amount_to_capture and final_capture, and a cancel for the void, each
// under its idempotency key. stripe-mock checks every request against
// Stripe's OpenAPI document and answers from fixtures, so what is asserted
// is what the adapter sent and that Stripe's API accepts it.
func TestAuthorizeCaptureAndVoidAgainstStripeMock(t *testing.T) {
	var rec recorder
	p, err := stripe.New(stripe.Config{Name: "stripe-test", APIKey: "sk_test_123", BaseURL: rec.start(t, testkit.StripeMock(t)), Timeout: 10 * time.Second})
	require.NoError(t, err)
	ctx := context.Background()
	key := "auth-" + uuid.NewString()

	auth, err := p.Authorize(ctx, payment.ChargeRequest{IdempotencyKey: key, Token: payment.TokenVisa, AmountCents: 1000, Currency: "USD", Description: "order x"})
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(auth.ID, "pi_"), auth.ID)
	create := rec.last()
	assert.Equal(t, "/v1/payment_intents", create.path)
	assert.Equal(t, key, create.idempotencyKey)
	assert.Equal(t, "manual", create.form.Get("capture_method"), "the amount is held, not taken")
	assert.Equal(t, "if_available", create.form.Get("payment_method_options[card][request_multicapture]"))
	assert.Equal(t, "true", create.form.Get("confirm"))

	_, err = p.Capture(ctx, payment.CaptureRequest{IdempotencyKey: "capture-" + key + "-s1", ChargeID: auth.ID, AmountCents: 300, Currency: "USD"})
	require.NoError(t, err)
	capture := rec.last()
	assert.Equal(t, "/v1/payment_intents/"+auth.ID+"/capture", capture.path)
	assert.Equal(t, "capture-"+key+"-s1", capture.idempotencyKey)
	assert.Equal(t, "300", capture.form.Get("amount_to_capture"))
	assert.Equal(t, "false", capture.form.Get("final_capture"), "more captures follow")

	_, err = p.Capture(ctx, payment.CaptureRequest{IdempotencyKey: "capture-" + key + "-s2", ChargeID: auth.ID, AmountCents: 700, Currency: "USD", Final: true})
	require.NoError(t, err)
	assert.Equal(t, "true", rec.last().form.Get("final_capture"))

	require.NoError(t, p.Void(ctx, payment.VoidRequest{IdempotencyKey: "void-" + key, ChargeID: auth.ID}))
	void := rec.last()
	assert.Equal(t, "/v1/payment_intents/"+auth.ID+"/cancel", void.path)
	assert.Equal(t, "void-"+key, void.idempotencyKey)
}
