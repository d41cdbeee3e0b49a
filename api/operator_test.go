package api

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/pii"
)

func fetch(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	require.NoError(t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestOperatorListenerHoldsMetricsAndCodecApartFromTheCustomerPort(t *testing.T) {
	srv := &Server{Log: zaptest.NewLogger(t), Auth: testkit.Auth(t).Auth, Codec: pii.NewCodec(testkit.PII(t)),
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "orderflow_up 1\n") })}
	customer, operator := srv.Handlers()
	cs, ops := httptest.NewServer(customer), httptest.NewServer(operator)
	defer cs.Close()
	defer ops.Close()

	for _, path := range []string{"/metrics", "/codec/session"} {
		status, body := fetch(t, cs.URL+path)
		assert.Equal(t, http.StatusNotFound, status, "customer port %s", path)
		assert.Contains(t, body, `"error"`, "customer port %s answers the JSON error body", path)
		status, _ = fetch(t, ops.URL+path)
		assert.Equal(t, http.StatusOK, status, "operator port %s", path)
	}
	status, _ := fetch(t, cs.URL+"/health/live")
	assert.Equal(t, http.StatusOK, status, "customer port /health/live")
	for _, path := range []string{"/v1/products", "/health/live"} {
		status, _ := fetch(t, ops.URL+path)
		assert.Equal(t, http.StatusNotFound, status, "operator port %s", path)
	}
	// Without an operator listener, one handler serves both, as before.
	all := httptest.NewServer((&Server{Log: zaptest.NewLogger(t), Metrics: srv.Metrics}).Handler())
	defer all.Close()
	status, _ = fetch(t, all.URL+"/metrics")
	assert.Equal(t, http.StatusOK, status, "/metrics on the single listener")
}

func TestDrainFailsReadinessFirstThenLetsInFlightRequestsFinish(t *testing.T) {
	release, entered := make(chan struct{}), make(chan struct{})
	srv := &Server{Log: zaptest.NewLogger(t), Metrics: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(entered)
		<-release
		_, _ = io.WriteString(w, "late\n")
	})}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(testkit.FreePort(t)))
	ctx, sigterm := context.WithCancel(context.Background())
	defer sigterm()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, HTTPServer(addr, srv.Handler(), nil), nil, 3*time.Second) }()
	testkit.WaitHealthy(t, "http://"+addr+"/health/live", 10*time.Second, "gateway")

	inflight := make(chan string, 1)
	go func() {
		res, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			inflight <- err.Error()
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		inflight <- string(b)
	}()
	<-entered
	sigterm()
	// Readiness fails while the listener still accepts: the load balancer
	// sees the 503 and stops sending here.
	require.Eventually(t, func() bool {
		res, err := http.Get("http://" + addr + "/health/ready")
		if err != nil {
			return false
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(b), `"draining"`) &&
			res.Header.Get("Retry-After") != ""
	}, 10*time.Second, 20*time.Millisecond, "GET /health/ready answers 503 draining once the gateway drains")
	// After the drain delay the listener closes...
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
		}
		return err != nil
	}, 20*time.Second, 50*time.Millisecond, "the listener closes after the drain delay")
	select {
	case err := <-served:
		t.Fatalf("Serve returned (%v) with a request in flight", err)
	default:
	}
	// ...and the request in flight still completes before Serve returns.
	close(release)
	assert.Equal(t, "late\n", <-inflight)
	require.NoError(t, <-served)
}
