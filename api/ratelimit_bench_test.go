package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/auth"
)

// BenchmarkRateLimit measures what the limiter adds to one request: the
// decision for an address and a customer, in Redis (two GCRA script calls)
// and in process (the fallback), and the whole middleware around an empty
// handler with and without it (and without authentication).
func BenchmarkRateLimit(b *testing.B) {
	rc := testkit.Redis(b)
	cfg := RateLimit{Enabled: true, PerUser: 1 << 30, PerIP: 1 << 30, Period: time.Minute}
	ctx := context.Background()
	user, ip := "bench-"+uuid.NewString(), clientIP()
	tok := testkit.Auth(b)

	b.Run("check/redis", func(b *testing.B) {
		l := newRateLimiter(cfg, rc, 500*time.Millisecond, zap.NewNop())
		for b.Loop() {
			l.check(ctx, user, ip)
		}
	})
	b.Run("check/local", func(b *testing.B) {
		l := newRateLimiter(cfg, nil, 500*time.Millisecond, zap.NewNop())
		for b.Loop() {
			l.check(ctx, user, ip)
		}
	})
	// The middleware runs with the token's session hit, as every /v1 request
	// does; middleware/off_without_auth prices the session hit by difference.
	for _, tc := range []struct {
		name          string
		enabled, auth bool
	}{{"middleware/off", false, true}, {"middleware/redis", true, true}, {"middleware/off_without_auth", false, false}} {
		b.Run(tc.name, func(b *testing.B) {
			s := &Server{Cache: rc, Log: zap.NewNop(), Config: Config{RateLimit: cfg}}
			if tc.auth {
				s.Auth = tok.Auth
			}
			s.RateLimit.Enabled = tc.enabled
			h := s.Handler().(*echo.Echo)
			h.GET("/v1/bench", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
			req := httptest.NewRequest(http.MethodGet, "/v1/bench", nil)
			req.Header.Set(echo.HeaderAuthorization, tok.Bearer(user, auth.RoleCustomer))
			req.Header.Set("X-Forwarded-For", ip)
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusNoContent {
					b.Fatalf("status %d", rec.Code)
				}
			}
		})
	}
}
