package main

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/pii"
	"github.com/orderflow/orderflow/workers"
	"github.com/orderflow/orderflow/workflows/maintenance"
	monitorflow "github.com/orderflow/orderflow/workflows/monitor"
)

// `orderflow monitor run` triggers the region's monitor Schedule, waits for
// the run it started on a real worker and prints its report: clean over a
// clean database, and failing with the breach counted once a SKU's stock
// drifted from its event log. A region whose workers never created the
// Schedule, and bad arguments, are refused.
func TestMonitorRunTriggersTheScheduleAndPrintsTheRunsReport(t *testing.T) {
	pool := testkit.FreshDB(t, "monrun")
	keys := "test:" + pii.NewKey()
	ring, err := pii.Load(pii.Config{Keys: keys})
	require.NoError(t, err)
	dc, fc := pii.Converters(ring)
	tc, err := client.Dial(client.Options{HostPort: testkit.Require(t, testkit.EnvTemporal), DataConverter: dc, FailureConverter: fc})
	require.NoError(t, err)
	t.Cleanup(tc.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	region := "mrun-" + uuid.NewString()[:8]
	w := worker.New(tc, maintenance.AdminTaskQueue(region), worker.Options{})
	workers.RegisterMonitor(w, workers.Deps{DB: pool}, tc)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	require.NoError(t, workers.EnsureMonitorSchedules(ctx, tc, region))
	t.Cleanup(func() {
		for _, nightly := range []bool{false, true} {
			_ = tc.ScheduleClient().GetHandle(context.Background(), monitorflow.ScheduleID(region, nightly)).Delete(context.Background())
		}
	})
	vars := map[string]string{"DATABASE_URL": pool.Config().ConnString(), "TEMPORAL_ADDRESS": os.Getenv(testkit.EnvTemporal),
		"PII_KEYS": keys, "ORDERFLOW_REGION": region}
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }

	testkit.Product(t, pool, 1000, 5)
	var out bytes.Buffer
	require.NoError(t, runMonitor(ctx, &out, lookup, []string{"run"}), out.String())
	assert.Contains(t, out.String(), "invariant monitor run "+monitorflow.ScheduleID(region, false))
	assert.Contains(t, out.String(), ", found 0, opened 0")
	assert.Contains(t, out.String(), "open findings in "+region+": 0")
	assert.Contains(t, out.String(), "clean: every invariant held")

	drift := testkit.Product(t, pool, 1000, 5)
	_, err = pool.Exec(ctx, `UPDATE inventory SET on_hand = on_hand + 1, updated_at = now() WHERE sku = $1`, drift)
	require.NoError(t, err)
	out.Reset()
	err = runMonitor(ctx, &out, lookup, []string{"run", "--nightly", "--region", region})
	require.ErrorContains(t, err, "breaches found", out.String())
	assert.Contains(t, out.String(), "invariant monitor run "+monitorflow.ScheduleID(region, true))
	assert.Contains(t, out.String(), ", opened 1, ")
	assert.Contains(t, out.String(), "  stock_drift ")
	assert.Contains(t, out.String(), "open findings in "+region+": 1")
	assert.NotContains(t, out.String(), "clean")

	for _, bad := range [][]string{{"run", "extra"}, {"run", "--wait", "0s"}, {"run", "--region", "Not A Region!"}} {
		assert.Error(t, runMonitor(ctx, &out, lookup, bad), "%q", bad)
	}
	err = runMonitor(ctx, &out, lookup, []string{"run", "--region", "nowhere-" + uuid.NewString()[:8]})
	assert.ErrorContains(t, err, "a worker of the region creates it")
}
