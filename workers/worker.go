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
	"go.uber.org/zap"

	"github.com/orderflow/orderflow/activities"
	"github.com/orderflow/orderflow/internal/config"
	"github.com/orderflow/orderflow/internal/payment"
	"github.com/orderflow/orderflow/workflows"
)

// Deps are the clients the activities use.
type Deps struct {
	DB    *pgxpool.Pool
	Cache *redis.Client
	// Payments are the payment providers in failover order, each behind
	// its circuit breaker.
	Payments *payment.Router
	// FailoverQuiet: see activities.Payment; zero means its default.
	FailoverQuiet time.Duration
	// Mailer delivers the notification outbox; nil means the log mailer.
	Mailer activities.Mailer
	Log    *zap.Logger
}

// Options size a worker. The activity slots are split by the bulkhead
// shares: the critical share runs the saga's steps, the non-critical share
// delivers notifications; the admin share is kept free for operator work.
type Options struct {
	Region                       string
	MaxConcurrentActivities      int
	MaxConcurrentLocalActivities int
	MaxConcurrentWorkflowTasks   int
	Bulkhead                     config.Bulkhead
	// Outbox runs the notification pool in this process too.
	Outbox bool
}

// Pool is one worker process's pools: the order worker on the region's
// critical task queue and the notification outbox pool.
type Pool struct {
	Orders worker.Worker
	// Payments is the provider router the pool's Payment activities use.
	Payments *payment.Router
	Outbox   *activities.Outbox
	cancel   context.CancelFunc
	done     chan struct{}
}

// New builds the region's order worker, with the Order workflow and every
// saga activity registered, and, if asked, the notification pool.
func New(c client.Client, deps Deps, opts Options) *Pool {
	p := &Pool{Orders: worker.New(c, workflows.TaskQueue(opts.Region), opts.WorkerOptions()), Payments: deps.Payments}
	Register(p.Orders, deps)
	if opts.Outbox {
		log := deps.Log
		if log == nil {
			log = zap.NewNop()
		}
		mailer := deps.Mailer
		if mailer == nil {
			mailer = activities.LogMailer{Log: log}
		}
		p.Outbox = &activities.Outbox{DB: deps.DB, Region: opts.Region, Mailer: mailer, Log: log,
			Workers: opts.Bulkhead.Share(opts.slots(), opts.Bulkhead.NonCriticalPct)}
	}
	return p
}

func (opts Options) slots() int {
	return max(opts.MaxConcurrentActivities, opts.MaxConcurrentLocalActivities)
}

// WorkerOptions are the SDK settings of the order worker: the critical share
// of the activity slots.
func (opts Options) WorkerOptions() worker.Options {
	b := opts.Bulkhead
	if b.CriticalPct == 0 {
		b.CriticalPct = 100
	}
	return worker.Options{
		MaxConcurrentActivityExecutionSize:      b.Share(opts.MaxConcurrentActivities, b.CriticalPct),
		MaxConcurrentLocalActivityExecutionSize: b.Share(opts.MaxConcurrentLocalActivities, b.CriticalPct),
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
	r.RegisterActivity(&activities.Payment{DB: deps.DB, Providers: deps.Payments, Cache: deps.Cache, FailoverQuiet: deps.FailoverQuiet})
}

// Start starts the pools.
func (p *Pool) Start() error {
	if err := p.Orders.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	if p.Outbox != nil {
		ctx, cancel := context.WithCancel(context.Background())
		p.cancel, p.done = cancel, make(chan struct{})
		go func() { defer close(p.done); p.Outbox.Run(ctx) }()
	}
	return nil
}

// Stop stops polling and lets in-flight work finish.
func (p *Pool) Stop() {
	p.Orders.Stop()
	if p.cancel != nil {
		p.cancel()
		<-p.done
	}
}

// Runner is something Run starts and stops: a Pool, or a wrapper around one.
type Runner interface {
	Start() error
	Stop()
}

// Run starts the pools and blocks until ctx is done, then stops them
// gracefully: polling ends and in-flight tasks finish first.
func Run(ctx context.Context, p Runner) error {
	if err := p.Start(); err != nil {
		return err
	}
	<-ctx.Done()
	p.Stop()
	return nil
}
