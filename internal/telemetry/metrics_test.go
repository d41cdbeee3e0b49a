package telemetry

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
)

// scrapeAfter installs the exporter, runs record, and returns the /metrics text.
func scrapeAfter(t testing.TB, record func()) string {
	t.Helper()
	prev := otel.GetMeterProvider()
	h, stop, err := Metrics("telemetry-test")
	require.NoError(t, err)
	t.Cleanup(func() { _ = stop(context.Background()); otel.SetMeterProvider(prev) })
	record()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func TestSecondsHistogramsGetSecondsBucketsAndTheSagaItsOwn(t *testing.T) {
	out := scrapeAfter(t, func() {
		m := otel.Meter("test")
		lat, _ := m.Float64Histogram("test.latency", metric.WithUnit("s"))
		lat.Record(context.Background(), 0.3)
		saga, _ := m.Float64Histogram(SagaDuration, metric.WithUnit("s"))
		saga.Record(context.Background(), 1200)
		size, _ := m.Int64Histogram("test.size", metric.WithUnit("By"))
		size.Record(context.Background(), 700)
		// The Temporal SDK's timers arrive through the same provider.
		TemporalMetrics().WithTags(map[string]string{"task_queue": "q"}).Timer("temporal_test_latency").Record(2 * time.Minute)
	})
	for _, want := range []string{
		`test_latency_seconds_bucket{otel_scope_name="test",otel_scope_schema_url="",otel_scope_version="",le="0.5"} 1`,
		`test_latency_seconds_bucket{otel_scope_name="test",otel_scope_schema_url="",otel_scope_version="",le="0.25"} 0`,
		`orderflow_saga_duration_seconds_bucket{otel_scope_name="test",otel_scope_schema_url="",otel_scope_version="",le="1800"} 1`,
		`orderflow_saga_duration_seconds_bucket{otel_scope_name="test",otel_scope_schema_url="",otel_scope_version="",le="900"} 0`,
		// Other units keep the SDK's default buckets.
		`test_size_bytes_bucket{otel_scope_name="test",otel_scope_schema_url="",otel_scope_version="",le="750"} 1`,
		`task_queue="q",le="300"} 1`,
		`task_queue="q",le="60"} 0`,
		`# TYPE temporal_test_latency_seconds histogram`,
	} {
		assert.Contains(t, out, want)
	}
	assert.NotContains(t, out, `test_latency_seconds_bucket{otel_scope_name="test",otel_scope_schema_url="",otel_scope_version="",le="750"}`)
	assert.True(t, strings.Contains(out, `temporal_test_latency_seconds_bucket{`) && strings.Contains(out, `task_queue="q"`))
}

// BenchmarkTemporalHandler measures one SDK metric event through the
// Temporal metrics handler (the SDK tags a handler, then counts or times),
// which the worker pays many times per order.
func BenchmarkTemporalHandler(b *testing.B) {
	scrapeAfter(b, func() {})
	h := TemporalMetrics().WithTags(map[string]string{"namespace": "default", "task_queue": "orders-local", "workflow_type": "Order"})
	b.Run("counter", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h.Counter("temporal_request").Inc(1)
		}
	})
	b.Run("timer", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h.Timer("temporal_request_latency").Record(3 * time.Millisecond)
		}
	})
	b.Run("tag-then-counter", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h.WithTags(map[string]string{"operation": "RespondWorkflowTaskCompleted"}).Counter("temporal_request").Inc(1)
		}
	})
}
