// Package telemetry wires OpenTelemetry for orderflow's processes. Code
// records metrics through the global API (otel.Meter); Metrics installs the
// provider that exports them.
package telemetry

import (
	"context"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.temporal.io/sdk/client"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
)

// Metrics installs the global MeterProvider, exporting every instrument the
// process records (breaker states, rate-limit fallbacks, sheds, cache hits
// and misses, ...) in the Prometheus text format, with the Go runtime and
// process collectors beside them. It returns the GET /metrics handler and
// the provider's shutdown.
func Metrics(service string) (http.Handler, func(context.Context) error, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	res := resource.NewSchemaless(semconv.ServiceName(service))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res), sdkmetric.WithView(secondsBuckets))
	otel.SetMeterProvider(mp)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), mp.Shutdown, nil
}

// SagaDuration is the histogram of an order saga's time from acceptance to
// its terminal status, which the saga records through Temporal's workflow
// metrics handler; it gets buckets of its own because a parked order may
// take up to the 30-minute payment deadline.
const SagaDuration = "orderflow.saga.duration"

// DeliveryDuration is the histogram of an order's time from acceptance to
// delivery, which the analytics consumer records (activities/events); its
// buckets run from an hour to weeks.
const DeliveryDuration = "orderflow.analytics.delivery.duration"

// Histogram bucket bounds, in seconds. The SDK's defaults (0 to 10000) suit
// milliseconds, not the seconds OpenTelemetry's conventions record in.
var (
	// latencyBuckets resolve the gateway's 500 ms p99 target and the 2 s
	// alert threshold, and reach past 5 minutes for Temporal's
	// schedule-to-start latency (the task-queue lag alert).
	latencyBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 2, 5, 10, 30, 60, 300, 600}
	// sagaBuckets cover a saga from a fast confirmation to a parked order
	// that waits out its payment deadline.
	sagaBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 1800, 3600}
	// deliveryBuckets: 1, 6 and 12 hours, then 1, 2, 3, 5, 7, 14 and 30 days.
	deliveryBuckets = []float64{3600, 21600, 43200, 86400, 172800, 259200, 432000, 604800, 1209600, 2592000}
)

// secondsBuckets gives every histogram recorded in seconds buckets that fit
// seconds. One view function rather than two views, because an instrument
// two views match is exported twice.
func secondsBuckets(i sdkmetric.Instrument) (sdkmetric.Stream, bool) {
	if i.Kind != sdkmetric.InstrumentKindHistogram || i.Unit != "s" {
		return sdkmetric.Stream{}, false
	}
	bounds := latencyBuckets
	switch i.Name {
	case SagaDuration:
		bounds = sagaBuckets
	case DeliveryDuration:
		bounds = deliveryBuckets
	}
	return sdkmetric.Stream{Name: i.Name, Description: i.Description, Unit: i.Unit,
		Aggregation: sdkmetric.AggregationExplicitBucketHistogram{Boundaries: bounds}}, true
}

// TemporalMetrics returns the Temporal client's metrics handler: the SDK's metrics
// (worker task slots, poll and task latencies, schedule-to-start latency,
// request counts, temporal_*) and what workflows record through
// workflow.GetMetricsHandler, exported through the global MeterProvider.
// Pass it as client.Options.MetricsHandler. Counters are monotonic, so they
// export as Prometheus counters (_total); an instrument error is handed to
// otel.Handle instead of the contrib package's default panic.
func TemporalMetrics() client.MetricsHandler {
	return temporalotel.NewMetricsHandler(temporalotel.MetricsHandlerOptions{
		UseMonotonicCounters: true,
		OnError:              otel.Handle,
	})
}
