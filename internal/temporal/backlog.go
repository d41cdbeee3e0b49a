package temporal

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	enumspb "go.temporal.io/api/enums/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"
)

// Backlog is one task queue's backlog as the server last reported it: tasks
// of both kinds (workflow and activity) not yet handed to a worker, and the
// age of the oldest of them.
type Backlog struct {
	Count int64
	Age   time.Duration
	// AddRate and DispatchRate are the tasks per second added to the queue
	// and handed to workers, as the server averages them (over its last
	// 30 s); zero from a server that does not report them.
	AddRate, DispatchRate float64
	// Drain is how fast Count fell since the sampler's previous sample, in
	// tasks per second (negative while it grows; zero for a first sample):
	// fresher than the server's 30 s averages right after an outage.
	Drain float64
	// At is when it was sampled; zero before the first sample.
	At time.Time
}

// ClearsWithin reports whether the backlog is being cleared: tasks leave
// faster than they arrive (by the server's rates, or by the count falling
// between two samples), fast enough to empty the queue within d. A backlog
// an outage left behind, which the workers are working off, clears; one
// that the workers cannot keep up with does not.
func (b Backlog) ClearsWithin(d time.Duration) bool {
	net := max(b.DispatchRate-b.AddRate, b.Drain)
	return net > 0 && float64(b.Count) <= net*d.Seconds()
}

// BacklogSampler asks the frontend every Interval for a task queue's backlog
// (DescribeTaskQueue with ReportStats) and keeps the last answer, for the
// gateway's admission and as the metrics orderflow.temporal.task_queue.backlog
// and .backlog_age (seconds) that the worker autoscaler reads.
type BacklogSampler struct {
	Client    client.Client
	Namespace string
	TaskQueue string
	Interval  time.Duration
	Log       *zap.Logger

	mu   sync.Mutex
	last Backlog
}

// Last returns the last sample.
func (b *BacklogSampler) Last() Backlog {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last
}

// Sample asks the frontend once and keeps the answer.
func (b *BacklogSampler) Sample(ctx context.Context) (Backlog, error) {
	var out Backlog
	for _, typ := range []enumspb.TaskQueueType{enumspb.TASK_QUEUE_TYPE_WORKFLOW, enumspb.TASK_QUEUE_TYPE_ACTIVITY} {
		resp, err := b.Client.WorkflowService().DescribeTaskQueue(ctx, &workflowservice.DescribeTaskQueueRequest{
			Namespace:     b.Namespace,
			TaskQueue:     &taskqueuepb.TaskQueue{Name: b.TaskQueue, Kind: enumspb.TASK_QUEUE_KIND_NORMAL},
			TaskQueueType: typ,
			ReportStats:   true,
		})
		if err != nil {
			return Backlog{}, fmt.Errorf("describe task queue %s: %w", b.TaskQueue, err)
		}
		st := resp.GetStats()
		out.Count += st.GetApproximateBacklogCount()
		out.Age = max(out.Age, st.GetApproximateBacklogAge().AsDuration())
		out.AddRate += float64(st.GetTasksAddRate())
		out.DispatchRate += float64(st.GetTasksDispatchRate())
	}
	out.At = time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if prev := b.last; !prev.At.IsZero() {
		if dt := out.At.Sub(prev.At).Seconds(); dt > 0 {
			out.Drain = float64(prev.Count-out.Count) / dt
		}
	}
	b.last = out
	return out, nil
}

// Run samples every Interval (default 2 s) until ctx ends. A failed sample
// is logged and keeps the previous one: the breaker and the health checks
// report an unreachable frontend, not the sampler.
func (b *BacklogSampler) Run(ctx context.Context) {
	interval := b.Interval
	if interval <= 0 {
		interval = 2 * time.Second
	}
	log := b.Log
	if log == nil {
		log = zap.NewNop()
	}
	m := otel.Meter("github.com/orderflow/orderflow/internal/temporal")
	count, _ := m.Int64ObservableGauge("orderflow.temporal.task_queue.backlog",
		metric.WithDescription("Tasks (workflow and activity) waiting in a task queue for a worker, as the server last reported."))
	age, _ := m.Float64ObservableGauge("orderflow.temporal.task_queue.backlog_age",
		metric.WithUnit("s"), metric.WithDescription("Age of the oldest task waiting in a task queue, as the server last reported."))
	if count != nil && age != nil {
		reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
			l := b.Last()
			attrs := metric.WithAttributes(attribute.String("task_queue", b.TaskQueue))
			o.ObserveInt64(count, l.Count, attrs)
			o.ObserveFloat64(age, l.Age.Seconds(), attrs)
			return nil
		}, count, age)
		if err == nil {
			defer func() { _ = reg.Unregister() }()
		}
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		sctx, cancel := context.WithTimeout(ctx, interval)
		if _, err := b.Sample(sctx); err != nil && ctx.Err() == nil {
			log.Debug("task queue backlog sample failed", zap.String("task_queue", b.TaskQueue), zap.Error(err))
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
