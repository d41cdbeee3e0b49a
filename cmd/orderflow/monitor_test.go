package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow/activities/monitor"
	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/db"
	"github.com/orderflow/orderflow/schema"
)

// `orderflow monitor findings` prints the open findings, one a line, by
// kind when asked and the resolved ones with --all; bad arguments are
// refused before it reads anything.
func TestMonitorFindingsListsTheOpenFindingsByKind(t *testing.T) {
	pg := testkit.PostgresServer(t)
	ctx := context.Background()
	pool, err := db.Open(ctx, pg.URL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, schema.Migrate(ctx, pool))
	store := monitor.Store{DB: pool}
	seen := time.Now()
	_, err = store.Record(ctx, "test", []monitor.Finding{
		{Kind: monitor.KindLostOrder, Subject: "order-a", Detail: "order-a: accepted, no order row"},
		{Kind: monitor.KindStockDrift, Subject: "SKU-1", Detail: "SKU-1: events replay to 5/0 against row 6/0"},
	}, seen)
	require.NoError(t, err)
	_, err = store.Resolve(ctx, "test", []string{monitor.KindStockDrift}, seen.Add(time.Second))
	require.NoError(t, err)
	lookup := func(k string) (string, bool) {
		if k == "DATABASE_URL" {
			return pg.URL, true
		}
		return "", false
	}
	run := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		require.NoError(t, runMonitor(ctx, &out, lookup, args))
		return out.String()
	}

	out := run("findings")
	assert.Contains(t, out, "lost_order\torder-a\t")
	assert.Contains(t, out, "order-a: accepted, no order row")
	assert.NotContains(t, out, "SKU-1", "resolved: not open")
	assert.True(t, strings.HasSuffix(out, "1 findings\n"), out)

	out = run("findings", "--all", "--kind", monitor.KindStockDrift)
	assert.Contains(t, out, "stock_drift\tSKU-1\t")
	assert.Contains(t, out, "\tresolved ")
	assert.NotContains(t, out, "order-a")

	for _, bad := range [][]string{{}, {"list"}, {"findings", "--kind", "nonsense"}, {"findings", "--limit", "0"}, {"findings", "extra"}} {
		var buf bytes.Buffer
		assert.Error(t, runMonitor(ctx, &buf, lookup, bad), "%q", bad)
	}
}
