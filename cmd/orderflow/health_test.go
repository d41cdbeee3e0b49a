package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/activities/payment/paysim"
	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/boot"
	"github.com/orderflow/orderflow/internal/health"
	"github.com/orderflow/orderflow/internal/telemetry"
	"github.com/orderflow/orderflow/workers"
)

func TestWorkerHealthListenerAnswersAndNamesAStoppedWorker(t *testing.T) {
	cl := &boot.Clients{DB: testkit.DB(t), Cache: testkit.Redis(t), Temporal: testkit.Temporal(t)}
	metrics, stopMetrics, err := telemetry.Metrics("orderflow-worker-test")
	require.NoError(t, err)
	t.Cleanup(func() { _ = stopMetrics(context.Background()) })
	_, up := testkit.Paysim(t, cl.DB, "paysim-health")
	// Nothing listens on this port: every call to it is refused.
	down := paysim.NewClient("paysim-down", fmt.Sprintf("http://127.0.0.1:%d", testkit.FreePort(t)), time.Second)
	router := payment.NewRouter(testkit.Breaker(), up, down)
	w := &runningWorker{Runner: workers.New(cl.Temporal, workers.Deps{DB: cl.DB, Cache: cl.Cache, Payments: router, PII: testkit.PII(t)},
		workers.Config{Region: "health-" + uuid.NewString()[:8]})}
	require.NoError(t, w.Start())
	t.Cleanup(func() {
		if w.running.Load() {
			w.Stop()
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	checks := workerHealth(cl, health.Config{}, w)
	checks.Add(breakerChecks(router)...)
	addr, err := health.Listen(ctx, "127.0.0.1:0", checks, metrics, zaptest.NewLogger(t))
	require.NoError(t, err)

	get := func() (int, health.Report) {
		res, err := http.Get("http://" + addr.String() + "/health")
		require.NoError(t, err)
		defer res.Body.Close()
		var rep health.Report
		require.NoError(t, json.NewDecoder(res.Body).Decode(&rep))
		return res.StatusCode, rep
	}
	code, rep := get()
	require.Equal(t, http.StatusOK, code, "%+v", rep)
	for _, name := range []string{"database", "cache", "temporal", "disk", "memory", checkWorker, "payment_breaker:paysim-health", "payment_breaker:paysim-down"} {
		assert.Equal(t, health.StatusOK, rep.Checks[name].Status, name)
	}

	// Ten refused charges open the down provider's breaker: /health still
	// answers 200, degraded, and names it.
	g, _ := router.Get("paysim-down")
	for range 10 {
		_, err := g.Charge(ctx, payment.ChargeRequest{IdempotencyKey: uuid.NewString(), Token: payment.TokenVisa, AmountCents: 100, Currency: "USD"})
		require.ErrorIs(t, err, payment.ErrNotSent)
	}
	code, rep = get()
	require.Equal(t, http.StatusOK, code, "%+v", rep)
	assert.Equal(t, health.StatusDegraded, rep.Status)
	assert.Equal(t, health.StatusDegraded, rep.Checks["payment_breaker:paysim-down"].Status)
	assert.Equal(t, "open", rep.Checks["payment_breaker:paysim-down"].Detail)
	assert.Equal(t, health.StatusOK, rep.Checks["payment_breaker:paysim-health"].Status)

	// The breaker's state is exported as a metric too: 2 is open.
	res, err := http.Get("http://" + addr.String() + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	assert.Regexp(t, `orderflow_payment_breaker_state\{[^}]*provider="paysim-down"[^}]*\} 2\n`, string(body))
	assert.Regexp(t, `orderflow_payment_breaker_state\{[^}]*provider="paysim-health"[^}]*\} 0\n`, string(body))

	w.Stop()
	code, rep = get()
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, rep.Failing, checkWorker)
}
