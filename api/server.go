// Package api is orderflow's HTTP gateway: it validates requests, applies
// idempotency keys and starts, queries and cancels Order sagas in Temporal.
package api

import (
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/orderflow/orderflow/internal/cache"
	"github.com/orderflow/orderflow/internal/config"
	"github.com/orderflow/orderflow/internal/health"
	"github.com/orderflow/orderflow/internal/logging"
)

// Server holds the gateway's clients.
type Server struct {
	DB       *pgxpool.Pool
	Cache    *redis.Client
	Temporal client.Client
	Log      *zap.Logger
	// Region is the region whose task queue new orders go to.
	Region string
	// BodyLimit caps request bodies, in bytes.
	BodyLimit int64
	// IdempotencyTTL is how long an Idempotency-Key is remembered.
	IdempotencyTTL time.Duration
	// EagerStart asks the server to hand a new saga's first workflow task
	// straight back to a worker running on Temporal in this process.
	EagerStart bool
	// Health sets the health endpoints' budgets, thresholds and synthetic
	// order; zero fields take the defaults of config.LoadResilience.
	Health config.Health
	// HealthChecks are checks of the process's own that GET /health and
	// GET /health/deep run besides the standard ones.
	HealthChecks []health.Check
	// ProviderChecks tell whether each payment provider is reachable; GET
	// /health/deep runs them.
	ProviderChecks []health.Check

	hs healthState
}

// requestTimeout bounds what one request may wait on services.
const requestTimeout = 5 * time.Second

// Handler returns the gateway's routes.
func (s *Server) Handler() http.Handler {
	if s.BodyLimit == 0 {
		s.BodyLimit = 64 << 10
	}
	if s.IdempotencyTTL == 0 {
		s.IdempotencyTTL = 24 * time.Hour
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = errorHandler(s.Log)
	e.Use(middleware.RequestID())
	e.Use(s.accessLog)
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{DisableStackAll: true}))

	e.GET("/health", s.health)
	e.GET("/health/ready", s.health)
	e.GET("/health/deep", s.healthDeep)
	e.GET("/health/live", echo.WrapHandler(http.HandlerFunc(health.Live)))

	v1 := e.Group("/v1")
	v1.POST("/orders", s.placeOrder)
	v1.GET("/orders/:id", s.getOrder)
	v1.POST("/orders/:id/cancel", s.cancelOrder)
	v1.GET("/products", s.listProducts)
	v1.GET("/products/:sku", s.getProduct)
	v1.PUT("/products/:sku", s.putProduct)
	return e
}

func (s *Server) warner() cache.Warner { return logging.Temporal(s.Log) }

func (s *Server) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		s.Log.Debug("request", zap.String("method", c.Request().Method), zap.String("path", c.Path()),
			zap.Int("status", c.Response().Status), zap.Duration("latency", time.Since(start)),
			zap.String("request_id", c.Response().Header().Get(echo.HeaderXRequestID)))
		return nil
	}
}
