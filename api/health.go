package api

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/orders"
	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/internal/health"
	"github.com/orderflow/orderflow/workflows/order"
)

// Names of the deep checks, as they appear in GET /health/deep.
const (
	CheckInventory      = "inventory"
	CheckSyntheticOrder = "synthetic_order"
)

// healthState is the gateway's checkers and the deep check's single flight.
type healthState struct {
	once          sync.Once
	cfg           Health
	shallow, deep *health.Checker
	// untemporal is shallow without the Temporal frontend's check and
	// breaker: readiness while placements can be deferred.
	untemporal *health.Checker

	// running is held while a deep check runs; a second caller does not wait.
	running sync.Mutex
	lastMu  sync.Mutex
	last    *health.Report
}

// checkers builds, once, the checker of GET /health (database, cache,
// Temporal, disk, memory and HealthChecks) and that of GET /health/deep (the
// same plus the inventory row of the synthetic SKU, a synthetic order through
// the saga and ProviderChecks).
func (s *Server) checkers() (shallow, deep *health.Checker) {
	s.hs.once.Do(func() {
		h := s.Health.withDefaults()
		s.hs.cfg = h
		base := []health.Check{
			health.Database(s.DB), health.Cache(s.Cache), health.Temporal(s.Temporal),
		}
		base = append(base, h.Checks()...)
		base = append(base, s.HealthChecks...)
		s.hs.shallow = health.New(h.Budget, base...)
		var rest []health.Check
		for _, ch := range base {
			if ch.Name != health.NameTemporal && ch.Name != CheckTemporalBreaker {
				rest = append(rest, ch)
			}
		}
		s.hs.untemporal = health.New(h.Budget, rest...)
		s.hs.deep = health.New(h.DeepBudget, base...)
		s.hs.deep.Add(
			health.Check{Name: CheckInventory, Critical: true, Fn: s.checkInventory},
			health.Check{Name: CheckSyntheticOrder, Critical: true, Fn: s.checkSyntheticOrder},
		)
		s.hs.deep.Add(s.ProviderChecks...)
	})
	return s.hs.shallow, s.hs.deep
}

// HealthChecker is the checker of GET /health, to which a process may add
// checks of its own.
func (s *Server) HealthChecker() *health.Checker {
	shallow, _ := s.checkers()
	return shallow
}

// health answers GET /health and GET /health/ready: 200 while PostgreSQL,
// Temporal, disk and memory are fine (Redis being down only degrades it), 503
// naming the failing checks otherwise.
func (s *Server) health(c echo.Context) error {
	shallow, _ := s.checkers()
	health.WriteReport(c.Response(), shallow.Run(c.Request().Context()))
	return nil
}

// CheckTemporalBreaker is the check of the Temporal breaker, which GET
// /health/ready makes critical and ?exclude= may leave out.
const CheckTemporalBreaker = "breaker:" + BreakerTemporal

// ready answers GET /health/ready, the load balancer's check: 503 from the
// moment the gateway drains (Drain), else the shallow checks of /health
// with the Temporal breaker's made critical: while that breaker is open
// this gateway refuses every placement and cancel, so the balancer should
// send them to another gateway, and it comes back once the breaker lets
// its trial calls through. GET /health/ready?exclude=breaker:temporal
// leaves that check out, as Kubernetes' /readyz?exclude= does: the
// balancer's fallback when every gateway's breaker is open, so that reads
// go on and placements get the gateway's own 503 with Retry-After.
//
// While placements can be deferred (docs/resilience.md, "Placements while
// Temporal stalls"), Temporal is not part of readiness at all: the gateway
// takes placements on their durable records without it, and Temporal is
// every gateway's shared dependency, so a stalled frontend (a lost server,
// whose calls hang until the balancer routes around it) would otherwise
// take every gateway out of rotation at once and the balancer would cut
// the requests in flight.
func (s *Server) ready(c echo.Context) error {
	q, err := queryParams(c, "exclude")
	if err != nil {
		return err
	}
	exclude, excluded := q["exclude"]
	if excluded && exclude != CheckTemporalBreaker {
		return newError(http.StatusBadRequest, "invalid_request", "only "+CheckTemporalBreaker+" may be excluded",
			Detail{Field: "exclude", Issue: "not " + CheckTemporalBreaker})
	}
	if s.draining.Load() {
		return unavailable("draining", "the gateway is shutting down; another instance serves")
	}
	shallow, _ := s.checkers()
	if s.canDefer() {
		health.WriteReport(c.Response(), s.hs.untemporal.Run(c.Request().Context()))
		return nil
	}
	rep := shallow.Run(c.Request().Context())
	if r, ok := rep.Checks[CheckTemporalBreaker]; ok && !excluded && r.Status != health.StatusOK {
		r.Critical, r.Status = true, health.StatusFail
		rep.Checks[CheckTemporalBreaker] = r
		rep.Status = health.StatusFail
	}
	health.WriteReport(c.Response(), rep)
	return nil
}

// Drain makes GET /health/ready fail from now on, so that load balancers
// stop sending new requests here while those in flight finish.
func (s *Server) Drain() { s.draining.Store(true) }

// healthDeep answers GET /health/deep: the shallow checks plus a real order
// through the saga. One deep check runs at a time per process, so the
// endpoint cannot be used to flood the platform with orders: a caller that
// finds one running gets the last completed report at once (marked with
// Health-Cached: true), or 503 when there is none yet.
func (s *Server) healthDeep(c echo.Context) error {
	_, deep := s.checkers()
	if !s.hs.running.TryLock() {
		s.hs.lastMu.Lock()
		last := s.hs.last
		s.hs.lastMu.Unlock()
		if last == nil {
			return newError(http.StatusServiceUnavailable, "health_check_running", "a deep health check is running; retry shortly")
		}
		c.Response().Header().Set("Health-Cached", "true")
		health.WriteReport(c.Response(), *last)
		return nil
	}
	defer s.hs.running.Unlock()
	// A caller hanging up does not cut the synthetic order short; the
	// budget bounds the run.
	rep := deep.Run(context.WithoutCancel(c.Request().Context()))
	s.hs.lastMu.Lock()
	s.hs.last = &rep
	s.hs.lastMu.Unlock()
	if rep.Status == health.StatusFail {
		s.Log.Warn("deep health check failed", zap.Strings("failing", rep.Failing))
	}
	health.WriteReport(c.Response(), rep)
	return nil
}

// checkInventory reads the synthetic SKU's inventory row, which must exist,
// belong to a product marked synthetic and have stock for one order.
func (s *Server) checkInventory(ctx context.Context) (string, error) {
	sku := s.hs.cfg.SyntheticSKU
	available, synthetic, found, err := s.catalogStore().SyntheticStock(ctx, sku)
	switch {
	case err != nil:
		return "", err
	case !found:
		return "", fmt.Errorf("synthetic sku %s has no inventory row (migration 0003 seeds it)", sku)
	case !synthetic:
		return "", fmt.Errorf("sku %s is not marked synthetic", sku)
	case available < 1:
		return "", fmt.Errorf("synthetic sku %s has no stock available", sku)
	}
	return fmt.Sprintf("%s: %d available", sku, available), nil
}

// checkSyntheticOrder places one unit of the synthetic SKU for the synthetic
// customer through the real saga (workflow order-<id> on this region's task
// queue, card tok_visa), waits for its outcome within the budget and requires
// CONFIRMED. It then puts back the stock that synthetic orders took, so the
// SKU never runs down. It refuses to run on a SKU not marked synthetic, so a
// misconfiguration can never consume real stock.
func (s *Server) checkSyntheticOrder(ctx context.Context) (string, error) {
	h := s.hs.cfg
	synthetic, err := s.catalogStore().Synthetic(ctx, h.SyntheticSKU)
	if err != nil {
		return "", err
	}
	if !synthetic {
		return "", fmt.Errorf("sku %s is not marked synthetic; refusing to order it", h.SyntheticSKU)
	}
	orderID := uuid.NewString()
	opts := s.sagaOptions(orderID, h.SyntheticOwner)
	opts.StaticSummary = "Synthetic health-check order " + orderID
	in := s.sagaInput(order.Input{CreateOrderInput: orders.CreateOrderInput{
		OrderID: orderID, CustomerID: h.SyntheticOwner, Email: "synthetic-health@orderflow.invalid",
		Items: []orderflow.Item{{SKU: h.SyntheticSKU, Quantity: 1}},
	}, PaymentToken: payment.TokenVisa})
	in.Fulfill = false // nothing ships: the synthetic order ends CONFIRMED
	run, err := s.Temporal.ExecuteWorkflow(ctx, opts, order.Workflow, in)
	if err != nil {
		return "", fmt.Errorf("start synthetic order %s: %w", orderID, err)
	}
	var v order.View
	if err := run.Get(ctx, &v); err != nil {
		return "", fmt.Errorf("synthetic order %s: %w", orderID, err)
	}
	if v.Status != orderflow.StatusConfirmed {
		return "", fmt.Errorf("synthetic order %s ended %s (%s), not %s", orderID, v.Status, v.FailureReason, orderflow.StatusConfirmed)
	}
	n, err := s.catalogStore().RestockSynthetic(ctx, h.SyntheticOwner)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("order %s confirmed; %d unit(s) put back", orderID, n), nil
}

// refuseSynthetic answers 422 to a public order naming the synthetic SKU,
// which only the deep health check may order.
func (s *Server) refuseSynthetic(items []OrderItem) error {
	s.checkers()
	sku := s.hs.cfg.SyntheticSKU
	for i, it := range items {
		if it.SKU == sku {
			return newError(http.StatusUnprocessableEntity, "unknown_sku", "the order names SKUs that are not in the catalog",
				Detail{Field: fmt.Sprintf("items[%d].sku", i), Issue: "unknown sku " + it.SKU})
		}
	}
	return nil
}
