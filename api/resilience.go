package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/orderflow/orderflow/internal/admission"
	"github.com/orderflow/orderflow/internal/breaker"
	"github.com/orderflow/orderflow/internal/temporal"
	"github.com/orderflow/orderflow/workflows/order"
)

// Resilience configures the gateway's adaptive admission of the order
// class, the backpressure it takes from the order task queue's backlog and
// the breakers in front of Temporal and Redis. A zero field takes its
// default (admission.Config's and breaker.Design).
type Resilience struct {
	// Admission turns the adaptive limit of order placements and cancels on.
	Admission bool
	// Limit sets the adaptive limit and its queue-wait budget.
	Limit admission.Config
	// Namespace is the Temporal namespace whose order task queue is watched.
	Namespace string
	// BacklogInterval is how often the backlog is sampled (0: 2 s).
	BacklogInterval time.Duration
	// BacklogMaxAge and BacklogMaxCount refuse new placements while the
	// order task queue's oldest task is older, or it holds more tasks; zero
	// turns that bound off.
	BacklogMaxAge   time.Duration
	BacklogMaxCount int64
	// Breakers sets the thresholds of the Temporal and Redis breakers.
	Breakers breaker.Settings
	// TemporalOpenTimeout is how long the Temporal breaker stays open
	// before its trial calls (0: DefaultTemporalOpenTimeout); it wins over
	// Breakers.OpenTimeout for that breaker.
	TemporalOpenTimeout time.Duration
}

// DefaultTemporalOpenTimeout is the Temporal breaker's open period unless
// set (TEMPORAL_BREAKER_OPEN_TIMEOUT). It departs from the design's 30 s
// (breaker.Design) on purpose: the frontend is reached through a balancer
// that routes around a lost server within a second, the cluster moves a
// lost server's shards within seconds and the gRPC client reconnects by
// itself, so a 30 s open period kept refusing placements for tens of
// seconds after Temporal served again. A trial is three cheap calls every
// 5 s, which a frontend that is still down does not notice.
const DefaultTemporalOpenTimeout = 5 * time.Second

// temporalBreaker is the settings of the Temporal breaker: the common
// thresholds with its own open period.
func (r Resilience) temporalBreaker() breaker.Settings {
	s := r.Breakers
	s.OpenTimeout = r.TemporalOpenTimeout
	if s.OpenTimeout <= 0 {
		s.OpenTimeout = DefaultTemporalOpenTimeout
	}
	return s
}

// Names of the gateway's breakers (the dependency label of
// orderflow_breaker_state, and "breaker:<name>" in /health/deep).
const (
	BreakerTemporal = "temporal"
	BreakerRedis    = "redis"
)

// Reasons a placement or cancel is refused by admission (the reason label of
// orderflow_admission_refused_total).
const (
	RefusedQueue   = "queue"
	RefusedWait    = "wait"
	RefusedBacklog = "backlog"
)

// resilience is the gateway's admission state and breakers.
type resilience struct {
	limiter  *admission.Limiter
	backlog  *temporal.BacklogSampler
	breakers map[string]*breaker.Breaker
	refused  metric.Int64Counter
	wait     metric.Float64Histogram
}

// guardDependencies puts the Temporal client's per-request calls and every
// Redis command of the gateway behind their breakers and adds the breakers'
// checks to /health and /health/deep, then builds admission; it runs once,
// from Handler.
func (s *Server) guardDependencies() {
	r := &resilience{breakers: map[string]*breaker.Breaker{}}
	s.res = r
	cfg := s.Resilience
	if s.Temporal != nil {
		b := temporal.NewFrontendBreaker(cfg.temporalBreaker())
		r.breakers[BreakerTemporal] = b
		s.Temporal = temporal.Guard(s.Temporal, b)
		s.HealthChecks = append(s.HealthChecks, b.Check())
	}
	if s.Cache != nil {
		b := breaker.NewRedis(BreakerRedis, cfg.Breakers)
		r.breakers[BreakerRedis] = b
		s.Cache.AddHook(breaker.RedisHook(b))
		s.HealthChecks = append(s.HealthChecks, b.Check())
	}
	if s.Temporal != nil && (cfg.BacklogMaxAge > 0 || cfg.BacklogMaxCount > 0) {
		r.backlog = &temporal.BacklogSampler{Client: s.Temporal, Namespace: cfg.Namespace,
			TaskQueue: order.TaskQueue(s.Region), Interval: cfg.BacklogInterval, Log: s.Log}
	}
	if !cfg.Admission {
		return
	}
	r.limiter = admission.New(cfg.Limit)
	m := otel.Meter("github.com/orderflow/orderflow/api")
	r.refused, _ = m.Int64Counter("orderflow.admission.refused",
		metric.WithDescription("order placements and cancels refused with 503 by admission, by reason: queue (no slot within the wait budget), wait (waited the budget), backlog (the order task queue is backed up)"))
	r.wait, _ = m.Float64Histogram("orderflow.admission.queue_wait", metric.WithUnit("s"),
		metric.WithDescription("how long admitted order placements and cancels waited for a slot"))
	limit, _ := m.Int64ObservableGauge("orderflow.admission.limit",
		metric.WithDescription("the adaptive limit of order placements and cancels in flight"))
	inFlight, _ := m.Int64ObservableGauge("orderflow.admission.in_flight",
		metric.WithDescription("order placements and cancels in flight"))
	queued, _ := m.Int64ObservableGauge("orderflow.admission.queued",
		metric.WithDescription("order placements and cancels waiting for a slot"))
	_, _ = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st := r.limiter.Stats()
		o.ObserveInt64(limit, int64(st.Limit))
		o.ObserveInt64(inFlight, int64(st.InFlight))
		o.ObserveInt64(queued, int64(st.Queued))
		return nil
	}, limit, inFlight, queued)
	ctx := context.Background()
	for _, reason := range []string{RefusedQueue, RefusedWait, RefusedBacklog} {
		r.refused.Add(ctx, 0, metric.WithAttributes(attribute.String("reason", reason)))
	}
}

// Breaker returns the gateway's breaker of a dependency (BreakerTemporal,
// BreakerRedis), nil before Handler ran or without that dependency.
func (s *Server) Breaker(name string) *breaker.Breaker {
	if s.res == nil {
		return nil
	}
	return s.res.breakers[name]
}

// Admission returns the adaptive limiter's state; zero without admission.
func (s *Server) Admission() admission.Stats {
	if s.res == nil || s.res.limiter == nil {
		return admission.Stats{}
	}
	return s.res.limiter.Stats()
}

// WatchBacklog samples the order task queue's backlog until ctx ends,
// feeding admission and the orderflow_temporal_task_queue_backlog metrics.
// It returns at once when no backlog bound is set. Call it after Handler.
func (s *Server) WatchBacklog(ctx context.Context) {
	if s.res == nil || s.res.backlog == nil {
		return
	}
	s.res.backlog.Run(ctx)
}

// SampleBacklog samples the backlog once, as WatchBacklog does every interval.
func (s *Server) SampleBacklog(ctx context.Context) (temporal.Backlog, error) {
	if s.res == nil || s.res.backlog == nil {
		return temporal.Backlog{}, errors.New("no backlog bound set")
	}
	return s.res.backlog.Sample(ctx)
}

// backlogged reports whether the last backlog sample is over a bound.
func (s *Server) backlogged() bool {
	if s.res.backlog == nil {
		return false
	}
	return s.Resilience.backlogged(s.res.backlog.Last())
}

// backlogClearHorizon is how soon a backlog must be cleared, at the rates
// the server reports, for placements to pass despite it when no age bound
// is set.
const backlogClearHorizon = 10 * time.Second

// backlogged reports whether b is over a bound and not being cleared. A
// queue whose tasks leave faster than they come, fast enough to empty it
// within the age bound, is the backlog an outage (a PostgreSQL failover,
// a lost Temporal server) left behind while workers work it off: refusing
// placements then would only stretch the outage for clients, while a
// queue the workers cannot keep up with goes on being refused.
func (r Resilience) backlogged(b temporal.Backlog) bool {
	over := (r.BacklogMaxAge > 0 && b.Age > r.BacklogMaxAge) || (r.BacklogMaxCount > 0 && b.Count > r.BacklogMaxCount)
	horizon := r.BacklogMaxAge
	if horizon <= 0 {
		horizon = backlogClearHorizon
	}
	return over && !b.ClearsWithin(horizon)
}

// admit is the middleware of the critical class. While the Temporal
// breaker is open it refuses placements and cancels at once with 503
// temporal_unavailable and Retry-After (what is left of the open period).
// Otherwise a placement or cancel
// takes a slot of the adaptive limit for its lifetime, cancels ahead of
// placements, or is refused at once with 503 overloaded and Retry-After. New
// placements are also refused while the order task queue is backlogged;
// cancels never are. Reads are not the limiter's business: their bulkhead
// keeps them apart.
func (s *Server) admit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := s.res
		if r == nil || routeClass(c.Request().Method, c.Path()) != ClassCritical {
			return next(c)
		}
		// With the Temporal breaker open no placement or cancel can get
		// through: refuse before any database work, and say when to retry;
		// a placement goes on when its start may be deferred.
		placement := c.Path() == "/v1/orders"
		if b := r.breakers[BreakerTemporal]; b != nil && b.Open() && !(placement && s.canDefer()) {
			e := unavailable("temporal_unavailable", "the order service is unavailable; retry with the same Idempotency-Key after the Retry-After seconds")
			e.RetryAfter = strconv.Itoa(int(b.RetryAfter() / time.Second))
			return e
		}
		if r.limiter == nil {
			return next(c)
		}
		ctx := c.Request().Context()
		prio := admission.Normal
		if !placement {
			prio = admission.High
		}
		if prio == admission.Normal && s.backlogged() {
			// The next sample may lift the refusal.
			return s.refuse(ctx, RefusedBacklog, min(max(s.Resilience.BacklogInterval, time.Second), 30*time.Second),
				"orders are backing up in the order queue; retry after the Retry-After seconds")
		}
		t, err := r.limiter.Acquire(ctx, prio)
		switch {
		case errors.Is(err, admission.ErrQueueFull):
			return s.refuse(ctx, RefusedQueue, r.limiter.RetryAfter(), "the gateway is at its order capacity; retry after the Retry-After seconds")
		case errors.Is(err, admission.ErrWaitExceeded):
			return s.refuse(ctx, RefusedWait, r.limiter.RetryAfter(), "the gateway is at its order capacity; retry after the Retry-After seconds")
		case err != nil:
			return err // the caller left
		}
		defer t.Release()
		r.wait.Record(ctx, t.Waited.Seconds())
		return next(c)
	}
}

// refuse counts a refusal and returns its 503.
func (s *Server) refuse(ctx context.Context, reason string, after time.Duration, msg string) error {
	s.res.refused.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", reason)))
	e := newError(http.StatusServiceUnavailable, "overloaded", msg)
	e.RetryAfter = strconv.Itoa(max(1, int(after.Round(time.Second)/time.Second)))
	return e
}
