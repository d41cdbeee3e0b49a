package telemetry

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel"
	nooptrace "go.opentelemetry.io/otel/trace/noop"
)

func TestTracingIsOnOnlyWhenAnOTLPVariableAsks(t *testing.T) {
	for _, tc := range []struct {
		name     string
		env      map[string]string
		on       bool
		protocol string
		err      bool
	}{
		{name: "nothing set", env: nil},
		{name: "unrelated OTEL variable", env: map[string]string{"OTEL_SERVICE_NAME": "x"}},
		{name: "endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, on: true, protocol: "http/protobuf"},
		{name: "traces endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, on: true, protocol: "http/protobuf"},
		{name: "exporter otlp", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, on: true, protocol: "http/protobuf"},
		{name: "grpc", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, on: true, protocol: "grpc"},
		{name: "traces protocol wins", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
			"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}, on: true, protocol: "http/protobuf"},
		{name: "exporter none beats endpoint", env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}},
		{name: "sdk disabled", env: map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}},
		{name: "unsupported exporter", env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, err: true},
		{name: "unsupported protocol", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			protocol, on, err := tracingFromEnv(func(k string) string { return tc.env[k] })
			if (err != nil) != tc.err || on != tc.on || protocol != tc.protocol {
				t.Errorf("got (%q, %v, %v), want (%q, %v, error %v)", protocol, on, err, tc.protocol, tc.on, tc.err)
			}
		})
	}
}

func TestTracingOffInstallsNothing(t *testing.T) {
	for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER", "OTEL_SDK_DISABLED"} {
		t.Setenv(k, "")
	}
	tp, shutdown, err := Tracing(context.Background(), "test")
	if err != nil || tp != nil {
		t.Fatalf("Tracing with no OTEL_* variables = %v, %v; want a nil provider", tp, err)
	}
	if err := shutdown(context.Background()); err != nil {
		t.Error(err)
	}
	h := http.NewServeMux()
	if got := HTTPHandler(nil, h, "x"); got != http.Handler(h) {
		t.Error("HTTPHandler wrapped the handler with tracing off")
	}
	if got := Transport(nil, http.DefaultTransport); got != http.DefaultTransport {
		t.Error("Transport wrapped the transport with tracing off")
	}
	ics, props, err := Temporal(nil, func(string) (string, bool) { return "", false })
	if err != nil || len(ics) != 1 || len(props) != 1 {
		t.Errorf("Temporal(nil) = %d interceptors, %d propagators, %v; want the log correlation only", len(ics), len(props), err)
	}
}

// With OTEL_EXPORTER_OTLP_ENDPOINT set, spans reach that collector over
// OTLP/HTTP, with the service name; shutdown flushes what is queued.
func TestTracingExportsOverOTLPToTheConfiguredEndpoint(t *testing.T) {
	got := make(chan []byte, 10)
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" {
			got <- b
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_TRACES_EXPORTER", "")
	t.Setenv("OTEL_SERVICE_NAME", "")
	t.Cleanup(func() { otel.SetTracerProvider(nooptrace.NewTracerProvider()) })

	tp, shutdown, err := Tracing(context.Background(), "orderflow-test")
	if err != nil || tp == nil {
		t.Fatalf("Tracing = %v, %v; want a provider", tp, err)
	}
	_, span := tp.Tracer("test").Start(context.Background(), "placed-order-span")
	span.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	select {
	case b := <-got:
		for _, want := range []string{"placed-order-span", "orderflow-test"} {
			if !bytes.Contains(b, []byte(want)) {
				t.Errorf("the exported request does not hold %q", want)
			}
		}
	default:
		t.Fatal("nothing was exported to the collector")
	}
}

func TestProbesAndScrapesGetNoSpan(t *testing.T) {
	for path, want := range map[string]bool{"/v1/orders": true, "/health": false, "/health/deep": false, "/metrics": false, "/v1/products/x": true} {
		if got := traced(httptest.NewRequest(http.MethodGet, path, nil)); got != want {
			t.Errorf("traced(%s) = %v, want %v", path, got, want)
		}
	}
}
