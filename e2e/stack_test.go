// Package e2e drives orderflow through its HTTP API against the real stack
// `make test` starts: PostgreSQL, Redis and a Temporal dev server. The gateway
// and a worker run in-process on a task queue of the test's own, so tests
// never pick up each other's sagas.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap/zaptest"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/api"
	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/bulkhead"
	"github.com/orderflow/orderflow/internal/config"
	"github.com/orderflow/orderflow/workers"
)

type stack struct {
	t        *testing.T
	pool     *pgxpool.Pool
	rc       *redis.Client
	temporal client.Client
	region   string
	url      string
	// tok mints the tokens the gateway accepts.
	tok testkit.Tokens
}

// e2eBreaker has the design's thresholds but a 2 s open state, so a test that
// trips it (a provider failing every call) does not hold up the next test.
var e2eBreaker = breakerOpenFor(2 * time.Second)

// breakerOpenFor is the design's breaker (the defaults of PAYMENT_BREAKER_*)
// with a shorter open state, so tests see it go half-open in their own time.
func breakerOpenFor(d time.Duration) payment.BreakerSettings {
	s := testkit.Breaker()
	s.OpenTimeout = d
	return s
}

// designShares are the declared bulkhead shares (60/30/10).
var designShares = bulkhead.Shares{CriticalPct: config.BulkheadCriticalPct.Default(),
	NonCriticalPct: config.BulkheadNonCriticalPct.Default(), AdminPct: config.BulkheadAdminPct.Default()}

// newStack starts a gateway on an httptest server and, unless noWorker, a
// worker for the test's own region.
func newStack(t *testing.T, withWorker bool, configure ...func(*api.Server)) *stack {
	t.Helper()
	s := &stack{
		t: t, pool: testkit.DB(t), rc: testkit.Redis(t), temporal: testkit.Temporal(t),
		region: "e2e-" + uuid.NewString()[:8], tok: testkit.Auth(t),
	}
	// The gateway as `make run` builds it, limits on, but with room for the
	// suite's many orders from 127.0.0.1; parked orders give up after 3 s
	// here, so a test can watch one end.
	srv := &api.Server{DB: s.pool, Cache: s.rc, Temporal: s.temporal, Log: zaptest.NewLogger(t), Auth: s.tok.Auth,
		Config: api.Config{Region: s.region,
			RateLimit: api.RateLimit{Enabled: true, PerUser: 1_000_000, PerIP: 1_000_000, Period: time.Minute},
			Bulkhead:  api.Bulkhead{MaxInFlight: config.GatewayMaxInFlight.Default(), Shares: designShares},
			Payment:   api.PaymentSchedule{Deadline: 3 * time.Second, RetryInitial: 500 * time.Millisecond, RetryMax: time.Second}}}
	for _, c := range configure {
		c(srv)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	s.url = hs.URL
	if withWorker {
		s.startWorker()
	}
	return s
}

func (s *stack) startWorker() {
	_, provider := testkit.Paysim(s.t, s.pool, "paysim-e2e")
	w := workers.New(s.temporal, workers.Deps{DB: s.pool, Cache: s.rc, PII: testkit.PII(s.t), Payments: payment.NewRouter(e2eBreaker, provider)},
		workers.Config{Region: s.region})
	if err := w.Start(); err != nil {
		s.t.Fatalf("start worker: %v", err)
	}
	s.t.Cleanup(w.Stop)
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %d response %q: %v", r.status, r.body, err)
	}
}

func (s *stack) do(method, path string, header map[string]string, body []byte) response {
	s.t.Helper()
	req, err := http.NewRequest(method, s.url+path, bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	// An operator's token unless the test brings its own (an empty one
	// sends none): operators read and cancel any order.
	req.Header.Set("Authorization", s.tok.Operator())
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if req.Header.Get("Authorization") == "" {
		req.Header.Del("Authorization")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: b}
}

type orderReq struct {
	CustomerID      string             `json:"customer_id"`
	Items           []api.OrderItem    `json:"items"`
	PaymentToken    string             `json:"payment_token"`
	Email           string             `json:"email"`
	ShippingAddress *orderflow.Address `json:"shipping_address,omitempty"`
}

func newOrder(customer, token string, items ...api.OrderItem) orderReq {
	return orderReq{CustomerID: customer, Items: items, PaymentToken: token, Email: "buyer@example.com", ShippingAddress: shipTo()}
}

// shipTo is a valid shipping address.
func shipTo() *orderflow.Address {
	return &orderflow.Address{Name: "Ada Buyer", Line1: "12 Test Street", Line2: "Flat 3", City: "Berlin", PostalCode: "10115", Country: "DE"}
}

// as returns the Authorization header of customer id.
func (s *stack) as(customer string) string { return s.tok.Bearer(customer, auth.RoleCustomer) }

// place posts the order with the token of its customer.
func (s *stack) place(key string, o orderReq) response {
	s.t.Helper()
	b, _ := json.Marshal(o)
	return s.do(http.MethodPost, "/v1/orders", map[string]string{api.HeaderIdempotencyKey: key, "Authorization": s.as(o.CustomerID)}, b)
}

// placeOK places an order and returns its id, failing unless it is accepted.
func (s *stack) placeOK(o orderReq) string {
	s.t.Helper()
	r := s.place(uuid.NewString(), o)
	if r.status != http.StatusAccepted {
		s.t.Fatalf("place order: %d %s", r.status, r.body)
	}
	var a api.Accepted
	r.json(s.t, &a)
	return a.OrderID
}

func (s *stack) order(id string) (api.OrderJSON, int) {
	s.t.Helper()
	r := s.do(http.MethodGet, "/v1/orders/"+id, nil, nil)
	var o api.OrderJSON
	if r.status == http.StatusOK {
		r.json(s.t, &o)
	}
	return o, r.status
}

// waitTerminal polls the API until the order is CONFIRMED, FAILED or CANCELLED.
func (s *stack) waitTerminal(id string) api.OrderJSON {
	s.t.Helper()
	return s.waitTerminalUntil(id, time.Now().Add(30*time.Second))
}

// waitTerminalUntil polls the order until it has ended, failing the test at
// deadline.
func (s *stack) waitTerminalUntil(id string, deadline time.Time) api.OrderJSON {
	s.t.Helper()
	for {
		o, status := s.order(id)
		if status == http.StatusOK && orderflow.Terminal(o.Status) {
			return o
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("order %s not terminal by %s: %d %+v", id, deadline.Format(time.TimeOnly), status, o)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// workflowsOf counts the Order workflows visibility knows for a customer.
func (s *stack) workflowsOf(customer string) int {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := s.temporal.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: "default", Query: `CustomerId = "` + customer + `"`})
	if err != nil {
		s.t.Fatalf("count workflows: %v", err)
	}
	return int(res.Count)
}
