package api

import (
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Route classes of the gateway's bulkheads.
const (
	// ClassCritical is the order path: placing and cancelling orders.
	ClassCritical = "critical"
	// ClassNonCritical is reads: orders and the catalog.
	ClassNonCritical = "noncritical"
	// ClassAdmin is catalog maintenance and any future admin route.
	ClassAdmin = "admin"
)

// routeClass returns the bulkhead of a matched route (Echo's path pattern),
// "" for the health and metrics routes, which are never shed, and for
// requests that matched no route. A route not listed is a read when it is a
// GET or HEAD and admin work otherwise, so that a new write route lands in the
// smallest class until someone decides otherwise.
func routeClass(method, route string) string {
	if route == "" || exemptFromLimits(route) {
		return ""
	}
	switch method + " " + route {
	case "POST /v1/orders", "POST /v1/orders/:id/cancel":
		return ClassCritical
	case "GET /v1/orders/:id", "GET /v1/products", "GET /v1/products/:sku":
		return ClassNonCritical
	case "PUT /v1/products/:sku":
		return ClassAdmin
	}
	if strings.HasPrefix(route, "/v1/admin/") {
		return ClassAdmin
	}
	if method == http.MethodGet || method == http.MethodHead {
		return ClassNonCritical
	}
	return ClassAdmin
}

// bulkhead bounds one class's requests in flight.
type bulkhead struct {
	size     int64
	inFlight atomic.Int64
	shed     atomic.Int64
}

// bulkheads split the gateway's in-flight requests between the classes, so a
// flood of reads or admin calls cannot take the capacity orders need, and an
// overloaded class answers 503 at once instead of queueing.
type bulkheads struct {
	classes   map[string]*bulkhead
	shedCount metric.Int64Counter
}

func newBulkheads(cfg Bulkhead) *bulkheads {
	b := &bulkheads{classes: map[string]*bulkhead{
		ClassCritical:    {size: int64(cfg.Share(cfg.MaxInFlight, cfg.CriticalPct))},
		ClassNonCritical: {size: int64(cfg.Share(cfg.MaxInFlight, cfg.NonCriticalPct))},
		ClassAdmin:       {size: int64(cfg.Share(cfg.MaxInFlight, cfg.AdminPct))},
	}}
	b.shedCount, _ = otel.Meter("github.com/orderflow/orderflow/api").Int64Counter("orderflow.gateway.shed",
		metric.WithDescription("requests refused with 503 because their class was full, by class"))
	return b
}

// Shed returns how many requests of a class (ClassCritical, ClassNonCritical,
// ClassAdmin) this gateway refused because the class was full.
func (s *Server) Shed(class string) int64 {
	if s.bulkheads == nil || s.bulkheads.classes[class] == nil {
		return 0
	}
	return s.bulkheads.classes[class].shed.Load()
}

// InFlight returns how many requests of a class are being served now.
func (s *Server) InFlight(class string) int64 {
	if s.bulkheads == nil || s.bulkheads.classes[class] == nil {
		return 0
	}
	return s.bulkheads.classes[class].inFlight.Load()
}

// shed is the middleware: it takes a slot of the request's class for the
// request's lifetime, or answers 503 overloaded with Retry-After when there
// is none.
func (s *Server) shed(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		class := routeClass(c.Request().Method, c.Path())
		b := s.bulkheads.classes[class]
		if b == nil {
			return next(c)
		}
		if b.inFlight.Add(1) > b.size {
			b.inFlight.Add(-1)
			b.shed.Add(1)
			s.bulkheads.shedCount.Add(c.Request().Context(), 1, metric.WithAttributes(attribute.String("class", class)))
			return unavailable("overloaded", "the gateway is at capacity for "+class+" requests; retry after the Retry-After seconds")
		}
		defer b.inFlight.Add(-1)
		return next(c)
	}
}
