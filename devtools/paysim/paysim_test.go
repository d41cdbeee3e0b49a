package paysim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/orderflow/orderflow/activities/payment"
	simclient "github.com/orderflow/orderflow/activities/payment/paysim"
	"github.com/orderflow/orderflow/devtools/paysim"
	"github.com/orderflow/orderflow/devtools/testkit"
)

// instance is one paysim server on a loopback port, its ledger in the test
// database under a name no other test uses.
type instance struct {
	t    *testing.T
	pool *pgxpool.Pool
	srv  *paysim.Server
	url  string
}

func newInstance(t *testing.T, pool *pgxpool.Pool, faults paysim.Faults) *instance {
	t.Helper()
	require.NoError(t, paysim.Migrate(context.Background(), pool))
	srv, err := paysim.NewServer(pool, "paysim-t-"+uuid.NewString()[:8], faults, zaptest.NewLogger(t))
	require.NoError(t, err)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	t.Cleanup(srv.Close)
	return &instance{t: t, pool: pool, srv: srv, url: hs.URL}
}

func (in *instance) client(timeout time.Duration) *simclient.Client {
	return simclient.NewClient(in.srv.Name(), in.url, timeout)
}

// rows counts the instance's ledger rows under an idempotency key.
func (in *instance) rows(key string) int {
	in.t.Helper()
	var n int
	require.NoError(in.t, in.pool.QueryRow(context.Background(),
		`SELECT count(*) FROM paysim.ledger WHERE instance = $1 AND idempotency_key = $2`, in.srv.Name(), key).Scan(&n))
	return n
}

func key() string { return "k-" + uuid.NewString() }

func visa(k string, amount int64) payment.ChargeRequest {
	return payment.ChargeRequest{IdempotencyKey: k, Token: payment.TokenVisa, AmountCents: amount, Currency: "USD", Description: "test"}
}

// ambiguous asserts the error class "may have been charged, retry with the
// same key": an error that is neither a decline nor ErrNotSent.
func ambiguous(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	var declined *payment.DeclinedError
	assert.False(t, errors.As(err, &declined), "not a decline: %v", err)
	assert.False(t, errors.Is(err, payment.ErrNotSent), "not ErrNotSent: %v", err)
}

func TestChargeAnswersOncePerIdempotencyKey(t *testing.T) {
	pool := testkit.DB(t)
	in := newInstance(t, pool, paysim.Faults{})
	c := in.client(10 * time.Second)
	ctx := context.Background()

	cases := []struct {
		name     string
		first    func(k string) payment.ChargeRequest
		second   func(k string) payment.ChargeRequest
		wantSame bool  // the second call returns the first charge
		wantErr  error // the second call's error
		wantRows int
	}{
		{name: "same key twice is one charge", first: func(k string) payment.ChargeRequest { return visa(k, 500) },
			second: func(k string) payment.ChargeRequest { return visa(k, 500) }, wantSame: true, wantRows: 1},
		{name: "same key with another amount is refused", first: func(k string) payment.ChargeRequest { return visa(k, 500) },
			second: func(k string) payment.ChargeRequest { return visa(k, 501) }, wantErr: simclient.ErrIdempotencyMismatch, wantRows: 1},
		{name: "same key with another currency is refused", first: func(k string) payment.ChargeRequest { return visa(k, 500) },
			second: func(k string) payment.ChargeRequest { r := visa(k, 500); r.Currency = "EUR"; return r }, wantErr: simclient.ErrIdempotencyMismatch, wantRows: 1},
		{name: "same key with another card is refused", first: func(k string) payment.ChargeRequest { return visa(k, 500) },
			second: func(k string) payment.ChargeRequest { r := visa(k, 500); r.Token = payment.TokenMastercard; return r }, wantErr: simclient.ErrIdempotencyMismatch, wantRows: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k := key()
			first, err := c.Charge(ctx, tc.first(k))
			require.NoError(t, err)
			assert.True(t, strings.HasPrefix(first.ID, "ch_"), first.ID)
			second, err := c.Charge(ctx, tc.second(k))
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				var apiErr *simclient.APIError
				require.ErrorAs(t, err, &apiErr)
				assert.Equal(t, http.StatusBadRequest, apiErr.Status)
				assert.Equal(t, "idempotency_error", apiErr.Type)
			} else {
				require.NoError(t, err)
			}
			if tc.wantSame {
				assert.Equal(t, first, second)
			}
			assert.Equal(t, tc.wantRows, in.rows(k))
			found, ok, err := c.FindCharge(ctx, k)
			require.NoError(t, err)
			require.True(t, ok)
			assert.Equal(t, first, found, "the ledger holds the first charge")
		})
	}
}

func TestTokensBehaveAsDocumented(t *testing.T) {
	pool := testkit.DB(t)
	in := newInstance(t, pool, paysim.Faults{})
	c := in.client(10 * time.Second)
	ctx := context.Background()

	cases := []struct {
		token       string
		failures    int    // ambiguous failures before the charge goes through; -1 never
		declineCode string // a definitive decline
	}{
		{token: payment.TokenVisa},
		{token: payment.TokenMastercard},
		{token: payment.TokenChargeDeclined, declineCode: "card_declined"},
		{token: "tok_nonsense", declineCode: "invalid_token"},
		{token: payment.TokenFlaky, failures: 2},
		{token: payment.TokenUnavailable, failures: -1},
	}
	for _, tc := range cases {
		t.Run(tc.token, func(t *testing.T) {
			k := key()
			req := payment.ChargeRequest{IdempotencyKey: k, Token: tc.token, AmountCents: 700, Currency: "USD"}
			if tc.declineCode != "" {
				for range 2 { // a decline is definitive: the same answer every time
					_, err := c.Charge(ctx, req)
					var declined *payment.DeclinedError
					require.ErrorAs(t, err, &declined)
					assert.Equal(t, tc.declineCode, declined.Code)
				}
				assert.Equal(t, 0, in.rows(k), "nothing charged")
				return
			}
			attempts := tc.failures
			if attempts < 0 {
				attempts = 3
			}
			for range attempts {
				_, err := c.Charge(ctx, req)
				ambiguous(t, err)
				var apiErr *simclient.APIError
				require.ErrorAs(t, err, &apiErr)
				assert.Equal(t, http.StatusServiceUnavailable, apiErr.Status)
				assert.Equal(t, 0, in.rows(k), "nothing charged yet")
			}
			_, err := c.Charge(ctx, req)
			if tc.failures < 0 {
				ambiguous(t, err)
				assert.Equal(t, 0, in.rows(k))
				return
			}
			require.NoError(t, err)
			assert.Equal(t, 1, in.rows(k))
		})
	}
}

func TestRefundReturnsMoneyOncePerKey(t *testing.T) {
	pool := testkit.DB(t)
	in := newInstance(t, pool, paysim.Faults{})
	other := newInstance(t, pool, paysim.Faults{})
	c := in.client(10 * time.Second)
	ctx := context.Background()
	refunds := func(chargeID string) (n int, sum int64) {
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(amount_cents), 0) FROM paysim.ledger
			WHERE instance = $1 AND charge_ref = $2 AND kind = 'refund'`, in.srv.Name(), chargeID).Scan(&n, &sum))
		return n, sum
	}

	cases := []struct {
		name      string
		refunds   []payment.RefundRequest // ChargeID "" means the test's charge; Idempotency keys are suffixes
		wantErr   error                   // of the last refund
		wantCount int
		wantSum   int64
	}{
		{name: "a refund replayed is one refund", refunds: []payment.RefundRequest{{IdempotencyKey: "r1"}, {IdempotencyKey: "r1"}}, wantCount: 1, wantSum: 1000},
		{name: "two partial refunds", refunds: []payment.RefundRequest{{IdempotencyKey: "r1", AmountCents: 400}, {IdempotencyKey: "r2", AmountCents: 600}}, wantCount: 2, wantSum: 1000},
		{name: "refunds never exceed the charge", refunds: []payment.RefundRequest{{IdempotencyKey: "r1", AmountCents: 400}, {IdempotencyKey: "r2", AmountCents: 601}},
			wantErr: simclient.ErrRefundTooLarge, wantCount: 1, wantSum: 400},
		{name: "a second full refund under another key is refused", refunds: []payment.RefundRequest{{IdempotencyKey: "r1"}, {IdempotencyKey: "r2"}},
			wantErr: simclient.ErrRefundTooLarge, wantCount: 1, wantSum: 1000},
		{name: "same refund key with another amount is refused", refunds: []payment.RefundRequest{{IdempotencyKey: "r1", AmountCents: 400}, {IdempotencyKey: "r1", AmountCents: 500}},
			wantErr: simclient.ErrIdempotencyMismatch, wantCount: 1, wantSum: 400},
		{name: "an unknown charge is refused", refunds: []payment.RefundRequest{{IdempotencyKey: "r1", ChargeID: "ch_nope"}},
			wantErr: simclient.ErrNoSuchCharge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k := key()
			ch, err := c.Charge(ctx, visa(k, 1000))
			require.NoError(t, err)
			var ids []string
			for i, r := range tc.refunds {
				r.IdempotencyKey = "refund-" + k + "-" + r.IdempotencyKey
				if r.ChargeID == "" {
					r.ChargeID = ch.ID
				}
				rf, err := c.Refund(ctx, r)
				if i == len(tc.refunds)-1 && tc.wantErr != nil {
					require.ErrorIs(t, err, tc.wantErr)
					continue
				}
				require.NoError(t, err)
				ids = append(ids, rf.ID)
			}
			if len(tc.refunds) == 2 && tc.refunds[0].IdempotencyKey == tc.refunds[1].IdempotencyKey && tc.wantErr == nil {
				assert.Equal(t, ids[0], ids[1], "the replay answers the first refund")
			}
			n, sum := refunds(ch.ID)
			assert.Equal(t, tc.wantCount, n)
			assert.Equal(t, tc.wantSum, sum)
		})
	}

	t.Run("a charge of another instance is unknown here", func(t *testing.T) {
		ch, err := other.client(10*time.Second).Charge(ctx, visa(key(), 1000))
		require.NoError(t, err)
		_, err = c.Refund(ctx, payment.RefundRequest{IdempotencyKey: key(), ChargeID: ch.ID})
		require.ErrorIs(t, err, simclient.ErrNoSuchCharge)
	})
}

func TestFindChargeLooksUpWithoutCharging(t *testing.T) {
	pool := testkit.DB(t)
	in := newInstance(t, pool, paysim.Faults{})
	c := in.client(10 * time.Second)
	ctx := context.Background()
	k := key()

	_, found, err := c.FindCharge(ctx, k)
	require.NoError(t, err)
	assert.False(t, found)
	assert.Equal(t, 0, in.rows(k), "a lookup never charges")

	ch, err := c.Charge(ctx, visa(k, 1234))
	require.NoError(t, err)
	got, found, err := c.FindCharge(ctx, k)
	require.NoError(t, err)
	assert.True(t, found)
	assert.Equal(t, payment.Charge{ID: ch.ID, AmountCents: 1234, Currency: "USD"}, got)
}

func TestInstancesKeepSeparateLedgers(t *testing.T) {
	pool := testkit.DB(t)
	a, b := newInstance(t, pool, paysim.Faults{}), newInstance(t, pool, paysim.Faults{})
	ca, cb := a.client(10*time.Second), b.client(10*time.Second)
	ctx := context.Background()
	k := key()

	cha, err := ca.Charge(ctx, visa(k, 100))
	require.NoError(t, err)
	_, found, err := cb.FindCharge(ctx, k)
	require.NoError(t, err)
	assert.False(t, found, "b does not see a's charge")

	chb, err := cb.Charge(ctx, visa(k, 250))
	require.NoError(t, err, "the same key at another instance is another charge, even with other parameters")
	assert.NotEqual(t, cha.ID, chb.ID)
	assert.Equal(t, 1, a.rows(k))
	assert.Equal(t, 1, b.rows(k))
	got, _, err := ca.FindCharge(ctx, k)
	require.NoError(t, err)
	assert.Equal(t, int64(100), got.AmountCents)
}

func TestFaultsReachTheClientAsTheRightErrorClass(t *testing.T) {
	pool := testkit.DB(t)
	ctx := context.Background()

	t.Run("a refused port is ErrNotSent", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := l.Addr().String()
		require.NoError(t, l.Close())
		c := simclient.NewClient("paysim-gone", "http://"+addr, 10*time.Second)
		_, err = c.Charge(ctx, visa(key(), 100))
		require.ErrorIs(t, err, payment.ErrNotSent)
		_, _, err = c.FindCharge(ctx, key())
		require.ErrorIs(t, err, payment.ErrNotSent)
		_, err = c.Refund(ctx, payment.RefundRequest{IdempotencyKey: key(), ChargeID: "ch_x"})
		require.ErrorIs(t, err, payment.ErrNotSent)
	})

	cases := []struct {
		name       string
		faults     paysim.Faults
		timeout    time.Duration
		wantStatus int // of the *APIError; 0: no answer at all
		health     int // GET /health under the fault
	}{
		{name: "error rate 1 answers 500 and charges nothing", faults: paysim.Faults{ErrorRate: 1}, wantStatus: 500, health: 200},
		{name: "an outage answers 503 and charges nothing", faults: paysim.Faults{Outage: true}, wantStatus: 503, health: 503},
		{name: "timeout rate 1 holds the request until the client gives up", faults: paysim.Faults{TimeoutRate: 1}, timeout: 300 * time.Millisecond, health: 200},
		{name: "latency beyond the client's timeout", faults: paysim.Faults{Latency: paysim.Duration(time.Minute)}, timeout: 300 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := newInstance(t, pool, tc.faults)
			timeout := tc.timeout
			if timeout == 0 {
				timeout = 10 * time.Second
			}
			c := in.client(timeout)
			k := key()
			_, err := c.Charge(ctx, visa(k, 100))
			ambiguous(t, err)
			var apiErr *simclient.APIError
			if tc.wantStatus != 0 {
				require.ErrorAs(t, err, &apiErr)
				assert.Equal(t, tc.wantStatus, apiErr.Status)
			} else {
				assert.False(t, errors.As(err, &apiErr), "no answer: %v", err)
			}
			assert.Equal(t, 0, in.rows(k), "nothing charged")
			if tc.health != 0 {
				res, err := http.Get(in.url + "/health")
				require.NoError(t, err)
				res.Body.Close()
				assert.Equal(t, tc.health, res.StatusCode)
			}

			require.NoError(t, in.srv.SetFaults(paysim.Faults{}))
			_, err = c.Charge(ctx, visa(k, 100))
			require.NoError(t, err, "the same key goes through once the fault is gone")
			assert.Equal(t, 1, in.rows(k))
		})
	}

	t.Run("a lost answer is an error but the charge is found and refundable", func(t *testing.T) {
		in := newInstance(t, pool, paysim.Faults{LostAnswerRate: 1})
		c := in.client(10 * time.Second)
		k := key()
		_, err := c.Charge(ctx, visa(k, 900))
		ambiguous(t, err)
		var apiErr *simclient.APIError
		require.ErrorAs(t, err, &apiErr)
		assert.Equal(t, 500, apiErr.Status)
		assert.Equal(t, 1, in.rows(k), "the charge was made")

		ch, found, err := c.FindCharge(ctx, k)
		require.NoError(t, err)
		require.True(t, found)
		assert.Equal(t, int64(900), ch.AmountCents)
		_, err = c.Refund(ctx, payment.RefundRequest{IdempotencyKey: "refund-" + k, ChargeID: ch.ID})
		require.NoError(t, err)

		require.NoError(t, in.srv.SetFaults(paysim.Faults{}))
		again, err := c.Charge(ctx, visa(k, 900))
		require.NoError(t, err)
		assert.Equal(t, ch.ID, again.ID, "a retry answers the charge that was made")
		assert.Equal(t, 1, in.rows(k))
	})
}

// admin sends a request to /admin/faults and decodes the answer.
func admin(t *testing.T, base, method, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, base+"/admin/faults", strings.NewReader(body))
	require.NoError(t, err)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var v map[string]any
	b, _ := io.ReadAll(res.Body)
	require.NoError(t, json.Unmarshal(b, &v), "JSON answer: %s", b)
	return res.StatusCode, v
}

func TestAdminEndpointChangesFaultsAtRunTime(t *testing.T) {
	pool := testkit.DB(t)
	in := newInstance(t, pool, paysim.Faults{})
	c := in.client(10 * time.Second)
	ctx := context.Background()

	status, f := admin(t, in.url, http.MethodGet, "")
	require.Equal(t, 200, status)
	assert.Equal(t, false, f["outage"])

	status, f = admin(t, in.url, http.MethodPut, `{"outage":true,"latency":"5ms"}`)
	require.Equal(t, 200, status)
	assert.Equal(t, true, f["outage"])
	assert.Equal(t, "5ms", f["latency"])
	k := key()
	_, err := c.Charge(ctx, visa(k, 100))
	ambiguous(t, err)
	assert.Equal(t, 0, in.rows(k))
	_, f = admin(t, in.url, http.MethodGet, "")
	assert.Equal(t, true, f["outage"], "the admin endpoint answers during an outage")

	status, _ = admin(t, in.url, http.MethodPut, `{}`)
	require.Equal(t, 200, status)
	_, err = c.Charge(ctx, visa(k, 100))
	require.NoError(t, err)

	for _, body := range []string{`{"error_rate":2}`, `{"lost_answer_rate":-0.1}`, `{"latency":"soon"}`, `{"outage":"yes"}`, `{"no_such_fault":1}`, `not json`} {
		status, v := admin(t, in.url, http.MethodPut, body)
		assert.Equal(t, 400, status, body)
		assert.Contains(t, v, "error", body)
	}
	assert.Equal(t, paysim.Faults{}, in.srv.Faults(), "refused faults change nothing")
	status, _ = admin(t, in.url, http.MethodDelete, "")
	assert.Equal(t, 405, status)
}

// The ledger lists the charges of a window, a page at a time, each with
// what of it was refunded, and never charges: the invariant monitor's
// reconciliation reads it so.
func TestListChargesPagesThroughAWindowWithTheirRefunds(t *testing.T) {
	pool := testkit.DB(t)
	in := newInstance(t, pool, paysim.Faults{})
	c := in.client(10 * time.Second)
	ctx := context.Background()
	first, err := c.Charge(ctx, visa(key(), 1000))
	require.NoError(t, err)
	_, err = c.Refund(ctx, payment.RefundRequest{IdempotencyKey: key(), ChargeID: first.ID, AmountCents: 300})
	require.NoError(t, err)
	_, err = c.Refund(ctx, payment.RefundRequest{IdempotencyKey: key(), ChargeID: first.ID, AmountCents: 200})
	require.NoError(t, err)
	// More than a page of charges, and one from before the window.
	for i := 0; i < simclient.MaxListLimit+4; i++ {
		_, err := pool.Exec(ctx, `INSERT INTO paysim.ledger (instance, idempotency_key, kind, ref, token, amount_cents, currency)
			VALUES ($1, $2, 'charge', $3, 'tok_visa', 50, 'USD')`, in.srv.Name(), key(), "ch_"+uuid.NewString())
		require.NoError(t, err)
	}
	old := "ch_" + uuid.NewString()
	_, err = pool.Exec(ctx, `INSERT INTO paysim.ledger (instance, idempotency_key, kind, ref, token, amount_cents, currency, created_at)
		VALUES ($1, $2, 'charge', $3, 'tok_visa', 50, 'USD', now() - interval '2 hours')`, in.srv.Name(), key(), old)
	require.NoError(t, err)
	before := rowsOf(t, pool, in.srv.Name())

	list, err := c.ListCharges(ctx, time.Now().Add(-time.Hour), time.Now().Add(time.Minute))
	require.NoError(t, err)
	require.Len(t, list, simclient.MaxListLimit+5, "every charge of the window, across pages")
	seen := map[string]bool{}
	for _, ch := range list {
		assert.False(t, seen[ch.ID], "listed once: %s", ch.ID)
		seen[ch.ID] = true
		assert.NotEqual(t, old, ch.ID, "the charge before the window is not listed")
		assert.NotEmpty(t, ch.IdempotencyKey)
		assert.WithinDuration(t, time.Now(), ch.Created, time.Hour)
	}
	assert.Equal(t, first.ID, list[0].ID, "oldest first")
	assert.Equal(t, int64(1000), list[0].AmountCents)
	assert.Equal(t, int64(500), list[0].RefundedCents, "what its two refunds returned")
	assert.Equal(t, before, rowsOf(t, pool, in.srv.Name()), "listing charges nothing")

	all, err := c.ListCharges(ctx, time.Time{}, time.Time{})
	require.NoError(t, err)
	assert.Len(t, all, simclient.MaxListLimit+6, "an open window lists them all")
}

func rowsOf(t *testing.T, pool *pgxpool.Pool, instance string) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM paysim.ledger WHERE instance = $1`, instance).Scan(&n))
	return n
}

func TestBadRequestsAreAnswered4xxWithStripesErrorShape(t *testing.T) {
	pool := testkit.DB(t)
	in := newInstance(t, pool, paysim.Faults{})
	form := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	valid := form("amount", "100", "currency", "USD", "source", payment.TokenVisa)
	cases := []struct {
		name, method, path, key, body string
		status                        int
		code                          string
	}{
		{name: "charge without idempotency key", method: "POST", path: "/v1/charges", body: valid, status: 400, code: "idempotency_key_required"},
		{name: "charge without amount", method: "POST", path: "/v1/charges", key: key(), body: form("currency", "USD", "source", "tok_visa"), status: 400, code: "parameter_invalid_integer"},
		{name: "charge with negative amount", method: "POST", path: "/v1/charges", key: key(), body: form("amount", "-5", "currency", "USD", "source", "tok_visa"), status: 400, code: "parameter_invalid_integer"},
		{name: "charge with a bad currency", method: "POST", path: "/v1/charges", key: key(), body: form("amount", "5", "currency", "dollars", "source", "tok_visa"), status: 400, code: "parameter_invalid"},
		{name: "charge without source", method: "POST", path: "/v1/charges", key: key(), body: form("amount", "5", "currency", "USD"), status: 400, code: "parameter_missing"},
		{name: "list with a bad created[gte]", method: "GET", path: "/v1/charges?created%5Bgte%5D=yesterday", status: 400, code: "parameter_invalid_integer"},
		{name: "list with a negative created[lt]", method: "GET", path: "/v1/charges?created%5Blt%5D=-1", status: 400, code: "parameter_invalid_integer"},
		{name: "list with limit 0", method: "GET", path: "/v1/charges?limit=0", status: 400, code: "parameter_invalid_integer"},
		{name: "list with limit 101", method: "GET", path: "/v1/charges?limit=101", status: 400, code: "parameter_invalid_integer"},
		{name: "refund without charge", method: "POST", path: "/v1/refunds", key: key(), body: form("amount", "5"), status: 400, code: "parameter_missing"},
		{name: "refund without idempotency key", method: "POST", path: "/v1/refunds", body: form("charge", "ch_x"), status: 400, code: "idempotency_key_required"},
		{name: "unknown path", method: "GET", path: "/v1/nothing", status: 404, code: "resource_missing"},
		{name: "wrong method", method: "DELETE", path: "/v1/charges", status: 405, code: "method_not_allowed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, in.url+tc.path, bytes.NewBufferString(tc.body))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.key != "" {
				req.Header.Set(simclient.HeaderIdempotencyKey, tc.key)
			}
			res, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer res.Body.Close()
			assert.Equal(t, tc.status, res.StatusCode)
			assert.Equal(t, "application/json", res.Header.Get("Content-Type"))
			var body struct {
				Error struct{ Type, Code, Message string }
			}
			require.NoError(t, json.NewDecoder(res.Body).Decode(&body))
			assert.Equal(t, "invalid_request_error", body.Error.Type)
			assert.Equal(t, tc.code, body.Error.Code)
			assert.NotEmpty(t, body.Error.Message)
			if tc.key != "" {
				assert.Equal(t, 0, in.rows(tc.key), "nothing charged")
			}
		})
	}
}
