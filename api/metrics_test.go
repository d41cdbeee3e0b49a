package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"
)

// installReader makes the global MeterProvider a real SDK one read by hand,
// for the test, and puts the previous one back after it.
func installReader(tb testing.TB) *sdkmetric.ManualReader {
	tb.Helper()
	prev := otel.GetMeterProvider()
	r := sdkmetric.NewManualReader()
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(r)))
	tb.Cleanup(func() { otel.SetMeterProvider(prev) })
	return r
}

// redEcho is an Echo with the gateway's error handler and RED middleware and
// a few routes that answer what their name says.
func redEcho(s *Server) *echo.Echo {
	e := echo.New()
	e.HTTPErrorHandler = errorHandler(s.Log)
	s.meters = newGatewayMetrics()
	e.Use(s.red)
	e.GET("/v1/things/:id", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
	e.POST("/v1/things", func(c echo.Context) error { return newError(http.StatusUnprocessableEntity, "bad", "bad thing") })
	e.GET("/v1/broken", func(c echo.Context) error { return errors.New("database on fire") })
	return e
}

func TestREDRecordsRouteTemplateMethodAndStatusClassOfEveryAnswer(t *testing.T) {
	reader := installReader(t)
	e := redEcho(&Server{Log: zap.NewNop()})
	for _, r := range []struct{ method, path string }{
		{http.MethodGet, "/v1/things/1"}, {http.MethodGet, "/v1/things/2"}, // one series for both ids
		{http.MethodPost, "/v1/things"},      // a handler's 4xx error
		{http.MethodGet, "/v1/broken"},       // an unexpected error: 500
		{http.MethodGet, "/no/such/path/42"}, // no route: never the raw path
		{"BREW", "/v1/things/3"},             // an unknown method shares one label
	} {
		e.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(r.method, r.path, nil))
	}

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	got := map[[3]string]uint64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != metricHTTPDuration {
				continue
			}
			assert.Equal(t, "s", m.Unit)
			for _, dp := range m.Data.(metricdata.Histogram[float64]).DataPoints {
				get := func(k string) string { v, _ := dp.Attributes.Value(attribute.Key(k)); return v.AsString() }
				got[[3]string{get("method"), get("route"), get("status_class")}] += dp.Count
			}
		}
	}
	assert.Equal(t, map[[3]string]uint64{
		{"GET", "/v1/things/:id", "2xx"}:   2,
		{"POST", "/v1/things", "4xx"}:      1,
		{"GET", "/v1/broken", "5xx"}:       1,
		{"GET", "unmatched", "4xx"}:        1,
		{"OTHER", "/v1/things/:id", "4xx"}: 1,
	}, got)
}

// BenchmarkRED measures the RED middleware's cost per request: an Echo with
// one route answering 204, without and with it, recording into a real SDK
// MeterProvider.
func BenchmarkRED(b *testing.B) {
	installReader(b)
	for _, tc := range []struct {
		name string
		red  bool
	}{{"off", false}, {"on", true}} {
		b.Run(tc.name, func(b *testing.B) {
			s := &Server{Log: zap.NewNop()}
			e := echo.New()
			if tc.red {
				s.meters = newGatewayMetrics()
				e.Use(s.red)
			}
			e.GET("/v1/orders/:id", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
			req := httptest.NewRequest(http.MethodGet, "/v1/orders/0b6c6a2e", nil)
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				e.ServeHTTP(rec, req)
				if rec.Code != http.StatusNoContent {
					b.Fatalf("status %d", rec.Code)
				}
			}
		})
	}
}
