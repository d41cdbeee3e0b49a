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
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res))
	otel.SetMeterProvider(mp)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), mp.Shutdown, nil
}
