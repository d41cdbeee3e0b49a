// Package api is orderflow's HTTP gateway: it validates requests, applies
// idempotency keys and starts, queries and cancels Order sagas in Temporal.
package api

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.uber.org/zap"

	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/cache"
	"github.com/orderflow/orderflow/internal/health"
	"github.com/orderflow/orderflow/internal/logging"
	"github.com/orderflow/orderflow/internal/pii"
	"github.com/orderflow/orderflow/internal/telemetry"
)

// Server holds the gateway's clients and its Config.
type Server struct {
	Config
	DB       *pgxpool.Pool
	Cache    *redis.Client
	Temporal client.Client
	Log      *zap.Logger

	limits    *rateLimiter
	bulkheads *bulkheads
	res       *resilience
	meters    *gatewayMetrics
	// Metrics, when set, serves GET /metrics (Prometheus text format).
	Metrics http.Handler
	// HealthChecks are checks of the process's own that GET /health and
	// GET /health/deep run besides the standard ones.
	HealthChecks []health.Check
	// ProviderChecks tell whether each payment provider is reachable; GET
	// /health/deep runs them.
	ProviderChecks []health.Check

	hs healthState
	// draining is set by Drain: readiness fails from then on.
	draining atomic.Bool
	// deferred is what the gateway knows of deferred saga starts.
	deferred deferredStarts

	// TracerProvider, when set (tracing is on), gives every request a server
	// span named by its route, continuing the caller's trace.
	TracerProvider trace.TracerProvider

	// Auth verifies the bearer token every /v1 route and GET /health/deep
	// require. Without it those routes answer 401 to everyone.
	Auth *auth.Authenticator

	// PII seals the saga's start kept in an order's acceptance record for
	// a re-drive (docs/regions.md); nil keeps none.
	PII *pii.Keyring

	// Codec, when set, serves the codec server on /codec/ for operators:
	// the Web UI and the temporal CLI decode the sealed payloads of sagas'
	// histories through it.
	Codec converter.PayloadCodec
}

// requestTimeout bounds what one request may wait on services.
const requestTimeout = 5 * time.Second

// Handler returns the gateway's routes on one handler: the customers'
// (/v1, /health*) and the operators' (/metrics, /codec), as served when no
// operator listener is configured (OPERATOR_ADDR).
func (s *Server) Handler() http.Handler {
	e := s.customerEcho()
	s.operatorRoutes(e)
	return telemetry.HTTPHandler(s.TracerProvider, e, "gateway")
}

// Handlers returns the customers' routes (/v1 and /health*) and the
// operators' (/metrics, /codec) apart, for two listeners: the load balancer
// exposes only the first, and the operators' port stays inside.
func (s *Server) Handlers() (customer, operator http.Handler) {
	o := s.echo()
	if s.Auth != nil {
		o.Use(s.Auth.Identify)
	}
	s.operatorRoutes(o)
	return telemetry.HTTPHandler(s.TracerProvider, s.customerEcho(), "gateway"),
		telemetry.HTTPHandler(s.TracerProvider, o, "gateway-operator")
}

// echo is an Echo with the middleware every listener has: the JSON error
// body, security headers, request ids, access log and panic recovery.
func (s *Server) echo() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = errorHandler(s.Log)
	e.Use(securityHeaders)
	e.Use(requestID)
	if s.TracerProvider != nil {
		e.Use(nameSpan)
	}
	e.Use(s.accessLog)
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{DisableStackAll: true}))
	return e
}

// customerEcho is the customer listener: metrics, shedding, identity and
// rate limits, then /health* and /v1.
func (s *Server) customerEcho() *echo.Echo {
	if s.BodyLimit == 0 {
		s.BodyLimit = DefaultBodyLimit
	}
	if s.IdempotencyTTL == 0 {
		s.IdempotencyTTL = DefaultIdempotencyTTL
	}
	e := s.echo()
	s.meters = newGatewayMetrics()
	e.Use(s.red)
	// The client's address is the peer's, or, behind a trusted proxy (the
	// ingress), the last one in X-Forwarded-For it did not add.
	e.IPExtractor = ipExtractor(s.TrustedProxies)
	if s.Bulkhead.MaxInFlight > 0 {
		s.bulkheads = newBulkheads(s.Bulkhead)
		e.Use(s.shed)
	}
	// The caller is identified before the rate limiter, which counts the
	// token's subject; a request without a valid token is refused by the
	// routes that need one, after the limiter charged its address.
	if s.Auth != nil {
		e.Use(s.Auth.Identify)
	}
	if s.RateLimit.Enabled {
		s.limits = newRateLimiter(s.RateLimit, s.Cache, s.callTimeout(), s.Log)
		e.Use(s.rateLimit)
	}
	// Past the rate limiter, so a flood one customer may not send cannot
	// take the adaptive limit's slots.
	s.guardDependencies()
	e.Use(s.admit)

	e.GET("/health", s.health)
	e.GET("/health/ready", s.ready)
	// The deep check places a synthetic order: operators only.
	e.GET("/health/deep", s.healthDeep, auth.Required, auth.RequireRole(auth.RoleOperator))
	e.GET("/health/live", echo.WrapHandler(http.HandlerFunc(health.Live)))

	// Every /v1 route, unknown ones included, needs a valid token; the role
	// each route needs is beside it (admin has every role). Every mutating
	// route takes an Idempotency-Key (s.idempotent; placement its own). Customers see
	// only their own orders: the handlers answer 404 for anyone else's.
	anyone := auth.RequireRole(auth.RoleCustomer, auth.RoleOperator)
	v1 := e.Group("/v1", auth.Required, s.homeRegion)
	v1.POST("/orders", s.placeOrder, auth.RequireRole(auth.RoleCustomer))
	v1.GET("/orders", s.listOrders, anyone)
	v1.GET("/orders/:id", s.getOrder, anyone)
	v1.POST("/orders/:id/cancel", s.cancelOrder, anyone, s.idempotent)
	v1.GET("/products", s.listProducts, anyone)
	v1.GET("/products/:sku", s.getProduct, anyone)
	v1.PUT("/products/:sku", s.putProduct, auth.RequireRole(auth.RoleOperator), s.idempotent)
	v1.DELETE("/customers/:id/pii", s.eraseCustomerPII, auth.RequireRole(auth.RoleAdmin), s.idempotent)
	v1.GET("/audit", s.listAudit, auth.RequireRole(auth.RoleAdmin))
	v1.GET("/monitor/findings", s.listFindings, auth.RequireRole(auth.RoleOperator))
	s.fulfillmentRoutes(e, v1, anyone)
	s.webhookRoutes(v1)
	// Providers prove themselves with the body's signature, not a token.
	e.POST("/v1/webhooks/payments/:provider", s.paymentWebhook)
	// The API's contract is public: no token needed to read it.
	e.GET(OpenAPIPath, s.openAPI)
	return e
}

// operatorRoutes are what operators and their tools call: Prometheus's
// scrape and the Web UI's codec server.
func (s *Server) operatorRoutes(e *echo.Echo) {
	if s.Metrics != nil {
		e.GET("/metrics", echo.WrapHandler(s.Metrics))
	}
	if s.Codec != nil {
		s.codecRoutes(e)
	}
}

func (s *Server) warner() cache.Warner { return logging.Temporal(s.Log) }

// callTimeout bounds each Redis call of the gateway.
func (s *Server) callTimeout() time.Duration {
	if s.Tiers.CallTimeout > 0 {
		return s.Tiers.CallTimeout
	}
	return cache.Timeout
}

// ttl returns a configured TTL, or the tier's default when it is unset.
func ttl(configured, def time.Duration) time.Duration {
	if configured > 0 {
		return configured
	}
	return def
}

func (s *Server) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		if ce := s.Log.Check(zap.DebugLevel, "request"); ce != nil {
			ce.Write(append(requestFields(c), zap.String("method", c.Request().Method), zap.String("path", c.Path()),
				zap.Int("status", c.Response().Status), zap.Duration("latency", time.Since(start)))...)
		}
		return nil
	}
}
