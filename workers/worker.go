// Package workers runs orderflow's stateless worker pools: each process polls
// its region's task queue and executes Order sagas and their activities. Any
// number of replicas may run; all state lives in Temporal and PostgreSQL.
package workers

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/orderflow/orderflow/activities"
	"github.com/orderflow/orderflow/workflows"
)

// Deps are the clients the activities use.
type Deps struct {
	DB       *pgxpool.Pool
	Cache    *redis.Client
	Provider activities.PaymentProvider
}

// Options size a worker.
type Options struct {
	Region                       string
	MaxConcurrentActivities      int
	MaxConcurrentLocalActivities int
	MaxConcurrentWorkflowTasks   int
}

// New builds a worker for the region's order task queue with the Order
// workflow and every saga activity registered.
func New(c client.Client, deps Deps, opts Options) worker.Worker {
	w := worker.New(c, workflows.TaskQueue(opts.Region), opts.WorkerOptions())
	Register(w, deps)
	return w
}

// WorkerOptions are the SDK settings a worker with these options runs with.
func (opts Options) WorkerOptions() worker.Options {
	return worker.Options{
		MaxConcurrentActivityExecutionSize:      opts.MaxConcurrentActivities,
		MaxConcurrentLocalActivityExecutionSize: opts.MaxConcurrentLocalActivities,
		MaxConcurrentWorkflowTaskExecutionSize:  opts.MaxConcurrentWorkflowTasks,
		// On SIGTERM, let in-flight steps finish (each is bounded at 10 s)
		// rather than leave them to time out and be retried elsewhere.
		WorkerStopTimeout: 15 * time.Second,
	}
}

// Registry is what Register needs: a worker or a replayer.
type Registry interface {
	RegisterWorkflowWithOptions(w any, options workflow.RegisterOptions)
	RegisterActivity(a any)
}

// Register adds the Order workflow, under its explicit name, and the saga's
// activities to r.
func Register(r Registry, deps Deps) {
	r.RegisterWorkflowWithOptions(workflows.Order, workflow.RegisterOptions{Name: workflows.OrderWorkflow})
	r.RegisterActivity(&activities.Orders{DB: deps.DB, Cache: deps.Cache})
	r.RegisterActivity(&activities.Inventory{DB: deps.DB, Cache: deps.Cache})
	r.RegisterActivity(&activities.Payment{DB: deps.DB, Provider: deps.Provider, Cache: deps.Cache})
	r.RegisterActivity(&activities.Notification{DB: deps.DB})
}

// Run starts the worker and blocks until ctx is done, then stops it
// gracefully: polling ends and in-flight tasks finish first.
func Run(ctx context.Context, w worker.Worker) error {
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	<-ctx.Done()
	w.Stop()
	return nil
}
