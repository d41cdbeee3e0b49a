package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	noopmetric "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/workflow"

	"github.com/orderflow/orderflow/internal/logging"
)

// Tracing installs the process's TracerProvider, exporting spans over OTLP as
// the standard OTEL_* variables say (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL "grpc" or
// "http/protobuf", OTEL_EXPORTER_OTLP_HEADERS, OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER; sampling defaults to
// parentbased_always_on), and returns it with its shutdown, which flushes the
// spans still queued.
//
// Tracing is on when OTEL_TRACES_EXPORTER is "otlp", or when it is unset and
// an OTLP endpoint variable is set. Otherwise (or with OTEL_SDK_DISABLED=true,
// or OTEL_TRACES_EXPORTER=none) it returns a nil provider, and everything
// that takes one installs no instrumentation at all: the order path pays
// nothing for tracing that is off. An exporter it cannot build is an error.
func Tracing(ctx context.Context, service string) (trace.TracerProvider, func(context.Context) error, error) {
	noop := func(context.Context) error { return nil }
	protocol, on, err := tracingFromEnv(os.Getenv)
	if err != nil || !on {
		return nil, noop, err
	}
	var exp sdktrace.SpanExporter
	if protocol == "grpc" {
		exp, err = otlptracegrpc.New(ctx)
	} else {
		exp, err = otlptracehttp.New(ctx)
	}
	if err != nil {
		return nil, noop, fmt.Errorf("otlp trace exporter: %w", err)
	}
	res, err := resource.New(ctx, resource.WithAttributes(semconv.ServiceName(service)), resource.WithFromEnv(),
		resource.WithTelemetrySDK(), resource.WithHost())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, noop, fmt.Errorf("trace resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(Propagator())
	return tp, tp.Shutdown, nil
}

// tracingFromEnv reads the OTEL_* variables: whether tracing is on, and the
// OTLP protocol ("grpc" or "http/protobuf").
func tracingFromEnv(getenv func(string) string) (protocol string, on bool, err error) {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return "", false, nil
	}
	switch exp := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); exp {
	case "none":
		return "", false, nil
	case "":
		if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
			return "", false, nil
		}
	case "otlp":
	default:
		return "", false, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: only otlp and none are supported", exp)
	}
	protocol = getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocol = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch protocol {
	case "", "http/protobuf":
		return "http/protobuf", true, nil
	case "grpc":
		return "grpc", true, nil
	}
	return "", false, fmt.Errorf("OTLP protocol %q: use grpc or http/protobuf", protocol)
}

// Propagator is how trace context crosses process boundaries: W3C
// traceparent/tracestate and baggage, on HTTP and in Temporal headers.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// HTTPHandler wraps h so each request gets a server span named operation
// (the gateway renames it to its route), continuing the caller's trace.
// Probes and scrapes (/health..., /metrics) get none: they would bury the
// orders' traces. With a nil provider h is returned as it is.
func HTTPHandler(tp trace.TracerProvider, h http.Handler, operation string) http.Handler {
	if tp == nil {
		return h
	}
	// The gateway's RED metrics are recorded on their own; otelhttp's would
	// be a second copy.
	return otelhttp.NewHandler(h, operation, otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(Propagator()),
		otelhttp.WithMeterProvider(noopmetric.NewMeterProvider()), otelhttp.WithFilter(traced))
}

// traced reports whether a request gets a span: not probes and scrapes.
func traced(r *http.Request) bool {
	p := r.URL.Path
	return !strings.HasPrefix(p, "/health") && p != "/metrics"
}

// Transport wraps base (nil means http.DefaultTransport) so each outgoing
// request gets a client span and carries the trace context. With a nil
// provider base is returned as it is.
func Transport(tp trace.TracerProvider, base http.RoundTripper) http.RoundTripper {
	if tp == nil {
		return base
	}
	if base == nil {
		base = http.DefaultTransport
	}
	return otelhttp.NewTransport(base, otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(Propagator()),
		otelhttp.WithMeterProvider(noopmetric.NewMeterProvider()))
}

// Temporal returns the interceptors and context propagators of a Temporal
// client (client.Options.Interceptors and ContextPropagators), which the
// workers built on it use too: the request id travels from the gateway into
// workflows and activities and their loggers carry it with order_id
// (orderID derives it from a workflow id); with a provider, the tracing
// interceptor adds StartWorkflow, RunWorkflow, StartActivity and RunActivity
// spans (local activities included) to the caller's trace, and trace_id and
// span_id to those loggers.
func Temporal(tp trace.TracerProvider, orderID func(workflowID string) (string, bool)) ([]interceptor.ClientInterceptor, []workflow.ContextPropagator, error) {
	ics := []interceptor.ClientInterceptor{logging.TemporalInterceptor(orderID)}
	if tp != nil {
		ti, err := temporalotel.NewTracingInterceptor(temporalotel.TracerOptions{
			Tracer: tp.Tracer("go.temporal.io/sdk"), TextMapPropagator: Propagator(),
		})
		if err != nil {
			return nil, nil, fmt.Errorf("temporal tracing interceptor: %w", err)
		}
		ics = append([]interceptor.ClientInterceptor{ti}, ics...)
	}
	return ics, logging.Propagators(), nil
}
