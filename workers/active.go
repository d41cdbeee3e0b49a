package workers

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"
)

// ActiveHere reports whether the cluster c talks to is namespace's active
// cluster: always for a local namespace, and for a global one (replicated
// to other clusters, docs/regions.md) when its replication config names this
// cluster as active. During a graceful handover the old cluster stays
// active until the handover completes.
func ActiveHere(ctx context.Context, c client.Client, namespace string) (bool, error) {
	svc := c.WorkflowService()
	info, err := svc.GetClusterInfo(ctx, &workflowservice.GetClusterInfoRequest{})
	if err != nil {
		return false, fmt.Errorf("cluster info: %w", err)
	}
	d, err := svc.DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: namespace})
	if err != nil {
		return false, fmt.Errorf("describe namespace %s: %w", namespace, err)
	}
	return activeFor(d, info.GetClusterName()), nil
}

// activeFor is ActiveHere's decision on a namespace's description.
func activeFor(d *workflowservice.DescribeNamespaceResponse, cluster string) bool {
	if !d.GetIsGlobalNamespace() {
		return true
	}
	return d.GetReplicationConfig().GetActiveClusterName() == cluster
}

// WhenActive runs a worker on one namespace only while the cluster its
// client talks to is the namespace's active cluster, asking every Every:
// the standby set of workers in the other region stays idle until a
// failover makes its cluster active, then polls; after a failback it stops
// polling, letting in-flight tasks finish. Polling a namespace the cluster
// is standby for would have the server forward the polls to the active
// cluster (all-apis-forwarding) and run that region's tasks against this
// process's database. While the cluster cannot be asked, the worker keeps
// its state.
type WhenActive struct {
	Client    client.Client
	Namespace string
	Every     time.Duration
	// Build makes the worker anew each time the namespace becomes active
	// here (an SDK worker does not start again once stopped).
	Build func() (Runner, error)
	Log   *zap.Logger

	mu      sync.Mutex
	running Runner
	cancel  context.CancelFunc
	done    chan struct{}
}

// Start starts watching; the first check runs at once.
func (w *WhenActive) Start() error {
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel, w.done = cancel, make(chan struct{})
	go w.watch(ctx)
	return nil
}

// Stop stops watching and the worker, if it runs.
func (w *WhenActive) Stop() {
	if w.cancel == nil {
		return
	}
	w.cancel()
	<-w.done
}

// Polling reports whether the worker is polling the namespace now.
func (w *WhenActive) Polling() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.running != nil
}

func (w *WhenActive) watch(ctx context.Context) {
	defer close(w.done)
	t := time.NewTicker(w.Every)
	defer t.Stop()
	for {
		w.check(ctx)
		select {
		case <-ctx.Done():
			w.set(nil)
			return
		case <-t.C:
		}
	}
}

// check asks the cluster and starts or stops the worker to match.
func (w *WhenActive) check(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, w.Every)
	defer cancel()
	active, err := ActiveHere(cctx, w.Client, w.Namespace)
	log := w.Log.With(zap.String("namespace", w.Namespace))
	if err != nil {
		if ctx.Err() == nil {
			log.Warn("cannot tell whether this cluster is active for the namespace; polling as before", zap.Error(err))
		}
		return
	}
	switch {
	case active && !w.Polling():
		r, err := w.Build()
		if err == nil {
			err = r.Start()
		}
		if err != nil {
			log.Error("start worker on the namespace, now active here", zap.Error(err))
			return
		}
		w.set(r)
		log.Info("this cluster is active for the namespace: polling it")
	case !active && w.Polling():
		w.set(nil)
		log.Info("this cluster is no longer active for the namespace: stopped polling it")
	}
}

// set stops the running worker, if any, and records r as running.
func (w *WhenActive) set(r Runner) {
	w.mu.Lock()
	old := w.running
	w.running = r
	w.mu.Unlock()
	if old != nil {
		old.Stop()
	}
}
