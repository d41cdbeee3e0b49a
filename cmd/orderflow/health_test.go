package main

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/orderflow/orderflow/activities"
	"github.com/orderflow/orderflow/internal/config"
	"github.com/orderflow/orderflow/internal/health"
	"github.com/orderflow/orderflow/internal/stacktest"
	"github.com/orderflow/orderflow/workers"
)

func TestWorkerHealthListenerAnswersAndNamesAStoppedWorker(t *testing.T) {
	cl := &clients{db: stacktest.DB(t), cache: stacktest.Redis(t), temporal: stacktest.Temporal(t)}
	w := &runningWorker{Worker: workers.New(cl.temporal, workers.Deps{DB: cl.db, Cache: cl.cache, Provider: &activities.SimulatedProvider{DB: cl.db}},
		workers.Options{Region: "health-" + uuid.NewString()[:8]})}
	require.NoError(t, w.Start())
	t.Cleanup(func() {
		if w.running.Load() {
			w.Stop()
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, err := health.Listen(ctx, "127.0.0.1:0", workerHealth(cl, config.LoadResilience().Health, w), zaptest.NewLogger(t))
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
	for _, name := range []string{"database", "cache", "temporal", "disk", "memory", checkWorker} {
		assert.Equal(t, health.StatusOK, rep.Checks[name].Status, name)
	}

	w.Stop()
	code, rep = get()
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, []string{checkWorker}, rep.Failing)
}
