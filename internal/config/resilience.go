package config

import (
	"fmt"
	"strings"
	"time"
)

// Resilience holds every knob of the resilience patterns, with the design's
// numbers as defaults. Each field is read from the environment variable named
// in its comment.
type Resilience struct {
	Payment   Payment
	RateLimit RateLimit
	Bulkhead  Bulkhead
	Cache     Cache
	Health    Health
}

// Payment configures the providers, their circuit breakers and the queued
// fallback that parks orders while no provider can take a charge.
type Payment struct {
	// Providers in failover order (PAYMENT_PROVIDERS, "name=kind:url,...",
	// kind paysim or stripe).
	Providers []Provider
	// StripeKey is the secret key of the stripe providers (STRIPE_API_KEY).
	StripeKey string
	// Timeout bounds one HTTP call to a provider (PAYMENT_PROVIDER_TIMEOUT).
	Timeout time.Duration
	// Breaker settings per provider: the breaker opens when at least
	// BreakerFailureRatio of the calls in BreakerWindow failed, once the window
	// holds BreakerMinRequests calls (PAYMENT_BREAKER_WINDOW,
	// PAYMENT_BREAKER_FAILURE_RATIO, PAYMENT_BREAKER_MIN_REQUESTS); it lets a
	// trial call through after BreakerOpenTimeout (PAYMENT_BREAKER_OPEN_TIMEOUT)
	// and closes after BreakerHalfOpenSuccesses consecutive successes
	// (PAYMENT_BREAKER_HALF_OPEN_SUCCESSES).
	BreakerWindow            time.Duration
	BreakerFailureRatio      float64
	BreakerMinRequests       uint32
	BreakerOpenTimeout       time.Duration
	BreakerHalfOpenSuccesses uint32
	// Deadline is how long an order may wait in PAYMENT_PENDING for a
	// provider before it is compensated as payment_unavailable
	// (PAYMENT_DEADLINE).
	Deadline time.Duration
	// RetryInitial and RetryMax space the parked order's charge attempts: the
	// interval doubles from RetryInitial up to RetryMax (PAYMENT_RETRY_INITIAL,
	// PAYMENT_RETRY_MAX).
	RetryInitial time.Duration
	RetryMax     time.Duration
	// FailoverQuiet is how long after an ambiguous charge request (timeout,
	// 5xx) to one provider the order's charge may go to another, once the
	// first says it holds none (PAYMENT_FAILOVER_QUIET).
	FailoverQuiet time.Duration
}

// Provider is one payment provider in the failover list.
type Provider struct {
	Name string // as recorded in payments.provider
	Kind string // "paysim" or "stripe"
	URL  string
}

// RateLimit configures the gateway's limits (RATE_LIMIT_ENABLED,
// RATE_LIMIT_PER_USER, RATE_LIMIT_PER_IP, RATE_LIMIT_PERIOD): PerUser
// requests per Period per customer, PerIP per client address.
type RateLimit struct {
	Enabled bool
	PerUser int
	PerIP   int
	Period  time.Duration
}

// Bulkhead splits capacity between critical work (the saga and its steps),
// non-critical work (notifications, analytics, reads) and admin work. The
// shares are percentages of a worker's activity slots and of the gateway's
// in-flight requests (BULKHEAD_CRITICAL_PCT, BULKHEAD_NONCRITICAL_PCT,
// BULKHEAD_ADMIN_PCT, GATEWAY_MAX_IN_FLIGHT).
type Bulkhead struct {
	CriticalPct      int
	NonCriticalPct   int
	AdminPct         int
	GatewayMaxFlight int
}

// Share returns pct percent of n, at least 1; 0 when n is 0 (unset: the
// SDK's default applies).
func (b Bulkhead) Share(n, pct int) int {
	if n <= 0 {
		return 0
	}
	if v := n * pct / 100; v > 0 {
		return v
	}
	return 1
}

// Cache sets the cache tiers' TTLs (CACHE_CATALOG_TTL, CACHE_INVENTORY_TTL,
// CACHE_ORDER_TTL, CACHE_SESSION_TTL) and the bound on every cache call
// (CACHE_CALL_TIMEOUT).
type Cache struct {
	CatalogTTL   time.Duration
	InventoryTTL time.Duration
	OrderTTL     time.Duration
	SessionTTL   time.Duration
	CallTimeout  time.Duration
}

// Health configures the health endpoints: the budget of GET /health
// (HEALTH_BUDGET) and of GET /health/deep (HEALTH_DEEP_BUDGET), the free disk
// below which the disk check fails (HEALTH_MIN_FREE_DISK_MB, on HEALTH_DISK_PATH),
// the Go heap above which the memory check fails (HEALTH_MAX_HEAP_MB), and the
// worker's health listener (WORKER_HEALTH_ADDR).
type Health struct {
	Budget         time.Duration
	DeepBudget     time.Duration
	MinFreeDiskMB  int
	DiskPath       string
	MaxHeapMB      int
	WorkerAddr     string
	SyntheticSKU   string
	SyntheticOwner string
}

// LoadResilience reads the resilience settings.
func LoadResilience() Resilience {
	return Resilience{
		Payment: Payment{
			Providers:                ParseProviders(Env("PAYMENT_PROVIDERS", "paysim-a=paysim:http://127.0.0.1:8090")),
			StripeKey:                Env("STRIPE_API_KEY", "sk_test_123"),
			Timeout:                  EnvDuration("PAYMENT_PROVIDER_TIMEOUT", 8*time.Second),
			BreakerWindow:            EnvDuration("PAYMENT_BREAKER_WINDOW", 10*time.Second),
			BreakerFailureRatio:      EnvFloat("PAYMENT_BREAKER_FAILURE_RATIO", 0.5),
			BreakerMinRequests:       uint32(EnvInt("PAYMENT_BREAKER_MIN_REQUESTS", 10)),
			BreakerOpenTimeout:       EnvDuration("PAYMENT_BREAKER_OPEN_TIMEOUT", 30*time.Second),
			BreakerHalfOpenSuccesses: uint32(EnvInt("PAYMENT_BREAKER_HALF_OPEN_SUCCESSES", 3)),
			Deadline:                 EnvDuration("PAYMENT_DEADLINE", 30*time.Minute),
			RetryInitial:             EnvDuration("PAYMENT_RETRY_INITIAL", 10*time.Second),
			RetryMax:                 EnvDuration("PAYMENT_RETRY_MAX", 2*time.Minute),
			FailoverQuiet:            EnvDuration("PAYMENT_FAILOVER_QUIET", 20*time.Second),
		},
		RateLimit: RateLimit{
			Enabled: Env("RATE_LIMIT_ENABLED", "true") == "true",
			PerUser: EnvInt("RATE_LIMIT_PER_USER", 100),
			PerIP:   EnvInt("RATE_LIMIT_PER_IP", 1000),
			Period:  EnvDuration("RATE_LIMIT_PERIOD", time.Minute),
		},
		Bulkhead: Bulkhead{
			CriticalPct:      EnvInt("BULKHEAD_CRITICAL_PCT", 60),
			NonCriticalPct:   EnvInt("BULKHEAD_NONCRITICAL_PCT", 30),
			AdminPct:         EnvInt("BULKHEAD_ADMIN_PCT", 10),
			GatewayMaxFlight: EnvInt("GATEWAY_MAX_IN_FLIGHT", 1000),
		},
		Cache: Cache{
			CatalogTTL:   EnvDuration("CACHE_CATALOG_TTL", 5*time.Minute),
			InventoryTTL: EnvDuration("CACHE_INVENTORY_TTL", 30*time.Second),
			OrderTTL:     EnvDuration("CACHE_ORDER_TTL", 10*time.Minute),
			SessionTTL:   EnvDuration("CACHE_SESSION_TTL", 30*time.Minute),
			CallTimeout:  EnvDuration("CACHE_CALL_TIMEOUT", 500*time.Millisecond),
		},
		Health: Health{
			Budget:         EnvDuration("HEALTH_BUDGET", 3*time.Second),
			DeepBudget:     EnvDuration("HEALTH_DEEP_BUDGET", 10*time.Second),
			MinFreeDiskMB:  EnvInt("HEALTH_MIN_FREE_DISK_MB", 512),
			DiskPath:       Env("HEALTH_DISK_PATH", "/"),
			MaxHeapMB:      EnvInt("HEALTH_MAX_HEAP_MB", 1024),
			WorkerAddr:     Env("WORKER_HEALTH_ADDR", ":8081"),
			SyntheticSKU:   Env("HEALTH_SYNTHETIC_SKU", "SYNTHETIC-HEALTH"),
			SyntheticOwner: Env("HEALTH_SYNTHETIC_CUSTOMER", "synthetic-health"),
		},
	}
}

// ParseProviders reads a failover list "name=kind:url,...". An entry without
// a kind is a paysim provider.
func ParseProviders(spec string) []Provider {
	var out []Provider
	for _, entry := range strings.Split(spec, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		name, rest, ok := strings.Cut(entry, "=")
		if !ok {
			name, rest = "", entry
		}
		kind, url := "paysim", rest
		if k, u, ok := strings.Cut(rest, ":"); ok && (k == "paysim" || k == "stripe") {
			kind, url = k, u
		}
		if name == "" {
			name = fmt.Sprintf("%s-%d", kind, len(out)+1)
		}
		out = append(out, Provider{Name: name, Kind: kind, URL: url})
	}
	return out
}
