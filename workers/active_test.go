package workers

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	replicationpb "go.temporal.io/api/replication/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.uber.org/zap/zaptest"

	"github.com/orderflow/orderflow/devtools/testkit"
)

func TestAGlobalNamespaceIsActiveOnlyInItsActiveClusterAndALocalOneEverywhere(t *testing.T) {
	global := func(active string) *workflowservice.DescribeNamespaceResponse {
		return &workflowservice.DescribeNamespaceResponse{IsGlobalNamespace: true,
			ReplicationConfig: &replicationpb.NamespaceReplicationConfig{ActiveClusterName: active,
				Clusters: []*replicationpb.ClusterReplicationConfig{{ClusterName: "east"}, {ClusterName: "west"}}}}
	}
	assert.True(t, activeFor(global("east"), "east"))
	assert.False(t, activeFor(global("east"), "west"), "standby: the polls would be forwarded to east")
	assert.True(t, activeFor(global("west"), "west"), "after a failover to west")
	inHandover := global("east")
	inHandover.ReplicationConfig.State = enumspb.REPLICATION_STATE_HANDOVER
	assert.True(t, activeFor(inHandover, "east"), "the old cluster stays active until the handover completes")
	assert.True(t, activeFor(&workflowservice.DescribeNamespaceResponse{}, "anything"), "a local namespace")
}

// On the test server's (local) namespace the cluster is active: the
// watcher starts the worker, which polls its task queue, and stops it with
// itself.
func TestWhenActiveStartsTheWorkerOnAnActiveNamespaceAndStopsIt(t *testing.T) {
	c := testkit.Temporal(t)
	ctx := context.Background()
	active, err := ActiveHere(ctx, c, "default")
	require.NoError(t, err)
	require.True(t, active)

	queue := "when-active-" + uuid.NewString()[:8]
	w := &WhenActive{Client: c, Namespace: "default", Every: time.Hour, Log: zaptest.NewLogger(t),
		Build: func() (Runner, error) {
			wk := worker.New(c, queue, worker.Options{})
			wk.RegisterWorkflowWithOptions(func(workflow.Context) error { return nil }, workflow.RegisterOptions{Name: "noop"})
			return wk, nil
		}}
	require.NoError(t, w.Start())
	require.Eventually(t, w.Polling, 10*time.Second, 20*time.Millisecond, "the first check runs at once")
	require.Eventually(t, func() bool { return pollers(t, c, queue) > 0 }, 30*time.Second, 100*time.Millisecond,
		"the worker polls the namespace's task queue")
	w.Stop()
	assert.False(t, w.Polling())
}

func pollers(t *testing.T, c client.Client, queue string) int {
	d, err := c.DescribeTaskQueue(context.Background(), queue, enumspb.TASK_QUEUE_TYPE_WORKFLOW)
	require.NoError(t, err)
	return len(d.GetPollers())
}

// A namespace the cluster does not know is an error, and a check then
// keeps the watcher's state: it starts no worker.
func TestWhenActiveStartsNothingWhileTheNamespaceCannotBeDescribed(t *testing.T) {
	c := testkit.Temporal(t)
	ns := "no-such-namespace-" + uuid.NewString()[:8]
	_, err := ActiveHere(context.Background(), c, ns)
	require.Error(t, err)
	built := 0
	w := &WhenActive{Client: c, Namespace: ns, Every: time.Second, Log: zaptest.NewLogger(t),
		Build: func() (Runner, error) { built++; return worker.New(c, "never", worker.Options{}), nil }}
	w.check(context.Background())
	assert.Zero(t, built)
	assert.False(t, w.Polling())
}
