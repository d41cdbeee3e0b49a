package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/boot"
)

// A gateway given WORKER_NAMESPACES runs its embedded worker as a worker
// process does: one watcher per namespace, polling only while its cluster
// is active for it, instead of pools on TEMPORAL_NAMESPACE polling always
// (in a region where that namespace is standby, its activities would
// write to a standby database).
func TestTheEmbeddedWorkerWatchesWorkerNamespaces(t *testing.T) {
	var cfg workerConfig
	cfg.Boot.Temporal.Address = testkit.Require(t, testkit.EnvTemporal)
	cfg.Namespaces = []string{"default"}
	w, checks, err := embeddedWorker(&boot.Clients{}, cfg, zaptest.NewLogger(t))
	require.NoError(t, err)
	set, ok := w.(closing)
	require.True(t, ok, "the embedded worker is %T, not the namespaces' watchers", w)
	assert.Len(t, set.watchers, 1)
	assert.Len(t, set.clients, 1, "a client of its own for a namespace other than TEMPORAL_NAMESPACE")
	assert.Empty(t, checks)
	set.Stop()

	// Its own namespace is served on the process's client, which the
	// gateway's eager starts use.
	cfg.Boot.Temporal.Namespace = "default"
	own := testkit.Temporal(t)
	w, _, err = embeddedWorker(&boot.Clients{Temporal: own}, cfg, zaptest.NewLogger(t))
	require.NoError(t, err)
	set = w.(closing)
	assert.Empty(t, set.clients, "TEMPORAL_NAMESPACE's watcher uses the process's client")
	assert.Same(t, own, set.watchers[0].Client)
	set.Stop()
}
