package api

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Names of the gateway's instruments. The Prometheus exporter turns dots into
// underscores and adds the unit and _total suffixes:
// orderflow_http_server_duration_seconds, orderflow_orders_placed_total,
// orderflow_orders_idempotent_replays_total.
const (
	metricHTTPDuration = "orderflow.http.server.duration"
	metricPlaced       = "orderflow.orders.placed"
	metricReplays      = "orderflow.orders.idempotent_replays"
)

// gatewayMetrics are the gateway's RED and business instruments. The request
// histogram is the whole RED set: its _count by status class gives rate and
// errors, its buckets the latency.
type gatewayMetrics struct {
	duration metric.Float64Histogram
	placed   metric.Int64Counter
	replays  metric.Int64Counter

	// opts caches the record option of each method, route and status class,
	// so a request builds no attribute set.
	opts sync.Map // redKey -> metric.RecordOption
}

type redKey struct {
	method, route string
	class         int
}

func newGatewayMetrics() *gatewayMetrics {
	m := otel.Meter("github.com/orderflow/orderflow/api")
	g := &gatewayMetrics{}
	// The global API returns a usable no-op instrument beside any error,
	// which can only be an invalid name.
	g.duration, _ = m.Float64Histogram(metricHTTPDuration, metric.WithUnit("s"),
		metric.WithDescription("HTTP requests the gateway answered, by method, route template and status class, with their duration"))
	g.placed, _ = m.Int64Counter(metricPlaced,
		metric.WithDescription("orders accepted with 202 whose saga this request started (idempotent replays excluded)"))
	g.replays, _ = m.Int64Counter(metricReplays,
		metric.WithDescription("POST /v1/orders answered from an earlier request with the same Idempotency-Key"))
	// Counters export nothing until they are first added to; add zero so
	// their families (and a zero to take rate() from) exist from the start.
	ctx := context.Background()
	g.placed.Add(ctx, 0)
	g.replays.Add(ctx, 0)
	return g
}

// red records every request's method, route template, status class and
// duration. It answers an error itself, as accessLog does, so the status it
// records is the one the client gets.
func (s *Server) red(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		if err := next(c); err != nil {
			c.Error(err)
		}
		s.meters.duration.Record(c.Request().Context(), time.Since(start).Seconds(),
			s.meters.option(c.Request().Method, c.Path(), c.Response().Status))
		return nil
	}
}

// option returns the cached record option for a request's labels. Only
// route templates reach it, never raw paths, and methods outside the
// standard set share one label, so the set stays small.
func (g *gatewayMetrics) option(method, route string, status int) metric.RecordOption {
	k := redKey{method: method, route: route, class: status / 100}
	if o, ok := g.opts.Load(k); ok {
		return o.(metric.RecordOption)
	}
	label := k.route
	if label == "" {
		label = "unmatched"
	}
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
	default:
		k.method, method = "OTHER", "OTHER"
		if o, ok := g.opts.Load(k); ok {
			return o.(metric.RecordOption)
		}
	}
	o := metric.WithAttributeSet(attribute.NewSet(
		attribute.String("method", method), attribute.String("route", label), attribute.String("status_class", statusClass(k.class))))
	actual, _ := g.opts.LoadOrStore(k, o)
	return actual.(metric.RecordOption)
}

func statusClass(class int) string {
	switch class {
	case 1:
		return "1xx"
	case 2:
		return "2xx"
	case 3:
		return "3xx"
	case 4:
		return "4xx"
	case 5:
		return "5xx"
	}
	return "other"
}
