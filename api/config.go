package api

import (
	"net/netip"
	"time"

	bh "github.com/orderflow/orderflow/internal/bulkhead"
	"github.com/orderflow/orderflow/internal/cache"
	"github.com/orderflow/orderflow/internal/health"
)

// Config is the gateway's settings. cmd/orderflow builds it from the
// declared settings (internal/config); a zero field takes the design's
// default, so tests set only what they are about.
type Config struct {
	// Region is the region whose task queue new orders go to.
	Region string
	// Regions are the configured regions a request's X-Orderflow-Region
	// may name (docs/regions.md); empty: only Region.
	Regions []string
	// AcceptCommit is the synchronous_commit level of an order's
	// acceptance record: remote_apply or on wait for the other region's
	// synchronous standby; empty keeps the server's default.
	AcceptCommit string
	// BodyLimit caps request bodies, in bytes (default DefaultBodyLimit).
	BodyLimit int64
	// IdempotencyTTL is how long an Idempotency-Key is remembered (default
	// DefaultIdempotencyTTL).
	IdempotencyTTL time.Duration
	// EagerStart asks the server to hand a new saga's first workflow task
	// straight back to a worker running on Temporal in this process.
	EagerStart bool
	// StartDeferMax bounds deferred saga starts (docs/resilience.md): a
	// placement whose saga Temporal cannot take in time is accepted with its
	// start deferred while the oldest deferred start is younger than this;
	// zero: never deferred (a failed start is a 503).
	StartDeferMax time.Duration
	// Payment sets the parking schedule of the sagas the gateway starts.
	Payment PaymentSchedule
	// RateLimit sets the per-customer and per-address limits; when Enabled is
	// false nothing is limited.
	RateLimit RateLimit
	// Bulkhead sizes the route classes' in-flight bounds; a zero
	// MaxInFlight turns shedding off.
	Bulkhead Bulkhead
	// Tiers sets the cache tiers' TTLs and the bound on every Redis call the
	// gateway makes; a zero field takes the tier's default.
	Tiers cache.Tiers
	// TrustedProxies are the ranges whose X-Forwarded-For is believed;
	// empty means the peer's own address counts.
	TrustedProxies []netip.Prefix
	// Health sets the health endpoints' budgets, thresholds and synthetic
	// order; zero fields take the design's defaults.
	Health Health
	// CodecOrigins are the Web UI origins allowed to call the codec server
	// from a browser (CORS, with credentials).
	CodecOrigins []string
	// Fulfillment says whether new sagas fulfil their orders, their
	// shipment SLA, how carrier events are verified and the return window.
	Fulfillment Fulfillment
	// Resilience sets admission of the order class, backpressure from the
	// order task queue and the Temporal and Redis breakers.
	Resilience Resilience
	// Webhooks: the outbound webhooks' retry policy and secret overlap.
	Webhooks Webhooks
	// PaymentWebhooks: the providers' webhook secrets and tolerance.
	PaymentWebhooks PaymentWebhooks
}

// Fulfillment configures the order's life after CONFIRMED
// (docs/fulfillment.md).
type Fulfillment struct {
	// Enabled: new sagas continue into fulfillment; false: they end
	// CONFIRMED.
	Enabled bool
	// ShipmentSLA is how long a shipment may wait for its pickup.
	ShipmentSLA time.Duration
	// WebhookSecret is the carrier's HMAC secret; empty refuses every event.
	WebhookSecret string
	// EventTolerance bounds a signed event's distance from the clock.
	EventTolerance time.Duration
	// ReturnWindow is how long after delivery goods may be returned.
	ReturnWindow time.Duration
}

// Defaults of the fields of Config that have one; internal/config declares
// the same, and cmd/orderflow's tests check they agree.
const (
	DefaultBodyLimit         = 64 << 10
	DefaultIdempotencyTTL    = 24 * time.Hour
	DefaultRateLimitPeriod   = time.Minute
	DefaultDeepBudget        = 10 * time.Second
	DefaultSyntheticSKU      = "SYNTHETIC-HEALTH"
	DefaultSyntheticCustomer = "synthetic-health"
)

// PaymentSchedule is how long an order may wait in PAYMENT_PENDING for a
// provider (Deadline) and how often its charge is retried meanwhile: the
// interval doubles from RetryInitial up to RetryMax.
type PaymentSchedule struct {
	Deadline     time.Duration
	RetryInitial time.Duration
	RetryMax     time.Duration
}

// RateLimit allows PerUser requests per Period per customer and PerIP per
// client address.
type RateLimit struct {
	Enabled bool
	PerUser int
	PerIP   int
	Period  time.Duration
}

// Bulkhead bounds the requests the gateway serves at once (MaxInFlight),
// split between the route classes by the shares.
type Bulkhead struct {
	MaxInFlight int
	bh.Shares
}

// Health configures GET /health (the process's checks) and GET
// /health/deep: its budget and the synthetic order it places, for
// SyntheticOwner, of SyntheticSKU.
type Health struct {
	health.Config
	DeepBudget     time.Duration
	SyntheticSKU   string
	SyntheticOwner string
}

// withDefaults returns h with each zero field set to the design's default.
func (h Health) withDefaults() Health {
	h.Config = h.Config.WithDefaults()
	if h.DeepBudget <= 0 {
		h.DeepBudget = DefaultDeepBudget
	}
	if h.SyntheticSKU == "" {
		h.SyntheticSKU = DefaultSyntheticSKU
	}
	if h.SyntheticOwner == "" {
		h.SyntheticOwner = DefaultSyntheticCustomer
	}
	return h
}
