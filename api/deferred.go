package api

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/orders"
	"github.com/orderflow/orderflow/internal/breaker"
	"github.com/orderflow/orderflow/internal/db"
	"github.com/orderflow/orderflow/internal/temporal"
	"github.com/orderflow/orderflow/workflows/order"
)

// Deferred saga starts (docs/resilience.md, "Placements while Temporal
// stalls"). An order is accepted once its acceptance record, which holds the
// saga's sealed start, is durable; starting the saga is then only a matter
// of time. When Temporal cannot take the start in time (a lost server whose
// shards have not moved yet, shards moving, the gateway's breaker open), the
// gateway marks the record, durably, and answers 202 all the same; every
// gateway's starter starts the marked sagas as soon as Temporal takes them
// and clears the marks. So a customer's placement does not wait on Temporal's
// own failover. It is bounded: while the oldest mark is older than
// Config.StartDeferMax (Temporal unable to take starts for that long), new
// placements are refused with 503 as before.

const (
	// deferBudget is what a placement keeps of requestTimeout to mark its
	// start deferred when the start did not answer in time.
	deferBudget = 1500 * time.Millisecond
	// starterInterval is how often a gateway's starter looks for marks.
	starterInterval = time.Second
	// starterBatch and starterParallel bound one look: the marks taken, the
	// longest waiting first, and the starts in flight at once.
	starterBatch    = 256
	starterParallel = 16
	// starterCallTimeout bounds one deferred start.
	starterCallTimeout = 3 * time.Second
)

// deferredStarts is the gateway's view of the marks: when the oldest it
// knows of was made (unix nanoseconds, 0 for none), and its meters.
type deferredStarts struct {
	oldest   atomic.Int64
	once     sync.Once
	deferred metric.Int64Counter
	started  metric.Int64Counter
	delay    metric.Float64Histogram
}

func (d *deferredStarts) meters() *deferredStarts {
	d.once.Do(func() {
		m := otel.Meter("github.com/orderflow/orderflow/api")
		d.deferred, _ = m.Int64Counter("orderflow.orders.start_deferred",
			metric.WithDescription("orders accepted with their saga's start deferred: Temporal could not take the start in time"))
		d.started, _ = m.Int64Counter("orderflow.orders.deferred_started",
			metric.WithDescription("deferred saga starts made by the gateway's starter"))
		d.delay, _ = m.Float64Histogram("orderflow.orders.start_delay", metric.WithUnit("s"),
			metric.WithDescription("from a deferred start's mark to its saga started"))
		ctx := context.Background()
		d.deferred.Add(ctx, 0)
		d.started.Add(ctx, 0)
	})
	return d
}

// noteDeferred records a mark made at t unless an older one is known.
func (d *deferredStarts) noteDeferred(t time.Time) {
	d.oldest.CompareAndSwap(0, t.UnixNano())
}

// canDefer reports whether a placement whose saga cannot be started now
// may be accepted with its start deferred: deferral is on, the gateway
// seals saga starts, and the oldest mark it knows of is younger than
// StartDeferMax.
func (s *Server) canDefer() bool {
	if s.StartDeferMax <= 0 || s.PII == nil || s.DB == nil {
		return false
	}
	oldest := s.deferred.oldest.Load()
	return oldest == 0 || time.Since(time.Unix(0, oldest)) < s.StartDeferMax
}

// startFailsForNow reports whether a start's error is Temporal not taking
// it now (unreachable, too slow, the breaker open), which a later start
// may not meet. A refusal of the start itself is not, nor is the frontend's
// rate limit (ResourceExhausted): that is overload, which deferring would
// only pile up; it stays a 503 with Retry-After.
func startFailsForNow(err error) bool {
	var unavailable *serviceerror.Unavailable
	var deadline *serviceerror.DeadlineExceeded
	var exhausted *serviceerror.ResourceExhausted
	if errors.As(err, &exhausted) {
		return false
	}
	return errors.Is(err, breaker.ErrOpen) || errors.Is(err, context.DeadlineExceeded) ||
		errors.As(err, &unavailable) || errors.As(err, &deadline)
}

// startOrDefer starts the order's saga. When Temporal does not take the
// start in time and deferral is possible, it marks the acceptance record
// held under the key and the placement is answered 202 as if started; the
// starter starts it. Otherwise a failed start is a 503 to retry with the
// same key.
func (s *Server) startOrDefer(ctx context.Context, orderID, key string, req *PlaceOrderRequest, total int64, currency string) error {
	refused := unavailable("temporal_unavailable", "the order could not be started; retry with the same Idempotency-Key")
	if !s.canDefer() {
		if s.startSaga(ctx, orderID, req, total, currency) != nil {
			return refused
		}
		return nil
	}
	sctx := ctx
	if deadline, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		sctx, cancel = context.WithDeadline(ctx, deadline.Add(-deferBudget))
		defer cancel()
	}
	err := s.startSaga(sctx, orderID, req, total, currency)
	if err == nil {
		return nil
	}
	if !startFailsForNow(err) || ctx.Err() != nil {
		return refused
	}
	marked, derr := s.ordersStore().DeferStart(ctx, req.CustomerID, opCreateOrder, key, orderID)
	if derr != nil || !marked {
		s.orderLog(ctx, orderID).Warn("could not defer the saga's start", zap.Bool("marked", marked), zap.Error(derr))
		return refused
	}
	s.deferred.noteDeferred(time.Now())
	s.deferred.meters().deferred.Add(ctx, 1)
	s.orderLog(ctx, orderID).Info("order accepted with its saga's start deferred", zap.NamedError("start_error", err))
	return nil
}

// RunDeferredStarts starts the sagas of the orders accepted with a deferred
// start, every starterInterval until ctx ends. Every gateway runs it; two
// starting the same saga attach to one (order.StartAccepted). It returns at
// once when deferral is off. Call it after Handler.
func (s *Server) RunDeferredStarts(ctx context.Context) {
	if s.StartDeferMax <= 0 || s.PII == nil || s.DB == nil || s.Temporal == nil {
		return
	}
	t := time.NewTicker(starterInterval)
	defer t.Stop()
	for {
		s.StartDeferred(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// StartDeferred looks for marks once and starts their sagas, reporting how
// many marks it cleared.
func (s *Server) StartDeferred(ctx context.Context) int {
	store := s.ordersStore()
	lctx, cancel := context.WithTimeout(ctx, db.StatementTimeout)
	marks, err := store.DeferredStarts(lctx, starterBatch)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			s.Log.Debug("list deferred saga starts", zap.Error(err))
		}
		return 0
	}
	if len(marks) == 0 {
		s.deferred.oldest.Store(0)
		return 0
	}
	s.deferred.oldest.Store(marks[0].DeferredAt.UnixNano())
	// The starter's calls go around the breaker: they neither wait for it
	// nor keep it open; each is bounded on its own.
	c := s.Temporal
	if g, ok := c.(*temporal.Guarded); ok {
		c = g.Client
	}
	var started atomic.Int64
	sem := make(chan struct{}, starterParallel)
	var wg sync.WaitGroup
	for _, m := range marks {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if s.startMarked(ctx, c, store, m) {
				started.Add(1)
			}
		}()
	}
	wg.Wait()
	return int(started.Load())
}

// startMarked starts one marked saga and clears its mark.
func (s *Server) startMarked(ctx context.Context, c client.Client, store orders.Store, m orders.Deferred) bool {
	ctx, cancel := context.WithTimeout(ctx, starterCallTimeout)
	defer cancel()
	log := s.Log.With(zap.String("order_id", m.OrderID))
	if _, err := order.StartAccepted(ctx, c, s.PII, m.Accepted, "Order "+m.OrderID+" — started by the gateway's starter (deferred at acceptance)"); err != nil {
		if startFailsForNow(err) {
			log.Debug("deferred saga start failed; the next look retries it", zap.Error(err))
		} else {
			// Not Temporal being away: an operator must look (the mark
			// stays, and once it is older than StartDeferMax no placement
			// is deferred).
			log.Warn("deferred saga start refused; the next look retries it", zap.Duration("waiting", time.Since(m.DeferredAt)), zap.Error(err))
		}
		return false
	}
	cleared, err := store.StartedDeferred(ctx, m.OrderID)
	if err != nil {
		log.Warn("deferred saga started; its mark stays until the next look", zap.Error(err))
	}
	if !cleared {
		return false // the other gateway's starter got there first: one saga, counted once
	}
	waited := time.Since(m.DeferredAt)
	d := s.deferred.meters()
	d.started.Add(ctx, 1)
	d.delay.Record(ctx, waited.Seconds())
	log.Info("deferred saga started", zap.Duration("waited", waited))
	return true
}

// deferredMark returns the order's mark, found false when its start is not
// deferred (or the gateway defers none).
func (s *Server) deferredMark(ctx context.Context, id string) (orders.Deferred, bool, error) {
	if s.PII == nil || s.DB == nil {
		return orders.Deferred{}, false, nil
	}
	return s.ordersStore().DeferredStart(ctx, id)
}

// deferredView is the order as its acceptance record shows it while its
// saga's start is deferred: PENDING, its lines and total as priced at
// acceptance; nil when the order has no mark.
func (s *Server) deferredView(ctx context.Context, id string) (*OrderJSON, error) {
	m, found, err := s.deferredMark(ctx, id)
	if err != nil || !found {
		return nil, err
	}
	var st order.Start
	if err := orders.OpenStart(s.PII, id, m.Saga, &st); err != nil {
		// Its key retired: the order without its lines.
		s.orderLog(ctx, id).Warn("open the sealed start of a deferred order", zap.Error(err))
	}
	o := OrderJSON{OrderID: id, CustomerID: m.CustomerID, Status: orderflow.StatusPending, TotalCents: st.TotalCents,
		Currency: st.Currency, CreatedAt: m.AcceptedAt, UpdatedAt: m.AcceptedAt, Items: []LineJSON{},
		History: []HistoryJSON{{Status: orderflow.StatusPending, At: m.AcceptedAt}}}
	for _, l := range st.Lines {
		o.Items = append(o.Items, LineJSON(l))
	}
	return &o, nil
}
