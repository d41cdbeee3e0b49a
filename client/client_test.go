package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow/client"
)

// fake serves handler and returns a client of it with opts.
func fake(t *testing.T, handler http.HandlerFunc, opts ...client.Option) *client.Client {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return client.New(srv.URL+"/", opts...)
}

// apiError writes the gateway's JSON error body.
func apiError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "message": msg,
		"details": []map[string]string{{"field": "items[0].sku", "issue": "unknown sku X"}}}})
}

func TestPlaceOrderSendsTheKeyTokenRequestIDAndBodyAndReadsTheAnswerHeaders(t *testing.T) {
	var got *http.Request
	var body map[string]any
	c := fake(t, func(w http.ResponseWriter, r *http.Request) {
		got = r
		require.NoError(t, json.NewDecoder(r.Body).Decode(&body))
		w.Header().Set("Location", "/v1/orders/o-1")
		w.Header().Set(client.HeaderReplayed, "true")
		w.Header().Set(client.HeaderRequestID, r.Header.Get(client.HeaderRequestID))
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"order_id":"o-1","status":"PENDING","status_url":"/v1/orders/o-1"}`)
	}, client.WithToken("Bearer tok-1"), client.WithRequestID("req-7"))

	acc, status, err := c.PlaceOrder(context.Background(), client.OrderRequest{
		Items: []client.Item{{SKU: "A", Quantity: 2}}, PaymentToken: "tok_visa", Email: "a@example.com"}, "key-1")
	require.NoError(t, err)
	assert.Equal(t, http.StatusAccepted, status)
	assert.Equal(t, client.Accepted{OrderID: "o-1", Status: "PENDING", StatusURL: "/v1/orders/o-1", Location: "/v1/orders/o-1",
		Replayed: true, RequestID: "req-7"}, acc)

	assert.Equal(t, http.MethodPost, got.Method)
	assert.Equal(t, "/v1/orders", got.URL.Path, "the base URL's trailing slash is not doubled")
	assert.Equal(t, "key-1", got.Header.Get(client.HeaderIdempotencyKey))
	assert.Equal(t, "Bearer tok-1", got.Header.Get("Authorization"), "a token with its scheme is sent as it is")
	assert.Equal(t, "application/json", got.Header.Get("Content-Type"))
	assert.Equal(t, map[string]any{"items": []any{map[string]any{"sku": "A", "quantity": float64(2)}},
		"payment_token": "tok_visa", "email": "a@example.com"}, body, "an empty customer_id is left out")
}

func TestAnAPIErrorIsATypedErrorWithItsStatusCodeDetailsAndRetryAfter(t *testing.T) {
	c := fake(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "2")
		w.Header().Set(client.HeaderRequestID, "req-9")
		apiError(w, http.StatusServiceUnavailable, "temporal_unavailable", "retry with the same Idempotency-Key")
	})
	_, status, err := c.PlaceOrder(context.Background(), client.OrderRequest{}, "k")
	require.Error(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, status)
	var e *client.Error
	require.True(t, errors.As(err, &e), "errors.As finds the *Error behind %v", err)
	assert.Equal(t, &client.Error{Status: 503, Code: "temporal_unavailable", Message: "retry with the same Idempotency-Key",
		Details: []client.Detail{{Field: "items[0].sku", Issue: "unknown sku X"}}, RetryAfter: 2 * time.Second, RequestID: "req-9"}, e)
	assert.True(t, e.Temporary())
	assert.Equal(t, 503, client.StatusOf(err))
	assert.Equal(t, "temporal_unavailable", client.CodeOf(err))
	assert.Contains(t, err.Error(), "place order: 503 temporal_unavailable")
}

func TestAnErrorWithoutTheJSONBodyKeepsItsStatusAndText(t *testing.T) {
	c := fake(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat))
		http.Error(w, "bad gateway from the proxy", http.StatusBadGateway)
	})
	_, err := c.GetOrder(context.Background(), "o-1")
	var e *client.Error
	require.True(t, errors.As(err, &e))
	assert.Equal(t, http.StatusBadGateway, e.Status)
	assert.Empty(t, e.Code)
	assert.Equal(t, "bad gateway from the proxy", e.Message)
	assert.InDelta(t, time.Hour.Seconds(), e.RetryAfter.Seconds(), 5, "an HTTP-date Retry-After")
}

func TestNoAnswerIsATransportErrorWithStatusZero(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	c := client.New("http://" + addr)
	_, status, err := c.PlaceOrder(context.Background(), client.OrderRequest{}, "k")
	require.Error(t, err)
	assert.Zero(t, status)
	assert.Zero(t, client.StatusOf(err))
	var e *client.Error
	assert.False(t, errors.As(err, &e), "no *Error without an answer: %v", err)
}

func TestTheTokenSourceRunsPerRequestAndWithDerivesAClientWithoutChangingItsParent(t *testing.T) {
	var auths []string
	c := fake(t, func(w http.ResponseWriter, r *http.Request) {
		auths = append(auths, r.Header.Get("Authorization"))
		_, _ = io.WriteString(w, `{"products":[]}`)
	}, client.WithTokenSource(func(context.Context) (string, error) { return "", nil }))
	var n atomic.Int32
	minting := c.With(client.WithTokenSource(func(context.Context) (string, error) {
		return "jwt-" + string(rune('0'+n.Add(1))), nil
	}))
	for _, cl := range []*client.Client{minting, minting, c} {
		_, err := cl.ListProducts(context.Background(), client.ListOptions{})
		require.NoError(t, err)
	}
	assert.Equal(t, []string{"Bearer jwt-1", "Bearer jwt-2", ""}, auths, "a bare token gets its scheme; an empty one sends none")

	failing := c.With(client.WithTokenSource(func(context.Context) (string, error) { return "", errors.New("no key") }))
	_, err := failing.ListProducts(context.Background(), client.ListOptions{})
	assert.ErrorContains(t, err, "no key")
	assert.Len(t, auths, 3, "no request without its token")
}

func TestPathsAndQueriesAreEscaped(t *testing.T) {
	var paths []string
	c := fake(t, func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.EscapedPath()+"?"+r.URL.RawQuery)
		switch r.Method {
		case http.MethodPost:
			w.WriteHeader(http.StatusAccepted)
		case http.MethodGet:
			if r.URL.Path == "/v1/products" {
				_, _ = io.WriteString(w, `{"products":[{"sku":"B","available":3}]}`)
				return
			}
		}
		_, _ = io.WriteString(w, `{}`)
	})
	ctx := context.Background()
	_, err := c.GetOrder(ctx, "a/../b")
	require.NoError(t, err)
	_, err = c.CancelOrder(ctx, "x y")
	require.NoError(t, err)
	list, err := c.ListProducts(ctx, client.ListOptions{Limit: 2, After: "A&b"})
	require.NoError(t, err)
	assert.Equal(t, []client.Product{{SKU: "B", Available: 3}}, list)
	_, err = c.EraseCustomerPII(ctx, "c:1@x")
	require.NoError(t, err)
	assert.Equal(t, []string{"/v1/orders/a%2F..%2Fb?", "/v1/orders/x%20y/cancel?", "/v1/products?after=A%26b&limit=2",
		"/v1/customers/c:1@x/pii?"}, paths)
}

func TestPutProductTellsACreatedProductFromAnUpdate(t *testing.T) {
	status := http.StatusCreated
	c := fake(t, func(w http.ResponseWriter, r *http.Request) {
		var req map[string]any
		require.NoError(t, json.NewDecoder(r.Body).Decode(&req))
		assert.Equal(t, map[string]any{"name": "n", "price_cents": float64(100), "on_hand": float64(5)}, req, "no currency: the default")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `{"sku":"S","name":"n","price_cents":100,"currency":"USD","on_hand":5,"available":5}`)
	})
	p, created, err := c.PutProduct(context.Background(), "S", client.ProductRequest{Name: "n", PriceCents: 100, OnHand: 5})
	require.NoError(t, err)
	assert.True(t, created)
	assert.Equal(t, client.Product{SKU: "S", Name: "n", PriceCents: 100, Currency: "USD", OnHand: 5, Available: 5}, p)
	status = http.StatusOK
	_, created, err = c.PutProduct(context.Background(), "S", client.ProductRequest{Name: "n", PriceCents: 100, OnHand: 5})
	require.NoError(t, err)
	assert.False(t, created)
}

func TestAwaitTerminalReadsAgainUntilTheOrderEnds(t *testing.T) {
	var calls atomic.Int32
	c := fake(t, func(w http.ResponseWriter, r *http.Request) {
		switch calls.Add(1) {
		case 1:
			apiError(w, http.StatusServiceUnavailable, "order_not_ready", "not yet")
		case 2:
			_, _ = io.WriteString(w, `{"order_id":"o","status":"RESERVED"}`)
		default:
			_, _ = io.WriteString(w, `{"order_id":"o","status":"CONFIRMED"}`)
		}
	})
	o, err := c.AwaitTerminal(context.Background(), "o", time.Millisecond)
	require.NoError(t, err)
	assert.Equal(t, "CONFIRMED", o.Status)
	assert.Equal(t, int32(3), calls.Load())
}

func TestAwaitTerminalStopsOnAFinalErrorAndWhenItsContextEnds(t *testing.T) {
	forbidden := fake(t, func(w http.ResponseWriter, r *http.Request) { apiError(w, http.StatusForbidden, "forbidden", "no") })
	_, err := forbidden.AwaitTerminal(context.Background(), "o", time.Millisecond)
	assert.Equal(t, http.StatusForbidden, client.StatusOf(err))

	// The context ends during the third read: the second answer is the
	// last one, whatever the machine's speed.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var calls atomic.Int32
	pending := fake(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 3 {
			cancel()
			<-r.Context().Done()
			return
		}
		_, _ = io.WriteString(w, `{"status":"PENDING"}`)
	})
	o, err := pending.AwaitTerminal(ctx, "o", time.Millisecond)
	assert.ErrorIs(t, err, context.Canceled)
	assert.ErrorContains(t, err, "still PENDING")
	assert.Equal(t, "PENDING", o.Status, "the last answer")
}

func TestHealthReturnsTheReportAndOn503AnErrorNamingTheFailingChecks(t *testing.T) {
	status, body, cached := http.StatusOK, `{"status":"ok","checks":{"database":{"status":"ok","critical":true}}}`, false
	c := fake(t, func(w http.ResponseWriter, r *http.Request) {
		if cached {
			w.Header().Set(client.HeaderHealthCached, "true")
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	})
	ctx := context.Background()
	rep, err := c.Health(ctx)
	require.NoError(t, err)
	assert.Equal(t, client.HealthReport{Status: "ok", Checks: map[string]client.CheckResult{"database": {Status: "ok", Critical: true}},
		HTTPStatus: 200}, rep)

	status, cached = http.StatusServiceUnavailable, true
	body = `{"status":"fail","failing":["database","temporal"],"checks":{"database":{"status":"fail","critical":true,"error":"refused"}}}`
	rep, err = c.Ready(ctx)
	assert.Equal(t, 503, client.StatusOf(err))
	assert.ErrorContains(t, err, "failing: database, temporal")
	assert.Equal(t, []string{"database", "temporal"}, rep.Failing)
	assert.Equal(t, "refused", rep.Checks["database"].Error)
	assert.True(t, rep.Cached)
	assert.Equal(t, 503, rep.HTTPStatus)

	cached, body = false, `{"error":{"code":"health_check_running","message":"retry shortly"}}`
	rep, err = c.Deep(ctx)
	assert.Equal(t, "health_check_running", client.CodeOf(err))
	assert.Empty(t, rep.Status, "no report")
}

func TestListOrdersAndSearchProductsSendTheirParametersAndReadTheNextCursor(t *testing.T) {
	var queries []string
	c := fake(t, func(w http.ResponseWriter, r *http.Request) {
		queries = append(queries, r.URL.Path+"?"+r.URL.RawQuery)
		if r.URL.Path == "/v1/orders" {
			_, _ = io.WriteString(w, `{"orders":[{"order_id":"o-2","status":"FAILED","failure_reason":"payment_declined"}],"next":"b3x8"}`)
			return
		}
		_, _ = io.WriteString(w, `{"products":[{"sku":"S-1","name":"Red boots"}]}`)
	})
	ctx := context.Background()
	page, err := c.ListOrders(ctx, client.HistoryOptions{Status: "FAILED", Limit: 5, After: "a+b/c", CustomerID: "c:1"})
	require.NoError(t, err)
	assert.Equal(t, "b3x8", page.Next)
	require.Len(t, page.Orders, 1)
	assert.Equal(t, "payment_declined", *page.Orders[0].FailureReason)
	_, err = c.ListOrders(ctx, client.HistoryOptions{})
	require.NoError(t, err)
	found, err := c.SearchProducts(ctx, "red boots & more", client.SearchOptions{Limit: 3, After: "x y"})
	require.NoError(t, err)
	assert.Empty(t, found.Next, "the last page")
	assert.Equal(t, []client.Product{{SKU: "S-1", Name: "Red boots"}}, found.Products)
	assert.Equal(t, []string{
		"/v1/orders?after=a%2Bb%2Fc&customer_id=c%3A1&limit=5&status=FAILED",
		"/v1/orders?",
		"/v1/products?after=x+y&limit=3&q=red+boots+%26+more",
	}, queries)
}
