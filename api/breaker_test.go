package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/breaker"
	"github.com/orderflow/orderflow/internal/health"
	"github.com/orderflow/orderflow/internal/pii"
)

// tcpProxy is the network path from the gateway to a real server: Cut
// drops every connection and refuses new ones, as a lost host or a
// partition does; Restore lets them through again on the same address.
type tcpProxy struct {
	t      *testing.T
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	p := &tcpProxy{t: t, target: target, conns: map[net.Conn]struct{}{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.Cut)
	return p
}

func (p *tcpProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", p.target)
			if err != nil {
				_ = in.Close()
				continue
			}
			p.mu.Lock()
			p.conns[in], p.conns[out] = struct{}{}, struct{}{}
			p.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); _ = out.Close() }()
			go func() { _, _ = io.Copy(in, out); _ = in.Close() }()
		}
	}()
}

// Cut closes the listener and every connection through it.
func (p *tcpProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		_ = c.Close()
		delete(p.conns, c)
	}
}

// Restore listens again on the same address.
func (p *tcpProxy) Restore() {
	ln, err := net.Listen("tcp", p.addr)
	require.NoError(p.t, err)
	p.serve(ln)
}

// post sends one request from any goroutine (g.do may only run on the
// test's).
func (g *gateway) post(path string, header map[string]string, body any) (answer, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return answer{}, err
	}
	req, err := http.NewRequest(http.MethodPost, g.url+path, bytes.NewReader(b))
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer res.Body.Close()
	rb, _ := io.ReadAll(res.Body)
	return answer{status: res.StatusCode, header: res.Header, body: rb}, nil
}

// proxiedTemporal is a client of the real test Temporal server, with the
// test's PII converters, through a path the test cuts.
func proxiedTemporal(t *testing.T) (*tcpProxy, client.Client) {
	t.Helper()
	px := newTCPProxy(t, testkit.Require(t, testkit.EnvTemporal))
	dc, fc := pii.Converters(testkit.PII(t))
	tc, err := client.Dial(client.Options{HostPort: px.addr, Namespace: "default", DataConverter: dc, FailureConverter: fc})
	require.NoError(t, err)
	t.Cleanup(tc.Close)
	return px, tc
}

func assertRetryLater(t *testing.T, a answer) {
	t.Helper()
	assert.Equal(t, http.StatusServiceUnavailable, a.status, "%s", a.body)
	assert.Equal(t, "temporal_unavailable", a.errorCode(t))
	assert.NotEmpty(t, a.header.Get("Retry-After"))
}

// The gateway reaches the real test Temporal server through a path the
// test cuts. Placements during the cut get 503 with Retry-After, the
// Temporal breaker opens, and after the path is back a placement is still
// refused: by the open breaker, without a call to Temporal.
func TestTemporalDownOpensItsBreakerAndPlacementsAre503WithRetryAfter(t *testing.T) {
	px, tc := proxiedTemporal(t)
	// The design's 30 s open period, so the breaker is still open when the
	// test looks at it after the path is back.
	g := newGateway(t, testkit.Redis(t), func(s *Server) { s.Temporal = tc; s.Resilience.TemporalOpenTimeout = 30 * time.Second })
	sku := testkit.Product(t, g.pool, 500, 100)
	customer := "c-" + uuid.NewString()
	place := func() (answer, error) {
		return g.post("/v1/orders", g.customer(customer, HeaderIdempotencyKey, "k-"+uuid.NewString()), map[string]any{
			"customer_id": customer, "email": "b@example.com", "payment_token": "tok_visa",
			"items": []map[string]any{{"sku": sku, "quantity": 1}}, "shipping_address": testAddress})
	}
	a, err := place()
	require.NoError(t, err)
	require.Equal(t, http.StatusAccepted, a.status, "%s", a.body)
	br := g.srv.Breaker(BreakerTemporal)
	require.NotNil(t, br)
	require.False(t, br.Open())

	px.Cut()
	const burst = 12 // above the design's 10 calls in the window
	answers := make(chan answer, burst)
	var wg sync.WaitGroup
	for range burst {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if a, err := place(); err == nil {
				answers <- a
			}
		}()
	}
	wg.Wait()
	close(answers)
	n := 0
	for a := range answers {
		assertRetryLater(t, a)
		n++
	}
	require.Equal(t, burst, n)
	require.True(t, br.Open(), "the breaker is %s after %d failed starts", br.State(), burst)

	px.Restore()
	a, err = place()
	require.NoError(t, err)
	assertRetryLater(t, a)
	ra, err := strconv.Atoi(a.header.Get("Retry-After"))
	require.NoError(t, err)
	assert.Greater(t, ra, 1, "the refusal names what is left of the breaker's 30 s open period")

	rep := g.do(http.MethodGet, "/health", nil, nil)
	var report health.Report
	require.NoError(t, json.Unmarshal(rep.body, &report), "%s", rep.body)
	assert.Contains(t, report.Failing, "breaker:"+BreakerTemporal, "%s", rep.body)
	assert.Equal(t, "open", report.Checks["breaker:"+BreakerTemporal].Detail)
}

// openTemporalBreaker fails calls through the gateway's Temporal breaker
// as a lost frontend does until it opens.
func openTemporalBreaker(t *testing.T, br *breaker.Breaker) {
	t.Helper()
	for i := 0; i < 50 && !br.Open(); i++ {
		_ = br.Do(func() error { return serviceerror.NewUnavailable("frontend lost") })
	}
	require.True(t, br.Open(), "the breaker is %s", br.State())
}

// readyReport is GET /health/ready's answer (path may carry a query).
func readyReport(t *testing.T, g *gateway, path string) (int, health.Report) {
	t.Helper()
	a := g.do(http.MethodGet, path, nil, nil)
	var rep health.Report
	require.NoError(t, json.Unmarshal(a.body, &rep), "%s", a.body)
	return a.status, rep
}

// While the gateway's Temporal breaker is open the gateway refuses every
// placement, so its readiness fails and the balancer sends them to another
// gateway; the balancer's fallback check (?exclude=breaker:temporal) and
// /health still pass. The breaker stays open for the Temporal breaker's own
// period (5 s unless set), not the design's 30 s; then its trial calls go
// through, the gateway is ready again, and three good placements close it.
func TestAnOpenTemporalBreakerFailsReadinessUntilItsShortOpenPeriodEnds(t *testing.T) {
	g := newGateway(t, testkit.Redis(t), nil)
	status, _ := readyReport(t, g, "/health/ready")
	require.Equal(t, http.StatusOK, status)
	br := g.srv.Breaker(BreakerTemporal)
	require.NotNil(t, br)
	openTemporalBreaker(t, br)
	assert.LessOrEqual(t, br.RetryAfter(), DefaultTemporalOpenTimeout, "open for the Temporal breaker's own period, not the design's 30 s")

	status, rep := readyReport(t, g, "/health/ready")
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.Equal(t, health.StatusFail, rep.Status)
	assert.Contains(t, rep.Failing, CheckTemporalBreaker)
	assert.True(t, rep.Checks[CheckTemporalBreaker].Critical, "critical for readiness")
	status, rep = readyReport(t, g, "/health/ready?exclude="+CheckTemporalBreaker)
	assert.Equal(t, http.StatusOK, status, "the fallback's check leaves the breaker out")
	assert.False(t, rep.Checks[CheckTemporalBreaker].Critical)
	status, rep = readyReport(t, g, "/health")
	assert.Equal(t, http.StatusOK, status, "/health only degrades")
	assert.Equal(t, health.StatusDegraded, rep.Status)
	a := g.do(http.MethodGet, "/health/ready?exclude=database", nil, nil)
	assert.Equal(t, http.StatusBadRequest, a.status, "%s", a.body)
	assert.Equal(t, "invalid_request", a.errorCode(t))

	// The breaker lets trial calls through once its open period ends, and
	// readiness follows.
	// (Polled here: g.do runs on the test's goroutine only.)
	for deadline := time.Now().Add(3 * DefaultTemporalOpenTimeout); ; time.Sleep(100 * time.Millisecond) {
		if status, _ := readyReport(t, g, "/health/ready"); status == http.StatusOK {
			break
		}
		require.False(t, time.Now().After(deadline), "still not ready, the breaker %s", br.State())
	}
	assert.Equal(t, "half-open", br.State())
	sku := testkit.Product(t, g.pool, 500, 10)
	customer := "c-" + uuid.NewString()
	for range 3 {
		a := g.do(http.MethodPost, "/v1/orders", g.customer(customer, HeaderIdempotencyKey, "k-"+uuid.NewString()), map[string]any{
			"customer_id": customer, "email": "b@example.com", "payment_token": "tok_visa",
			"items": []map[string]any{{"sku": sku, "quantity": 1}}, "shipping_address": testAddress})
		require.Equal(t, http.StatusAccepted, a.status, "%s", a.body)
	}
	assert.Equal(t, "closed", br.State(), "three good trial calls close it")
}

// Redis is a private server the test stops: reads keep answering from
// PostgreSQL, the Redis breaker opens, and once Redis is back the breaker
// still fails the client's calls fast until its open period ends.
func TestRedisDownOpensItsBreakerAndReadsFallBackToTheDatabase(t *testing.T) {
	rs := testkit.NewRedisServer(t)
	rc := rs.Client()
	g := newGateway(t, rc, nil)
	sku := testkit.Product(t, g.pool, 500, 3)
	require.Equal(t, http.StatusOK, g.do(http.MethodGet, "/v1/products/"+sku, nil, nil).status)
	br := g.srv.Breaker(BreakerRedis)
	require.NotNil(t, br)

	rs.Stop()
	for i := 0; i < 20 && !br.Open(); i++ {
		a := g.do(http.MethodGet, "/v1/products/"+sku, nil, nil)
		require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	}
	require.True(t, br.Open(), "the breaker is %s", br.State())

	rs.Start()
	a := g.do(http.MethodGet, "/v1/products/"+sku, map[string]string{echo.HeaderAccept: "application/json"}, nil)
	assert.Equal(t, http.StatusOK, a.status, "%s", a.body)
	require.NoError(t, rc.Ping(context.Background()).Err(), "health checks see Redis itself")
	assert.ErrorIs(t, rc.Get(context.Background(), "any").Err(), breaker.ErrOpen, "Redis is back but the open breaker fails calls fast")
}
