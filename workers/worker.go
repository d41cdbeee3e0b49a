// Package workers runs orderflow's stateless worker pools: each process polls
// its region's task queue and executes Order sagas and their activities. Any
// number of replicas may run; all state lives in Temporal and PostgreSQL.
package workers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.uber.org/zap"

	"github.com/orderflow/orderflow/activities/catalog"
	"github.com/orderflow/orderflow/activities/events"
	"github.com/orderflow/orderflow/activities/fulfillment"
	"github.com/orderflow/orderflow/activities/monitor"
	"github.com/orderflow/orderflow/activities/notify"
	"github.com/orderflow/orderflow/activities/orders"
	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/activities/returns"
	hooks "github.com/orderflow/orderflow/activities/webhooks"
	"github.com/orderflow/orderflow/internal/bulkhead"
	"github.com/orderflow/orderflow/internal/pii"
	"github.com/orderflow/orderflow/workflows/maintenance"
	monitorflow "github.com/orderflow/orderflow/workflows/monitor"
	"github.com/orderflow/orderflow/workflows/order"
	returnflow "github.com/orderflow/orderflow/workflows/returns"
	webhookflow "github.com/orderflow/orderflow/workflows/webhooks"
)

// Deps are the clients the activities use.
type Deps struct {
	DB    *pgxpool.Pool
	Cache *redis.Client
	// Payments are the payment providers in failover order, each behind
	// its circuit breaker.
	Payments *payment.Router
	// FailoverQuiet: see payment.Activities; zero means its default.
	FailoverQuiet time.Duration
	// Mailer delivers the notification outbox; nil means the log mailer.
	Mailer notify.Mailer
	// Events is the event stream the outbox pool's relays publish to and
	// its analytics consumer reads (Messaging); nil leaves the events in
	// their outbox.
	Events *EventStream
	// PII encrypts the customer's e-mail at rest and decrypts it to send.
	PII *pii.Keyring
	Log *zap.Logger
	// Carrier takes fulfilled orders' shipments (CARRIER_URL); nil: none
	// is configured, and shipments wait for carrier events all the same.
	Carrier *fulfillment.Carrier
}

// Config sizes a worker; cmd/orderflow builds it from the declared
// settings (internal/config). The activity slots are split by the bulkhead
// shares: the critical share runs the saga's steps, the non-critical share
// delivers notifications; the admin share is kept free for operator work.
type Config struct {
	Region                       string
	MaxConcurrentActivities      int
	MaxConcurrentLocalActivities int
	MaxConcurrentWorkflowTasks   int
	Bulkhead                     bulkhead.Shares
	// Outbox runs the notification pool in this process too.
	Outbox bool
	// Admin runs the admin pool on the region's admin task queue, makes
	// sure the region's maintenance and invariant monitor Schedules exist,
	// and exports the monitor's open findings (orderflow_invariant_findings).
	Admin bool
	// Webhooks is how the outbox pool delivers outbound webhooks: it polls
	// the region's webhooks task queue and dispatches the region's events.
	Webhooks Webhooks
}

// Webhooks are the outbound webhooks' settings (WEBHOOKS_*).
type Webhooks struct {
	// Policy's TaskQueue is set to the region's by New.
	Policy       hooks.Policy
	DisableAfter time.Duration
	AllowPrivate bool
}

// Pool is one worker process's pools: the order worker on the region's
// critical task queue and the notification outbox pool.
type Pool struct {
	Orders worker.Worker
	// Admin polls the region's admin task queue; nil unless Config.Admin.
	Admin worker.Worker
	// Webhooks polls the region's webhooks task queue; nil unless
	// Config.Outbox.
	Webhooks    worker.Worker
	dispatchers []*hooks.Dispatcher
	// Payments is the provider router the pool's Payment activities use.
	Payments *payment.Router
	Outbox   *notify.Outbox
	events   *EventStream
	db       *pgxpool.Pool
	log      *zap.Logger
	client   client.Client
	region   string
	// unobserve stops the findings gauge the admin pool exports.
	unobserve func()
	cancel    context.CancelFunc
	done      chan struct{}
}

// New builds the region's order worker, with the Order workflow and every
// saga activity registered, and, if asked, the notification and admin pools.
func New(c client.Client, deps Deps, opts Config) *Pool {
	p := &Pool{Orders: worker.New(c, order.TaskQueue(opts.Region), opts.WorkerOptions()), Payments: deps.Payments,
		client: c, region: opts.Region}
	Register(p.Orders, deps)
	RegisterPaymentEvents(p.Orders, deps, c)
	if opts.Admin {
		p.Admin = worker.New(c, maintenance.AdminTaskQueue(opts.Region), worker.Options{
			MaxConcurrentActivityExecutionSize:     opts.Bulkhead.Share(opts.slots(), opts.Bulkhead.AdminPct),
			MaxConcurrentWorkflowTaskExecutionSize: 10,
			WorkerStopTimeout:                      15 * time.Second,
		})
		p.Admin.RegisterWorkflowWithOptions(maintenance.Run, workflow.RegisterOptions{Name: maintenance.Workflow})
		p.Admin.RegisterActivity(&orders.Admin{DB: deps.DB})
		RegisterMonitor(p.Admin, deps, c)
		p.db = deps.DB
	}
	if opts.Outbox {
		log := deps.Log
		if log == nil {
			log = zap.NewNop()
		}
		mailer := deps.Mailer
		if mailer == nil {
			mailer = notify.LogMailer{Log: log}
		}
		p.Outbox = &notify.Outbox{DB: deps.DB, PII: deps.PII, Region: opts.Region, Mailer: mailer, Log: log,
			Workers: opts.Bulkhead.Share(opts.slots(), opts.Bulkhead.NonCriticalPct)}
		p.events, p.db, p.log = deps.Events, deps.DB, log
		p.newWebhooks(c, deps.DB, opts, log)
	}
	return p
}

// newWebhooks builds the webhooks pool: the delivery and replay workflows
// and their activities on the region's webhooks task queue, and the
// dispatchers of the region's events and of the events of no order.
func (p *Pool) newWebhooks(c client.Client, db *pgxpool.Pool, opts Config, log *zap.Logger) {
	policy := opts.Webhooks.Policy
	policy.TaskQueue = hooks.TaskQueue(opts.Region)
	p.Webhooks = worker.New(c, policy.TaskQueue, worker.Options{
		MaxConcurrentActivityExecutionSize: max(1, opts.Bulkhead.Share(opts.slots(), opts.Bulkhead.NonCriticalPct)),
		WorkerStopTimeout:                  15 * time.Second,
	})
	p.Webhooks.RegisterWorkflowWithOptions(webhookflow.Deliver, workflow.RegisterOptions{Name: webhookflow.Workflow})
	p.Webhooks.RegisterWorkflowWithOptions(webhookflow.Replay, workflow.RegisterOptions{Name: webhookflow.ReplayWorkflow})
	timeout := policy.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	p.Webhooks.RegisterActivity(&hooks.Activities{DB: db, HTTP: hooks.NewHTTPClient(timeout, opts.Webhooks.AllowPrivate),
		Temporal: c, DisableAfter: opts.Webhooks.DisableAfter, Log: log})
	for _, scope := range []string{opts.Region, ""} {
		p.dispatchers = append(p.dispatchers, &hooks.Dispatcher{DB: db, Temporal: c, Region: scope, Policy: policy, Log: log})
	}
}

func (opts Config) slots() int {
	return max(opts.MaxConcurrentActivities, opts.MaxConcurrentLocalActivities)
}

// WorkerOptions are the SDK settings of the order worker: the critical share
// of the activity slots.
func (opts Config) WorkerOptions() worker.Options {
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

// Register adds the Order and Return workflows, under their explicit
// names, and their activities to r.
func Register(r Registry, deps Deps) {
	r.RegisterWorkflowWithOptions(order.Saga, workflow.RegisterOptions{Name: order.Workflow})
	r.RegisterActivity(&orders.Activities{DB: deps.DB, Cache: deps.Cache, PII: deps.PII})
	r.RegisterActivity(&catalog.Inventory{DB: deps.DB, Cache: deps.Cache, SetStatus: orders.RecordStatus})
	r.RegisterActivity(&payment.Activities{DB: deps.DB, Providers: deps.Payments, Cache: deps.Cache, FailoverQuiet: deps.FailoverQuiet})
	r.RegisterActivity(&fulfillment.Activities{DB: deps.DB, Cache: deps.Cache, Carrier: deps.Carrier, PII: deps.PII})
	r.RegisterWorkflowWithOptions(returnflow.Receive, workflow.RegisterOptions{Name: returnflow.Workflow})
	r.RegisterActivity(&returns.Activities{DB: deps.DB, Cache: deps.Cache})
}

// RegisterMonitor adds the invariant monitor's workflow, under its explicit
// name, and its activities to r: they reconcile the ledgers of the
// providers of deps.Payments that can list theirs.
func RegisterMonitor(r Registry, deps Deps, c client.Client) {
	r.RegisterWorkflowWithOptions(monitorflow.Run, workflow.RegisterOptions{Name: monitorflow.Workflow})
	var listers []monitor.Lister
	if deps.Payments != nil {
		for _, g := range deps.Payments.Providers() {
			if l, ok := g.Provider.(monitor.Lister); ok {
				listers = append(listers, l)
			}
		}
	}
	r.RegisterActivity(&monitor.Activities{DB: deps.DB, Temporal: c, Providers: listers})
}

// Start starts the pools.
func (p *Pool) Start() error {
	payment.ZeroAttempts(p.Payments)
	payment.ZeroDisputes(p.Payments)
	events.ZeroMetrics()
	hooks.ZeroMetrics()
	if err := p.Orders.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	if p.Admin != nil {
		if err := p.Admin.Start(); err != nil {
			p.Orders.Stop()
			return fmt.Errorf("start admin worker: %w", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := EnsureMaintenanceSchedule(ctx, p.client, p.region, time.Minute)
		if err == nil {
			err = EnsureMonitorSchedules(ctx, p.client, p.region)
		}
		if err == nil {
			p.unobserve, err = monitor.ObserveFindings(monitor.Store{DB: p.db}, 2*time.Second)
		}
		if err != nil {
			p.Admin.Stop()
			p.Orders.Stop()
			return err
		}
	}
	if p.Outbox != nil {
		if err := p.Webhooks.Start(); err != nil {
			if p.Admin != nil {
				p.Admin.Stop()
			}
			p.Orders.Stop()
			return fmt.Errorf("start webhooks worker: %w", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		p.cancel, p.done = cancel, make(chan struct{})
		go func() {
			defer close(p.done)
			var wg sync.WaitGroup
			for _, d := range p.dispatchers {
				wg.Add(1)
				go func() { defer wg.Done(); d.Run(ctx) }()
			}
			if p.events != nil {
				wg.Add(1)
				go func() { defer wg.Done(); p.events.run(ctx, p.db, p.region, p.log) }()
			}
			p.Outbox.Run(ctx)
			wg.Wait()
		}()
	}
	return nil
}

// Stop stops polling and lets in-flight work finish.
func (p *Pool) Stop() {
	p.Orders.Stop()
	if p.Admin != nil {
		p.Admin.Stop()
	}
	if p.unobserve != nil {
		p.unobserve()
	}
	if p.cancel != nil {
		p.cancel()
		<-p.done
	}
	if p.Webhooks != nil {
		p.Webhooks.Stop()
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

// EnsureMaintenanceSchedule creates the region's Schedule that starts the
// Maintenance workflow on the admin task queue every interval, unless it
// exists already (every worker of the region asks; the first creates it).
// A run still going when the next is due is skipped.
func EnsureMaintenanceSchedule(ctx context.Context, c client.Client, region string, every time.Duration) error {
	id := maintenance.ScheduleID(region)
	_, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:   id,
		Spec: client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: every}}},
		Action: &client.ScheduleWorkflowAction{
			ID: id, Workflow: maintenance.Workflow, TaskQueue: maintenance.AdminTaskQueue(region),
		},
		Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
	})
	if err != nil && !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return fmt.Errorf("create schedule %s: %w", id, err)
	}
	return nil
}

// EnsureMonitorSchedules creates, or brings up to date, the region's two
// Schedules of the invariant monitor on the admin task queue: every
// monitorflow.RecentEvery over the recent orders, and nightly
// (monitorflow.NightlyCron, UTC) over all. Every worker of the region asks
// at start-up: the first creates them, the others (and a later release
// with other timings) update them to this build's spec and action, so a
// worker start-up is the install step. A run still going when the next is
// due is skipped.
func EnsureMonitorSchedules(ctx context.Context, c client.Client, region string) error {
	for _, nightly := range []bool{false, true} {
		id := monitorflow.ScheduleID(region, nightly)
		spec := client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: monitorflow.RecentEvery}}}
		if nightly {
			spec = client.ScheduleSpec{CronExpressions: []string{monitorflow.NightlyCron}}
		}
		action := &client.ScheduleWorkflowAction{
			ID: id, Workflow: monitorflow.Workflow, TaskQueue: maintenance.AdminTaskQueue(region),
			Args: []any{monitorflow.Input{Region: region, Nightly: nightly}},
		}
		_, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{
			ID: id, Spec: spec, Action: action, Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		})
		if errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
			err = c.ScheduleClient().GetHandle(ctx, id).Update(ctx, client.ScheduleUpdateOptions{
				DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
					s := in.Description.Schedule
					s.Spec, s.Action = &spec, action
					if s.Policy != nil {
						s.Policy.Overlap = enumspb.SCHEDULE_OVERLAP_POLICY_SKIP
					}
					return &client.ScheduleUpdate{Schedule: &s}, nil
				},
			})
		}
		if err != nil {
			return fmt.Errorf("schedule %s: %w", id, err)
		}
	}
	return nil
}
