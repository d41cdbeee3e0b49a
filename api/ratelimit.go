package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/orderflow/orderflow/internal/auth"
)

// Rate-limit headers (IETF draft "RateLimit header fields for HTTP"), set on
// every limited route's answer, allowed or not. Limit is the quota of the
// limit closest to exhaustion, Remaining what is left of it, Reset the whole
// seconds until it is full again; a 429 also carries Retry-After.
const (
	HeaderRateLimitLimit     = "RateLimit-Limit"
	HeaderRateLimitRemaining = "RateLimit-Remaining"
	HeaderRateLimitReset     = "RateLimit-Reset"
)

// redisBackoff is how long the limiter stays on its local buckets after a
// Redis failure before it asks Redis again, so that a Redis outage costs one
// timed-out call per second instead of one per request.
const redisBackoff = time.Second

// caller returns the identity the per-user limit counts: the subject of the
// request's verified token, "" for none (the request is then limited by its
// address only, and refused by the routes that need a token).
func (s *Server) caller(c echo.Context) string {
	claims, ok := auth.FromContext(c.Request().Context())
	if !ok {
		return ""
	}
	id := claims.Subject
	if len(id) > 128 {
		// Bound the key's size whatever the client sends.
		h := sha256.Sum256([]byte(id))
		return "sha256:" + hex.EncodeToString(h[:])
	}
	return id
}

// exemptFromLimits reports whether a path is served whatever the load and the
// caller's quota: the health probes and the metrics scrape.
func exemptFromLimits(path string) bool {
	return path == "/health" || strings.HasPrefix(path, "/health/") || path == "/metrics"
}

// quota is one limit's answer for one request.
type quota struct {
	allowed    bool
	limit      int
	remaining  int
	retryAfter time.Duration // until the next request is allowed, when denied
	resetAfter time.Duration // until the bucket is full again
}

// rateLimiter applies the per-user and per-IP limits with GCRA in Redis
// (redis_rate), shared by every gateway replica, and falls back to the same
// limits in process while Redis does not answer: a Redis outage loosens the
// limit to one bucket per replica, it never refuses or fails a request.
type rateLimiter struct {
	perUser, perIP redis_rate.Limit
	redis          *redis_rate.Limiter // nil without Redis: local only
	timeout        time.Duration
	local          *localGCRA
	log            *zap.Logger

	redisDownUntil atomic.Int64 // unix nanoseconds
	fallbacks      atomic.Int64
	fallbackCount  metric.Int64Counter
	rejectCount    metric.Int64Counter
}

func newRateLimiter(cfg RateLimit, rc *redis.Client, timeout time.Duration, log *zap.Logger) *rateLimiter {
	if log == nil {
		log = zap.NewNop()
	}
	period := cfg.Period
	if period <= 0 {
		period = DefaultRateLimitPeriod
	}
	l := &rateLimiter{
		perUser: redis_rate.Limit{Rate: cfg.PerUser, Burst: cfg.PerUser, Period: period},
		perIP:   redis_rate.Limit{Rate: cfg.PerIP, Burst: cfg.PerIP, Period: period},
		timeout: timeout,
		local:   &localGCRA{tat: map[string]float64{}},
		log:     log,
	}
	if rc != nil {
		l.redis = redis_rate.NewLimiter(rc)
	}
	m := otel.Meter("github.com/orderflow/orderflow/api")
	l.fallbackCount, _ = m.Int64Counter("orderflow.gateway.ratelimit.fallbacks",
		metric.WithDescription("rate-limit decisions made in process because Redis did not answer"))
	l.rejectCount, _ = m.Int64Counter("orderflow.gateway.ratelimit.rejected",
		metric.WithDescription("requests refused with 429, by limit (user or ip)"))
	// Zero from the start, so the family exists before the first refusal.
	for _, scope := range []string{"ip", "user"} {
		l.rejectCount.Add(context.Background(), 0, metric.WithAttributes(attribute.String("limit", scope)))
	}
	return l
}

// check charges the request to its address and, when it names one, to its
// caller. The address is asked first so that a request it refuses does not
// use the caller's quota; GCRA charges nothing for a refused request.
func (l *rateLimiter) check(ctx context.Context, user, ip string) (quota, string) {
	var tightest quota
	var scope string
	for _, lim := range []struct {
		scope, key string
		limit      redis_rate.Limit
	}{{"ip", "ip:" + ip, l.perIP}, {"user", "user:" + user, l.perUser}} {
		if lim.limit.Rate <= 0 || (lim.scope == "user" && user == "") {
			continue
		}
		q := l.allow(ctx, lim.key, lim.limit)
		if !q.allowed {
			l.rejectCount.Add(ctx, 1, metric.WithAttributes(attribute.String("limit", lim.scope)))
			return q, lim.scope
		}
		if scope == "" || q.remaining < tightest.remaining {
			tightest, scope = q, lim.scope
		}
	}
	if scope == "" {
		return quota{allowed: true}, ""
	}
	return tightest, scope
}

// allow asks Redis, within the call timeout, unless Redis failed within the
// last redisBackoff; any failure is answered by the local buckets.
func (l *rateLimiter) allow(ctx context.Context, key string, lim redis_rate.Limit) quota {
	if l.redis != nil && time.Now().UnixNano() >= l.redisDownUntil.Load() {
		cctx, cancel := context.WithTimeout(ctx, l.timeout)
		res, err := l.redis.Allow(cctx, key, lim)
		cancel()
		if err == nil {
			return quota{allowed: res.Allowed > 0, limit: lim.Rate, remaining: res.Remaining,
				retryAfter: res.RetryAfter, resetAfter: res.ResetAfter}
		}
		if ctx.Err() != nil {
			// The client went away; nothing is wrong with Redis.
			return quota{allowed: true, limit: lim.Rate}
		}
		l.redisDownUntil.Store(time.Now().Add(redisBackoff).UnixNano())
		l.log.Warn("rate limiter: redis failed, limiting in process", zap.Duration("backoff", redisBackoff), zap.Error(err))
	}
	if l.redis != nil {
		l.fallbacks.Add(1)
		l.fallbackCount.Add(ctx, 1)
	}
	return l.local.allow(key, lim, time.Now())
}

// RateLimitFallbacks returns how many rate-limit decisions this gateway made
// in process because Redis was down or backed off from.
func (s *Server) RateLimitFallbacks() int64 {
	if s.limits == nil {
		return 0
	}
	return s.limits.fallbacks.Load()
}

// rateLimit is the middleware: it answers 429 with Retry-After once a limit is
// used up, and sets the RateLimit headers on every answer it lets through.
func (s *Server) rateLimit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if exemptFromLimits(c.Request().URL.Path) {
			return next(c)
		}
		user := s.caller(c)
		if strings.HasPrefix(c.Request().URL.Path, "/codec/") {
			// One page of the Web UI or one history the CLI shows makes
			// dozens of codec calls: an operator's are limited by address
			// only, not by the per-customer quota.
			user = ""
		}
		q, scope := s.limits.check(c.Request().Context(), user, c.RealIP())
		if scope != "" {
			h := c.Response().Header()
			h.Set(HeaderRateLimitLimit, strconv.Itoa(q.limit))
			h.Set(HeaderRateLimitRemaining, strconv.Itoa(q.remaining))
			h.Set(HeaderRateLimitReset, strconv.Itoa(wholeSeconds(q.resetAfter)))
		}
		if !q.allowed {
			e := newError(http.StatusTooManyRequests, "rate_limited", "too many requests for this "+scopeName(scope)+"; retry after the Retry-After seconds")
			e.RetryAfter = strconv.Itoa(max(1, wholeSeconds(q.retryAfter)))
			return e
		}
		return next(c)
	}
}

func scopeName(scope string) string {
	if scope == "ip" {
		return "address"
	}
	return "customer"
}

// wholeSeconds rounds up: a client that waits that long is sure to be let in.
func wholeSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int(math.Ceil(d.Seconds()))
}

// localGCRA is the in-process fallback: the same GCRA as redis_rate's script
// (a theoretical arrival time per key), so a request gets the same answer and
// headers from either, only per process.
type localGCRA struct {
	mu    sync.Mutex
	tat   map[string]float64 // key -> theoretical arrival time, seconds since the Unix epoch
	calls int
}

func (g *localGCRA) allow(key string, lim redis_rate.Limit, at time.Time) quota {
	now := float64(at.UnixNano()) / 1e9
	emission := lim.Period.Seconds() / float64(lim.Rate)
	burstOffset := emission * float64(lim.Burst)

	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls++
	if g.calls%4096 == 0 {
		// Forget buckets that have refilled, so the map holds only the
		// callers seen within the last period.
		for k, t := range g.tat {
			if t <= now {
				delete(g.tat, k)
			}
		}
	}
	tat := math.Max(g.tat[key], now)
	newTat := tat + emission
	diff := now - (newTat - burstOffset)
	if diff < 0 {
		return quota{limit: lim.Rate, retryAfter: seconds(-diff), resetAfter: seconds(tat - now)}
	}
	g.tat[key] = newTat
	return quota{allowed: true, limit: lim.Rate, remaining: int(diff / emission), resetAfter: seconds(newTat - now)}
}

func seconds(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }
