package regions

import (
	"context"
	"fmt"
	"slices"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	replicationpb "go.temporal.io/api/replication/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
)

// SwitchActive makes cluster the active cluster of the global namespace ns
// (UpdateNamespace with ReplicationConfig.ActiveClusterName), through the
// frontend nc talks to, and returns once that frontend's cluster records
// it. It reports whether it changed anything: a namespace already active
// there is left as it is.
//
// Sent to the surviving cluster while the old active one is unreachable,
// this is the forced failover Temporal 1.29 allows: the survivor takes a
// failover version above the old one's and serves the namespace at once,
// without a handover (no REPLICATION_STATE_HANDOVER, no wait for
// replication to catch up), so whatever had not replicated stays behind in
// the lost cluster and is reconciled when it returns (its own copy says it
// is active until the survivor's namespace replication reaches it: cut the
// lost region off, its clients too). Sent to the active cluster while both
// are up, it is a planned switch that does not wait for replication either.
func SwitchActive(ctx context.Context, nc client.NamespaceClient, ns, cluster string) (changed bool, err error) {
	d, err := nc.Describe(ctx, ns)
	if err != nil {
		return false, fmt.Errorf("switch %s to %s: describe: %w", ns, cluster, err)
	}
	if !d.GetIsGlobalNamespace() {
		return false, fmt.Errorf("switch %s to %s: not a global namespace", ns, cluster)
	}
	rc := d.GetReplicationConfig()
	if rc.GetActiveClusterName() == cluster {
		return false, nil
	}
	if !slices.ContainsFunc(rc.GetClusters(), func(c *replicationpb.ClusterReplicationConfig) bool { return c.GetClusterName() == cluster }) {
		return false, fmt.Errorf("switch %s to %s: the namespace is not replicated to %s", ns, cluster, cluster)
	}
	err = nc.Update(ctx, &workflowservice.UpdateNamespaceRequest{
		Namespace:         ns,
		ReplicationConfig: &replicationpb.NamespaceReplicationConfig{ActiveClusterName: cluster},
	})
	if err != nil {
		return false, fmt.Errorf("switch %s to %s: %w", ns, cluster, err)
	}
	active, err := ActiveCluster(ctx, nc, ns)
	if err != nil {
		return true, err
	}
	if active != cluster {
		return true, fmt.Errorf("switch %s to %s: the namespace is active in %s after the update", ns, cluster, active)
	}
	return true, nil
}

// ActiveCluster is the cluster the frontend nc talks to records as the
// active one of namespace ns (each cluster keeps its own copy: after a
// forced failover a lost cluster's copy lags until it hears of it).
func ActiveCluster(ctx context.Context, nc client.NamespaceClient, ns string) (string, error) {
	d, err := nc.Describe(ctx, ns)
	if err != nil {
		return "", fmt.Errorf("describe %s: %w", ns, err)
	}
	return d.GetReplicationConfig().GetActiveClusterName(), nil
}

// Temporal's own graceful handover: a system workflow of the server's
// worker service (service/worker/migration), in the temporal-system
// namespace.
const (
	SystemNamespace      = "temporal-system"
	handoverWorkflow     = "namespace-handover"
	systemTaskQueue      = "default-worker-tq"
	handoverAllowedLagS  = 5 // replication lag, in seconds, the handover starts within
	handoverTimeoutFloor = 30 * time.Second
)

// handoverParams is the handover workflow's input (its
// NamespaceHandoverParams, read as JSON).
type handoverParams struct {
	Namespace              string
	RemoteCluster          string
	AllowedLaggingSeconds  int
	AllowedLaggingTasks    int64
	HandoverTimeoutSeconds int
}

// HandOver hands the global namespace ns from its active cluster to the
// cluster target gracefully, with the server's own handover (the
// namespace-handover system workflow): it waits until target's replication
// lag is under a few seconds, puts the namespace in the handover state
// (the active cluster takes no new writes for it: callers retry), waits
// until target has every replication task, makes target active and the
// state normal again. Nothing runs in two clusters at once and nothing is
// left behind, unlike SwitchActive. sys is a client of the active
// cluster's temporal-system namespace with the SDK's default data
// converter (the system worker reads its input as plain JSON; orderflow's
// sealing converter must not be used); timeout bounds the wait for the
// handover itself (at least 30 s). It reports whether it changed anything:
// a namespace already active in target is left as it is.
func HandOver(ctx context.Context, sys client.Client, nc client.NamespaceClient, ns, target string, timeout time.Duration) (bool, error) {
	active, err := ActiveCluster(ctx, nc, ns)
	if err != nil {
		return false, err
	}
	if active == target {
		return false, nil
	}
	timeout = max(timeout, handoverTimeoutFloor)
	run, err := sys.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: handoverWorkflow + "-" + ns, TaskQueue: systemTaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING},
		handoverWorkflow, handoverParams{Namespace: ns, RemoteCluster: target, AllowedLaggingSeconds: handoverAllowedLagS,
			HandoverTimeoutSeconds: int(timeout / time.Second)})
	if err != nil {
		return false, fmt.Errorf("hand %s over to %s: start the handover: %w", ns, target, err)
	}
	if err := run.Get(ctx, nil); err != nil {
		return true, fmt.Errorf("hand %s over to %s: %w", ns, target, err)
	}
	if active, err = ActiveCluster(ctx, nc, ns); err != nil {
		return true, err
	}
	if active != target {
		return true, fmt.Errorf("hand %s over to %s: the namespace is active in %s after the handover", ns, target, active)
	}
	return true, nil
}
