package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/orders"
	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/auth"
)

// countsUpdates passes every call to the real Temporal client and counts
// the updates (cancels) it sends.
type countsUpdates struct {
	client.Client
	updates atomic.Int32
}

func (c *countsUpdates) UpdateWorkflow(ctx context.Context, o client.UpdateWorkflowOptions) (client.WorkflowUpdateHandle, error) {
	c.updates.Add(1)
	return c.Client.UpdateWorkflow(ctx, o)
}

// all sends n copies of one request at once and returns their answers.
func (g *gateway) all(n int, method, path string, header map[string]string, body any) []answer {
	g.t.Helper()
	var b []byte
	if body != nil {
		var err error
		b, err = json.Marshal(body)
		require.NoError(g.t, err)
	}
	out := make([]answer, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, err := http.NewRequest(method, g.url+path, bytes.NewReader(b))
			if err != nil {
				errs[i] = err
				return
			}
			req.Header.Set(echo.HeaderContentType, "application/json")
			req.Header.Set(echo.HeaderAuthorization, g.tok.Bearer("admin-test", auth.RoleAdmin))
			for k, v := range header {
				req.Header.Set(k, v)
			}
			<-start
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			defer res.Body.Close()
			rb, err := io.ReadAll(res.Body)
			out[i], errs[i] = answer{status: res.StatusCode, header: res.Header, body: rb}, err
		}()
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		require.NoError(g.t, err)
	}
	return out
}

// sameAnswers checks that every answer has the status and the same JSON
// body, and that all but one say they were replayed.
func sameAnswers(t *testing.T, got []answer, status int) {
	t.Helper()
	replayed := 0
	var first any
	for i, a := range got {
		require.Equal(t, status, a.status, "answer %d: %s", i, a.body)
		var v any
		require.NoError(t, json.Unmarshal(a.body, &v), "answer %d", i)
		if i == 0 {
			first = v
		}
		assert.Equal(t, first, v, "answer %d differs from the first", i)
		if a.header.Get(HeaderReplayed) == "true" {
			replayed++
		}
	}
	assert.Equal(t, len(got)-1, replayed, "every answer but the one that acted is a replay")
}

func (g *gateway) auditRows(target string) int {
	g.t.Helper()
	var n int
	require.NoError(g.t, g.pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_log WHERE target = $1`, target).Scan(&n))
	return n
}

// Concurrent cancels of an operator under one Idempotency-Key reach the
// saga once, are recorded once in the audit log and all get one answer;
// without a key each one acts.
func TestConcurrentCancelsUnderOneKeyActOnceAndAnswerAlike(t *testing.T) {
	var tc *countsUpdates
	g := newGateway(t, testkit.Redis(t), func(s *Server) { tc = &countsUpdates{Client: s.Temporal}; s.Temporal = tc })
	id := uuid.NewString()
	_, err := g.pool.Exec(context.Background(), `INSERT INTO orders (order_id, customer_id, region, status, total_cents, currency)
		VALUES ($1, 'c-idem', 'test', $2, 100, 'USD')`, id, orderflow.StatusCancelled)
	require.NoError(t, err)

	got := g.all(6, http.MethodPost, "/v1/orders/"+id+"/cancel", map[string]string{HeaderIdempotencyKey: "cancel-" + id}, nil)
	sameAnswers(t, got, http.StatusAccepted)
	assert.EqualValues(t, 1, tc.updates.Load(), "updates sent to the saga")
	assert.Equal(t, 1, g.auditRows("order:"+id), "audit rows of the cancel")

	for range 2 {
		a := g.do(http.MethodPost, "/v1/orders/"+id+"/cancel", nil, nil)
		require.Equal(t, http.StatusAccepted, a.status, "%s", a.body)
	}
	assert.EqualValues(t, 3, tc.updates.Load(), "without a key every cancel is sent")
}

// deliveredOrder takes an order of customer through the activities to
// DELIVERED, as its saga would, and returns its id.
func deliveredOrder(t *testing.T, g *gateway, customer string, items ...orderflow.Item) string {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	return testkit.DeliveredOrder(t, suite.NewTestActivityEnvironment(), g.pool, testkit.Redis(t), customer, items...)
}

// Concurrent returns under one Idempotency-Key create one return and all
// answer it; another key creates another, and the key with another body
// is refused with 422.
func TestConcurrentReturnsUnderOneKeyCreateOneReturn(t *testing.T) {
	g := newGateway(t, testkit.Redis(t), nil)
	sku := testkit.Product(t, g.pool, 250, 10)
	id := deliveredOrder(t, g, "c-idem-ret", orderflow.Item{SKU: sku, Quantity: 3})
	count := func() int {
		var n int
		require.NoError(t, g.pool.QueryRow(context.Background(), `SELECT count(*) FROM returns WHERE order_id = $1`, id).Scan(&n))
		return n
	}
	customer := g.customer("c-idem-ret", HeaderIdempotencyKey, "return-1-"+id)
	body := ReturnRequest{Items: []OrderItem{{SKU: sku, Quantity: 1}}, Reason: "too small"}

	got := g.all(6, http.MethodPost, "/v1/orders/"+id+"/returns", customer, body)
	sameAnswers(t, got, http.StatusCreated)
	assert.Equal(t, 1, count(), "returns created")
	for _, a := range got {
		assert.Equal(t, got[0].header.Get(echo.HeaderLocation), a.header.Get(echo.HeaderLocation), "Location of a replay")
	}

	a := g.do(http.MethodPost, "/v1/orders/"+id+"/returns", customer, ReturnRequest{Items: []OrderItem{{SKU: sku, Quantity: 2}}})
	assert.Equal(t, http.StatusUnprocessableEntity, a.status, "%s", a.body)
	assert.Equal(t, "idempotency_key_reused", a.errorCode(t))

	a = g.do(http.MethodPost, "/v1/orders/"+id+"/returns", g.customer("c-idem-ret", HeaderIdempotencyKey, "return-2-"+id), body)
	assert.Equal(t, http.StatusCreated, a.status, "%s", a.body)
	assert.Equal(t, 2, count(), "another key, another return")
}

// A request that fails lets its key go: the retry with the key runs, and
// its success is what later copies get.
func TestAFailedRequestReleasesItsKey(t *testing.T) {
	g := newGateway(t, testkit.Redis(t), nil)
	sku := "IDEM-" + uuid.NewString()[:8]
	key := map[string]string{HeaderIdempotencyKey: "put-" + sku}
	put := PutProductRequest{Name: ptr("widget"), PriceCents: ptr(int64(120)), OnHand: ptr(5)}

	a := g.do(http.MethodPut, "/v1/products/"+sku, map[string]string{HeaderIdempotencyKey: "put-" + sku, HeaderAuditReason: strings.Repeat("r", maxAuditReason+1)}, put)
	require.Equal(t, http.StatusBadRequest, a.status, "%s", a.body)
	assert.Equal(t, "invalid_audit_reason", a.errorCode(t))

	a = g.do(http.MethodPut, "/v1/products/"+sku, key, put)
	require.Equal(t, http.StatusCreated, a.status, "%s", a.body)
	assert.Empty(t, a.header.Get(HeaderReplayed))
	b := g.do(http.MethodPut, "/v1/products/"+sku, key, put)
	require.Equal(t, http.StatusCreated, b.status, "the replay answers the first 201, not a 200 of a second write: %s", b.body)
	assert.Equal(t, "true", b.header.Get(HeaderReplayed))
	assert.Equal(t, 1, g.auditRows("product:"+sku), "audit rows of the product")
}

func TestAMalformedIdempotencyKeyIsRefusedWith400(t *testing.T) {
	g := newGateway(t, testkit.Redis(t), nil)
	for _, k := range []string{"", strings.Repeat("k", 256), "tab\tkey"} {
		a := g.do(http.MethodPost, "/v1/stock/transfers", map[string]string{HeaderIdempotencyKey: k},
			TransferRequest{SKU: "X", From: "a", To: "b", Quantity: 1})
		assert.Equal(t, http.StatusBadRequest, a.status, "key %q: %s", k, a.body)
		assert.Equal(t, "invalid_idempotency_key", a.errorCode(t), "key %q", k)
	}
}

func ptr[T any](v T) *T { return &v }

// A copy of a request that is still running waits for its answer and, when
// none comes within the request budget, is told to retry (409
// idempotency_key_in_use) without acting; once the first has answered,
// copies get that answer. A claim whose owner died (its lease passed) is
// taken over, and the request acts.
func TestACopyWaitsForTheRunningFirstAndAnOrphanedClaimIsTakenOver(t *testing.T) {
	g := newGateway(t, testkit.Redis(t), nil)
	ctx := context.Background()
	store := orders.Store{DB: g.pool}
	sku := "IDEM-" + uuid.NewString()[:8]
	path := "/v1/products/" + sku
	put := PutProductRequest{Name: ptr("kettle"), PriceCents: ptr(int64(3100)), OnHand: ptr(4)}
	body, err := json.Marshal(put)
	require.NoError(t, err)
	hash := fingerprint(http.MethodPut, path, body)
	op := "PUT /v1/products/:sku"
	running, orphaned := "running-"+sku, "orphaned-"+sku

	// A first request in flight on another gateway.
	claimed, err := store.ClaimRequest(ctx, "admin-test", op, running, hash, time.Minute, time.Hour)
	require.NoError(t, err)
	require.True(t, claimed)
	a := g.do(http.MethodPut, path, map[string]string{HeaderIdempotencyKey: running}, put)
	assert.Equal(t, http.StatusConflict, a.status, "%s", a.body)
	assert.Equal(t, "idempotency_key_in_use", a.errorCode(t))
	assert.Equal(t, "1", a.header.Get("Retry-After"))
	assert.Zero(t, g.auditRows("product:"+sku), "the copy acted")

	require.NoError(t, store.CompleteRequest(ctx, "admin-test", op, running, http.StatusCreated, []byte(`{"sku":"`+sku+`"}`), ""))
	a = g.do(http.MethodPut, path, map[string]string{HeaderIdempotencyKey: running}, put)
	assert.Equal(t, http.StatusCreated, a.status, "%s", a.body)
	assert.JSONEq(t, `{"sku":"`+sku+`"}`, string(a.body), "the first request's answer")
	assert.Equal(t, "true", a.header.Get(HeaderReplayed))
	assert.Zero(t, g.auditRows("product:"+sku), "the copy acted")

	// A claim whose lease has passed: its gateway died mid-request.
	claimed, err = store.ClaimRequest(ctx, "admin-test", op, orphaned, hash, -time.Second, time.Hour)
	require.NoError(t, err)
	require.True(t, claimed)
	a = g.do(http.MethodPut, path, map[string]string{HeaderIdempotencyKey: orphaned}, put)
	assert.Equal(t, http.StatusCreated, a.status, "%s", a.body)
	assert.Empty(t, a.header.Get(HeaderReplayed))
	assert.Equal(t, 1, g.auditRows("product:"+sku), "the request that took the claim over acted")
}
