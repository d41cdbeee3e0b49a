package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/auth"
)

// gateway is a Server on an httptest listener, against the real test
// PostgreSQL and a real Redis.
type gateway struct {
	t    *testing.T
	srv  *Server
	url  string
	pool *pgxpool.Pool
	tok  testkit.Tokens
}

func newGateway(t *testing.T, rc *redis.Client, configure func(*Server)) *gateway {
	t.Helper()
	pool := testkit.DB(t)
	// A Temporal client too, so /health (checked as exempt from limits and
	// shedding) answers 200.
	tok := testkit.Auth(t)
	// The test client stands for the ingress: loopback is a trusted proxy, so
	// the X-Forwarded-For the tests send is the client's address.
	srv := &Server{DB: pool, Cache: rc, Temporal: testkit.Temporal(t), Log: zaptest.NewLogger(t), Auth: tok.Auth,
		Config: Config{Region: "test", TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}}}
	if configure != nil {
		configure(srv)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &gateway{t: t, srv: srv, url: hs.URL, pool: pool, tok: tok}
}

// customer returns headers carrying a customer token for id, plus extra
// header pairs.
func (g *gateway) customer(id string, kv ...string) map[string]string {
	h := map[string]string{echo.HeaderAuthorization: g.tok.Bearer(id, auth.RoleCustomer)}
	for i := 0; i+1 < len(kv); i += 2 {
		h[kv[i]] = kv[i+1]
	}
	return h
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) errorCode(t *testing.T) string {
	t.Helper()
	var b struct {
		Error Error `json:"error"`
	}
	require.NoError(t, json.Unmarshal(a.body, &b), "JSON error body: %s", a.body)
	return b.Error.Code
}

func (g *gateway) do(method, path string, header map[string]string, body any) answer {
	g.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(g.t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, g.url+path, rd)
	require.NoError(g.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	// An admin's token unless the test brings its own (an empty one sends
	// none).
	req.Header.Set(echo.HeaderAuthorization, g.tok.Bearer("admin-test", auth.RoleAdmin))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if req.Header.Get(echo.HeaderAuthorization) == "" {
		req.Header.Del(echo.HeaderAuthorization)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(g.t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return answer{status: res.StatusCode, header: res.Header, body: b}
}

// clientIP is an address no other test or run uses (the test Redis keeps
// buckets across runs), sent as the ingress would in X-Forwarded-For.
func clientIP() string {
	u := uuid.New()
	return fmt.Sprintf("2001:db8::%x:%x:%x", u[0:2], u[2:4], u[4:6])
}

func limits(perUser, perIP int, period time.Duration) func(*Server) {
	return func(s *Server) {
		s.RateLimit = RateLimit{Enabled: true, PerUser: perUser, PerIP: perIP, Period: period}
	}
}

func headerInt(t *testing.T, a answer, name string) int {
	t.Helper()
	v := a.header.Get(name)
	n, err := strconv.Atoi(v)
	require.NoError(t, err, "%s: %q", name, v)
	return n
}

func TestRateLimitRefusesThe101stRequestOfACustomerWithRetryAfter(t *testing.T) {
	// An hour-long period keeps GCRA from refilling a token while the test
	// runs (one token per 36 s), so the count is exact on a slow machine.
	g := newGateway(t, testkit.Redis(t), limits(100, 1_000_000, time.Hour))
	sku := testkit.Product(t, g.pool, 500, 3)
	h := g.customer("c-"+uuid.NewString(), "X-Forwarded-For", clientIP())

	for i := 1; i <= 100; i++ {
		a := g.do(http.MethodGet, "/v1/products/"+sku, h, nil)
		require.Equal(t, http.StatusOK, a.status, "request %d: %s", i, a.body)
		assert.Equal(t, 100, headerInt(t, a, HeaderRateLimitLimit))
		assert.Equal(t, 100-i, headerInt(t, a, HeaderRateLimitRemaining), "request %d", i)
		reset := headerInt(t, a, HeaderRateLimitReset)
		// 36 s per token used, less the time since the first request,
		// rounded up (a float's last digit may add a second).
		assert.True(t, reset >= 36*(i-1) && reset <= 36*i+1, "request %d: reset %d s", i, reset)
		assert.Empty(t, a.header.Get("Retry-After"))
	}
	a := g.do(http.MethodGet, "/v1/products/"+sku, h, nil)
	require.Equal(t, http.StatusTooManyRequests, a.status)
	assert.Equal(t, "rate_limited", a.errorCode(t))
	retry := headerInt(t, a, "Retry-After")
	assert.True(t, retry >= 1 && retry <= 36, "the next token comes within one emission interval (36 s): Retry-After %d", retry)
	assert.Equal(t, 0, headerInt(t, a, HeaderRateLimitRemaining))
	assert.Equal(t, 100, headerInt(t, a, HeaderRateLimitLimit))

	t.Run("another customer from the same address is not limited", func(t *testing.T) {
		other := g.customer("c-"+uuid.NewString(), "X-Forwarded-For", h["X-Forwarded-For"])
		a := g.do(http.MethodGet, "/v1/products/"+sku, other, nil)
		assert.Equal(t, http.StatusOK, a.status)
	})
	t.Run("health is exempt", func(t *testing.T) {
		a := g.do(http.MethodGet, "/health", h, nil)
		assert.Equal(t, http.StatusOK, a.status)
		assert.Empty(t, a.header.Get(HeaderRateLimitLimit))
	})
}

func TestRetryAfterIsLongEnoughForTheNextRequest(t *testing.T) {
	// 2 per 4 s: one token every 2 s.
	g := newGateway(t, testkit.Redis(t), limits(2, 1_000_000, 4*time.Second))
	sku := testkit.Product(t, g.pool, 500, 3)
	h := g.customer("c-"+uuid.NewString(), "X-Forwarded-For", clientIP())
	require.Equal(t, http.StatusOK, g.do(http.MethodGet, "/v1/products/"+sku, h, nil).status)
	require.Equal(t, http.StatusOK, g.do(http.MethodGet, "/v1/products/"+sku, h, nil).status)
	a := g.do(http.MethodGet, "/v1/products/"+sku, h, nil)
	require.Equal(t, http.StatusTooManyRequests, a.status)
	retry := headerInt(t, a, "Retry-After")
	require.True(t, retry >= 1 && retry <= 2, "Retry-After %d", retry)
	time.Sleep(time.Duration(retry) * time.Second)
	assert.Equal(t, http.StatusOK, g.do(http.MethodGet, "/v1/products/"+sku, h, nil).status, "a client that waits Retry-After is let in")
}

func TestRateLimitPerAddress(t *testing.T) {
	g := newGateway(t, testkit.Redis(t), limits(100, 5, time.Hour))
	sku := testkit.Product(t, g.pool, 500, 3)
	ip := clientIP()
	for i := 1; i <= 5; i++ {
		// A different customer each time: only the address limit counts them all.
		a := g.do(http.MethodGet, "/v1/products/"+sku, g.customer(uuid.NewString(), "X-Forwarded-For", ip), nil)
		require.Equal(t, http.StatusOK, a.status, "request %d", i)
	}
	for _, h := range []map[string]string{
		{"X-Forwarded-For": ip, echo.HeaderAuthorization: ""}, // no token: still charged to the address
		g.customer(uuid.NewString(), "X-Forwarded-For", ip),
	} {
		a := g.do(http.MethodGet, "/v1/products/"+sku, h, nil)
		require.Equal(t, http.StatusTooManyRequests, a.status, "%v", h)
		assert.Equal(t, "rate_limited", a.errorCode(t))
		assert.Equal(t, 5, headerInt(t, a, HeaderRateLimitLimit))
		retry := headerInt(t, a, "Retry-After")
		assert.True(t, retry >= 1 && retry <= 720, "one token per 720 s: Retry-After %d", retry)
	}
	assert.Equal(t, http.StatusOK, g.do(http.MethodGet, "/v1/products/"+sku, map[string]string{"X-Forwarded-For": clientIP()}, nil).status,
		"another address is not limited")
	for _, path := range []string{"/health", "/health/"} {
		a := g.do(http.MethodGet, path, map[string]string{"X-Forwarded-For": ip}, nil)
		assert.NotEqual(t, http.StatusTooManyRequests, a.status, path)
	}
}

func TestRateLimitFallsBackToALocalLimitWhileRedisIsDownAndResumes(t *testing.T) {
	rs := testkit.NewRedisServer(t)
	rc := rs.Client()
	// The outage opens the Redis breaker, which keeps the limiter local for
	// its open period after Redis is back; a short one keeps the test short.
	g := newGateway(t, rc, func(s *Server) {
		limits(3, 1_000_000, time.Hour)(s)
		s.Resilience.Breakers.OpenTimeout = time.Second
	})
	sku := testkit.Product(t, g.pool, 500, 3)
	ip := clientIP()
	h := g.customer("c-"+uuid.NewString(), "X-Forwarded-For", ip)
	get := func(h map[string]string) answer { return g.do(http.MethodGet, "/v1/products/"+sku, h, nil) }

	for range 3 {
		require.Equal(t, http.StatusOK, get(h).status)
	}
	require.Equal(t, http.StatusTooManyRequests, get(h).status)
	require.Zero(t, g.srv.RateLimitFallbacks())

	rs.Stop()
	// The local buckets start empty: the same limit again, per process.
	for i := 1; i <= 3; i++ {
		a := get(h)
		require.Equal(t, http.StatusOK, a.status, "request %d with Redis down: %s", i, a.body)
		assert.Equal(t, 3-i, headerInt(t, a, HeaderRateLimitRemaining))
	}
	a := get(h)
	require.Equal(t, http.StatusTooManyRequests, a.status, "still limited with Redis down: %s", a.body)
	assert.NotEmpty(t, a.header.Get("Retry-After"))
	assert.Equal(t, "rate_limited", a.errorCode(t))
	assert.GreaterOrEqual(t, g.srv.RateLimitFallbacks(), int64(8), "4 requests, each charged to address and customer, in process")

	rs.Start()
	// The limiter goes back to Redis once its back-off has passed and the
	// client has reconnected: a request then adds no fallback.
	var fresh string
	deadline := time.Now().Add(20 * time.Second)
	for {
		before := g.srv.RateLimitFallbacks()
		fresh = "c-" + uuid.NewString()
		a := get(g.customer(fresh, "X-Forwarded-For", ip))
		require.Equal(t, http.StatusOK, a.status, a.body)
		if g.srv.RateLimitFallbacks() == before {
			break
		}
		require.True(t, time.Now().Before(deadline), "the limiter did not go back to Redis")
		time.Sleep(100 * time.Millisecond)
	}
	n, err := rc.Exists(context.Background(), "rate:user:"+fresh).Result()
	require.NoError(t, err)
	assert.Equal(t, int64(1), n, "the customer's bucket is in Redis again")
}
