package config

import (
	"errors"
	"math"
	"time"
)

// Docs sections, in the order docs/configuration.md shows them; within a
// section settings are sorted by name.
const (
	secProcess     = "Process"
	secDeps        = "PostgreSQL, Redis and Temporal"
	secPII         = "Personal data"
	secGateway     = "Gateway"
	secAuth        = "Authentication"
	secWorker      = "Worker"
	secPayment     = "Payment"
	secLimits      = "Rate limits and bulkheads"
	secCache       = "Cache"
	secHealth      = "Health"
	secFulfillment = "Fulfillment and the carrier"
	secMessaging   = "Mail and the event stream"
	secWebhooks    = "Outbound webhooks"
	secProfiler    = "Profiling"
	secRegions     = "Regions and failover"
)

// Sections are the docs sections in order.
var Sections = []string{secProcess, secDeps, secPII, secGateway, secAuth, secWorker, secPayment, secLimits, secCache, secHealth, secFulfillment, secMessaging, secWebhooks, secRegions, secProfiler}

// Who reads what, for the declarations below. The gateway's embedded worker
// (API_EMBED_WORKER) makes the gateway read the worker's settings too.
const (
	services  = API | Worker // long-running processes
	withPII   = API | Worker | Migrate | Replay
	withStore = API | Worker | Migrate // the database
)

const maxInt = math.MaxInt

// Process.
var (
	LogFormat = declare(Setting{Name: "LOG_FORMAT", Default: "console", Used: services | Failover, Section: secProcess,
		Doc: "log encoding: console for people, json for collectors (production)"}, oneOf("console", "json"))
	LogLevel = declare(Setting{Name: "LOG_LEVEL", Default: "info", Used: services | Failover, Section: secProcess,
		Doc: "least severe level logged"}, oneOf("debug", "info", "warn", "error"))
	Region = declare(Setting{Name: "ORDERFLOW_REGION", Default: "local", Used: services, Section: secProcess,
		Doc: "the region whose task queues (orders-<region>, notify-<region>, admin-<region>) this process serves; `orderflow worker --region` overrides it"},
		text(name))
	Regions = declare(Setting{Name: "ORDERFLOW_REGIONS", Used: API | Failover, Section: secProcess,
		Doc: "the regions of a two-region deployment, comma-separated (docs/regions.md): a request's X-Orderflow-Region must name one (400 otherwise) and a gateway serves only its own ORDERFLOW_REGION (421 for another); unset: ORDERFLOW_REGION only"},
		list("region names", name))
	TLSMinVersion = declare(Setting{Name: "TLS_MIN_VERSION", Default: "1.3", Used: withStore | Failover, Section: secProcess,
		Doc: "the oldest TLS version the gateway's and operator listeners accept and the clients of PostgreSQL, Redis, Temporal and SMTP offer; 1.2 only for an old load balancer or server (docs/security.md)"},
		tlsVersion)
)

// PostgreSQL, Redis and Temporal.
var (
	// #nosec G101 -- the local development database's well-known password; production sets DATABASE_URL.
	DatabaseURL = declare(Setting{Name: "DATABASE_URL", Default: "postgres://orderflow:orderflow@127.0.0.1:5432/orderflow?sslmode=disable",
		Used: withStore | Failover, Secret: Password, Section: secDeps,
		Doc: "the PostgreSQL database, system of record; sslmode=verify-full (TLS, the server's certificate and name checked, with sslrootcert) or sslmode=disable, never a mode that encrypts without checking"},
		postgresURL)
	RedisURL = declare(Setting{Name: "REDIS_URL", Default: "redis://127.0.0.1:6379/0", Used: services, Secret: Password, Section: secDeps,
		Doc: "Redis: cache tiers and rate limits only (losing it loses nothing)"}, urlOf("redis", "rediss", "unix"))
	RedisSentinels = declare(Setting{Name: "REDIS_SENTINELS", Used: services, Section: secDeps,
		Doc: "Redis Sentinels (host:port, comma-separated); with REDIS_MASTER_NAME the processes ask them for the master and follow a failover, REDIS_URL then giving only the password and database"},
		list("host:port addresses", hostPort))
	RedisMasterName = declare(Setting{Name: "REDIS_MASTER_NAME", Used: services, Section: secDeps,
		Doc: "the master name the Sentinels monitor; set with REDIS_SENTINELS"}, text(name))
	TemporalAddress = declare(Setting{Name: "TEMPORAL_ADDRESS", Default: "127.0.0.1:7233", Used: services | Failover, Section: secDeps,
		Doc: "the Temporal frontend (gRPC)"}, address(false))
	TemporalNamespace = declare(Setting{Name: "TEMPORAL_NAMESPACE", Default: "default", Used: services | Failover, Section: secDeps,
		Doc: "the Temporal namespace of the sagas"}, text(name))
	TemporalBreakerOpenTimeout = declare(Setting{Name: "TEMPORAL_BREAKER_OPEN_TIMEOUT", Default: "5s", Used: API, Section: secDeps,
		Doc: "how long the gateway's breaker in front of the Temporal frontend fails placements fast (and keeps /health/ready failing) before its 3 trial calls; shorter than the design's 30 s because a frontend lost behind the balancer is replaced in seconds (docs/resilience.md)"},
		duration(100*time.Millisecond))
	TemporalTLSCAFile = declare(Setting{Name: "TEMPORAL_TLS_CA_FILE", Used: services | Failover, Section: secDeps,
		Doc: "CAs (PEM) the frontend's certificate must chain to; any TEMPORAL_TLS_* turns TLS on (system roots without it)"}, file)
	TemporalTLSCertFile = declare(Setting{Name: "TEMPORAL_TLS_CERT_FILE", Used: services | Failover, Section: secDeps,
		Doc: "client certificate (PEM) for mutual TLS, as Temporal Cloud requires; set with TEMPORAL_TLS_KEY_FILE"}, file)
	TemporalTLSKeyFile = declare(Setting{Name: "TEMPORAL_TLS_KEY_FILE", Used: services | Failover, Section: secDeps,
		Doc: "the client certificate's key (PEM); set with TEMPORAL_TLS_CERT_FILE"}, file)
	TemporalTLSServerName = declare(Setting{Name: "TEMPORAL_TLS_SERVER_NAME", Used: services | Failover, Section: secDeps,
		Doc: "the name the frontend's certificate is checked against, when TEMPORAL_ADDRESS is an IP or another name"}, text())
)

// Personal data.
var (
	PIIKeys = declare(Setting{Name: "PII_KEYS", Used: withPII | Failover, Secret: Secret, Section: secPII,
		Doc: "AES-256 keys that seal stored e-mails and every Temporal payload, as kid:base64key pairs, comma-separated; the gateway and the workers refuse to start without keys (`make run` writes .data/pii.keys)"},
		text(piiKeys))
	PIIKeysFile = declare(Setting{Name: "PII_KEYS_FILE", Used: withPII | Failover, Section: secPII,
		Doc: "a file of the same pairs, one per line (# starts a comment); added to PII_KEYS"}, file)
	PIIActiveKey = declare(Setting{Name: "PII_ACTIVE_KEY", Used: withPII | Failover, Section: secPII,
		Doc: "the key id new data is sealed with; default the last key listed"}, text())
)

// Gateway.
var (
	APIAddr = declare(Setting{Name: "API_ADDR", Default: ":8080", Used: API, Section: secGateway,
		Doc: "the gateway's listen address"}, address(true))
	OperatorAddr = declare(Setting{Name: "OPERATOR_ADDR", Used: API, Section: secGateway,
		Doc: "when set, /metrics and /codec are served on this listener only, and API_ADDR serves /v1 and /health* (what a load balancer exposes)"},
		address(true))
	APIDrainDelay = declare(Setting{Name: "API_DRAIN_DELAY", Default: "0s", Used: API, Section: secGateway,
		Doc: "after SIGTERM, how long the gateway keeps serving with /health/ready failing before it stops accepting; set above the load balancer's check interval times its fall count"},
		duration(0))
	APITLSCertFile = declare(Setting{Name: "API_TLS_CERT_FILE", Used: API, Section: secGateway,
		Doc: "the gateway's certificate (PEM); with API_TLS_KEY_FILE it serves HTTPS only, with HSTS (neither: plain HTTP)"}, file)
	APITLSKeyFile = declare(Setting{Name: "API_TLS_KEY_FILE", Used: API, Section: secGateway,
		Doc: "the certificate's key (PEM); set with API_TLS_CERT_FILE"}, file)
	APIBodyLimitBytes = declare(Setting{Name: "API_BODY_LIMIT_BYTES", Default: "65536", Used: API, Section: secGateway,
		Doc: "the largest request body accepted, in bytes"}, integer(1, maxInt))
	IdempotencyTTL = declare(Setting{Name: "IDEMPOTENCY_TTL", Default: "24h", Used: API, Section: secGateway,
		Doc: "how long an Idempotency-Key is remembered"}, duration(time.Minute))
	OrderStartDeferMax = declare(Setting{Name: "ORDER_START_DEFER_MAX", Default: "60s", Used: API, Section: secGateway,
		Doc: "when Temporal cannot take an order's saga start in time (a lost server, shards moving, the breaker open), the order is accepted (202) with its start deferred to the gateways' starter while the oldest deferred start is younger than this; 0s: never, a failed start is a 503 (docs/resilience.md)"},
		duration(0))
	AcceptSynchronousCommit = declare(Setting{Name: "ACCEPT_SYNCHRONOUS_COMMIT", Default: "remote_apply", Used: API, Section: secGateway,
		Doc: "the synchronous_commit level an order's acceptance record is committed at: remote_apply (applied) or on (flushed) waits for the other region's synchronous standby before the 202, every other write keeping the server's default (docs/regions.md); without a synchronous standby either is a local commit"},
		oneOf("remote_apply", "on"))
	APIEmbedWorker = declare(Setting{Name: "API_EMBED_WORKER", Default: "false", Used: API, Section: secGateway,
		Doc: "run an order worker in the gateway and start sagas eagerly (`make run` sets true; docs/performance.md); the gateway then reads the worker's settings too"},
		boolean)
	TrustedProxies = declare(Setting{Name: "TRUSTED_PROXIES", Used: API, Section: secGateway,
		Doc: "ranges whose X-Forwarded-For, X-Real-IP and Forwarded headers are believed (CIDRs or addresses, comma-separated); none: the peer's own address counts"},
		prefixes)
	CodecCORSOrigins = declare(Setting{Name: "CODEC_CORS_ORIGINS", Default: "http://127.0.0.1:8233,http://localhost:8233", Used: API, Section: secGateway,
		Doc: "the Temporal Web UI origins that may call the gateway's codec server (/codec) from a browser"}, list("origins", origin))
)

// Authentication.
var (
	AuthJWKSURL = declare(Setting{Name: "AUTH_JWKS_URL", Used: API, Secret: Password, Section: secAuth,
		Doc: "the identity provider's JSON Web Key Set; RS256 and ES256 tokens are verified against it (needs AUTH_ISSUER and AUTH_AUDIENCE)"},
		urlOf("https", "http"))
	AuthIssuer = declare(Setting{Name: "AUTH_ISSUER", Used: API | Token, Section: secAuth,
		Doc: "the iss every token must carry; default orderflow-dev with the development secret"}, text())
	AuthAudience = declare(Setting{Name: "AUTH_AUDIENCE", Used: API | Token, Section: secAuth,
		Doc: "the aud every token must carry; default orderflow with the development secret"}, text())
	AuthHS256Secret = declare(Setting{Name: "AUTH_HS256_SECRET", Used: API | Token, Secret: Secret, Section: secAuth,
		Doc: "development only: the shared secret of HS256 tokens, at least 32 bytes (`make run` writes .data/auth-hs256.secret)"},
		text(minLen(32)))
	AuthClockSkew = declare(Setting{Name: "AUTH_CLOCK_SKEW", Default: "30s", Used: API, Section: secAuth,
		Doc: "leeway on a token's exp and nbf"}, duration(0))
	AuthJWKSRefresh = declare(Setting{Name: "AUTH_JWKS_REFRESH", Default: "10m", Used: API, Section: secAuth,
		Doc: "how often the key set is fetched again, so that removed keys stop verifying"}, duration(time.Second))
	AuthJWKSMinRefresh = declare(Setting{Name: "AUTH_JWKS_MIN_REFRESH", Default: "30s", Used: API, Section: secAuth,
		Doc: "the least time between two fetches an unknown key id may trigger"}, duration(0))
	SessionTTL = declare(Setting{Name: "CACHE_SESSION_TTL", Default: "30m", Used: API, Section: secAuth,
		Doc: "how long verified claims are cached (the session tier); the token's own expiry bounds it too"}, duration(time.Second))
)

// Worker.
var (
	WorkerMaxActivities = declare(Setting{Name: "WORKER_MAX_ACTIVITIES", Default: "200", Used: services, Section: secWorker,
		Doc: "a worker's activity slots, split by the bulkhead shares"}, integer(1, maxInt))
	WorkerMaxLocalActivities = declare(Setting{Name: "WORKER_MAX_LOCAL_ACTIVITIES", Default: "200", Used: services, Section: secWorker,
		Doc: "a worker's local activity slots"}, integer(1, maxInt))
	WorkerMaxWorkflowTasks = declare(Setting{Name: "WORKER_MAX_WORKFLOW_TASKS", Default: "100", Used: services, Section: secWorker,
		Doc: "a worker's workflow task slots"}, integer(1, maxInt))
	WorkerHealthAddr = declare(Setting{Name: "WORKER_HEALTH_ADDR", Default: ":8081", Used: Worker, Section: secWorker,
		Doc: "where a worker serves GET /health and GET /metrics"}, address(true))
	WorkerNamespaces = declare(Setting{Name: "WORKER_NAMESPACES", Used: services, Section: secWorker,
		Doc: "the namespaces a worker (or a gateway's embedded worker) serves, comma-separated, each polled only while the cluster at TEMPORAL_ADDRESS is its active cluster (docs/regions.md); unset: TEMPORAL_NAMESPACE, polled always"},
		list("namespaces", name))
	WorkerNamespaceCheckInterval = declare(Setting{Name: "WORKER_NAMESPACE_CHECK_INTERVAL", Default: "5s", Used: services, Section: secWorker,
		Doc: "how often a worker with WORKER_NAMESPACES asks its cluster whether it is active for each namespace"},
		duration(100*time.Millisecond))
	MailSimulatedLatency = declare(Setting{Name: "MAIL_SIMULATED_LATENCY", Default: "0s", Used: services, Section: secWorker,
		Doc: "the development mailer's simulated round trip"}, duration(0))
)

// Payment.
var (
	PaymentProviders = declare(Setting{Name: "PAYMENT_PROVIDERS", Default: "paysim-a=paysim:http://127.0.0.1:8090", Used: services, Section: secPayment,
		Doc: "providers in failover order, as name=kind:url (kind paysim or stripe; a stripe URL may be empty: Stripe's own API); the name is what payments.provider records"},
		providers)
	StripeAPIKey = declare(Setting{Name: "STRIPE_API_KEY", Default: "sk_test_123", Used: services, Secret: Secret, Section: secPayment,
		Doc: "the secret key of the stripe providers (the default is stripe-mock's)"}, text())
	PaymentProviderTimeout = declare(Setting{Name: "PAYMENT_PROVIDER_TIMEOUT", Default: "8s", Used: services, Section: secPayment,
		Doc: "bound on one HTTP call to a provider"}, duration(time.Millisecond))
	PaymentBreakerWindow = declare(Setting{Name: "PAYMENT_BREAKER_WINDOW", Default: "10s", Used: services, Section: secPayment,
		Doc: "the window a provider's circuit breaker counts failures in"}, duration(time.Millisecond))
	PaymentBreakerFailureRatio = declare(Setting{Name: "PAYMENT_BREAKER_FAILURE_RATIO", Default: "0.5", Used: services, Section: secPayment,
		Doc: "the breaker opens when at least this share of the window's calls failed"}, number(0.01, 1))
	PaymentBreakerMinRequests = declare(Setting{Name: "PAYMENT_BREAKER_MIN_REQUESTS", Default: "10", Used: services, Section: secPayment,
		Doc: "the least number of calls in the window before the breaker may open"}, integer(1, math.MaxUint32))
	PaymentBreakerOpenTimeout = declare(Setting{Name: "PAYMENT_BREAKER_OPEN_TIMEOUT", Default: "30s", Used: services, Section: secPayment,
		Doc: "how long an open breaker refuses calls before it lets a trial call through"}, duration(time.Millisecond))
	PaymentBreakerHalfOpenSuccesses = declare(Setting{Name: "PAYMENT_BREAKER_HALF_OPEN_SUCCESSES", Default: "3", Used: services, Section: secPayment,
		Doc: "consecutive successful trial calls that close the breaker"}, integer(1, math.MaxUint32))
	PaymentDeadline = declare(Setting{Name: "PAYMENT_DEADLINE", Default: "30m", Used: API, Section: secPayment,
		Doc: "how long an order may wait in PAYMENT_PENDING for a provider before it is compensated as payment_unavailable"},
		duration(time.Second))
	PaymentRetryInitial = declare(Setting{Name: "PAYMENT_RETRY_INITIAL", Default: "10s", Used: API, Section: secPayment,
		Doc: "first interval between a parked order's charge attempts; it doubles up to PAYMENT_RETRY_MAX"}, duration(time.Millisecond))
	PaymentRetryMax = declare(Setting{Name: "PAYMENT_RETRY_MAX", Default: "2m", Used: API, Section: secPayment,
		Doc: "longest interval between a parked order's charge attempts"}, duration(time.Millisecond))
	PaymentFailoverQuiet = declare(Setting{Name: "PAYMENT_FAILOVER_QUIET", Default: "20s", Used: services, Section: secPayment,
		Doc: "how long after an ambiguous charge request (timeout, 5xx) to one provider the charge may go to another, once the first says it holds none"},
		duration(0))
	PaymentWebhookSecrets = declare(Setting{Name: "PAYMENT_WEBHOOK_SECRETS", Used: API, Secret: Secret, Section: secPayment,
		Doc: "each provider's webhook endpoint secret, as provider=secret (the provider's name in PAYMENT_PROVIDERS; Stripe's whsec_...); POST /v1/webhooks/payments/{provider} answers 404 for a provider without one"},
		providerSecrets)
	PaymentWebhookTolerance = declare(Setting{Name: "PAYMENT_WEBHOOK_TOLERANCE", Default: "5m", Used: API, Section: secPayment,
		Doc: "how old a provider webhook's signed timestamp may be (replay protection; Stripe's default)"}, duration(time.Second))
)

// Rate limits and bulkheads.
var (
	RateLimitEnabled = declare(Setting{Name: "RATE_LIMIT_ENABLED", Default: "true", Used: API, Section: secLimits,
		Doc: "limit requests per customer and per client address (Redis GCRA, in-process when Redis is down)"}, boolean)
	RateLimitPerUser = declare(Setting{Name: "RATE_LIMIT_PER_USER", Default: "100", Used: API, Section: secLimits,
		Doc: "requests per RATE_LIMIT_PERIOD per customer"}, integer(1, maxInt))
	RateLimitPerIP = declare(Setting{Name: "RATE_LIMIT_PER_IP", Default: "1000", Used: API, Section: secLimits,
		Doc: "requests per RATE_LIMIT_PERIOD per client address"}, integer(1, maxInt))
	RateLimitPeriod = declare(Setting{Name: "RATE_LIMIT_PERIOD", Default: "1m", Used: API, Section: secLimits,
		Doc: "the rate limits' period"}, duration(time.Second))
	GatewayMaxInFlight = declare(Setting{Name: "GATEWAY_MAX_IN_FLIGHT", Default: "1000", Used: API, Section: secLimits,
		Doc: "requests the gateway serves at once, split by the bulkhead shares; over a class's share it answers 503 overloaded (0 turns shedding off)"},
		integer(0, maxInt))
	BulkheadCriticalPct = declare(Setting{Name: "BULKHEAD_CRITICAL_PCT", Default: "60", Used: services, Section: secLimits,
		Doc: "percent of a worker's activity slots and of the gateway's in-flight requests for the saga and order writes"}, integer(1, 100))
	BulkheadNonCriticalPct = declare(Setting{Name: "BULKHEAD_NONCRITICAL_PCT", Default: "30", Used: services, Section: secLimits,
		Doc: "percent for notifications and reads"}, integer(1, 100))
	BulkheadAdminPct = declare(Setting{Name: "BULKHEAD_ADMIN_PCT", Default: "10", Used: services, Section: secLimits,
		Doc: "percent for operator and maintenance work"}, integer(1, 100))
	AdmissionEnabled = declare(Setting{Name: "ADMISSION_ENABLED", Default: "true", Used: API, Section: secLimits,
		Doc: "adaptive admission of order placements and cancels: a limit in flight that follows their latency (Gradient2), cancels first; past it the gateway answers 503 overloaded at once"},
		boolean)
	AdmissionInitialLimit = declare(Setting{Name: "ADMISSION_INITIAL_LIMIT", Default: "20", Used: API, Section: secLimits,
		Doc: "the adaptive limit before the gateway has measured any latency"}, integer(1, maxInt))
	AdmissionMaxLimit = declare(Setting{Name: "ADMISSION_MAX_LIMIT", Default: "600", Used: API, Section: secLimits,
		Doc: "the highest the adaptive limit goes (the critical bulkhead's share of GATEWAY_MAX_IN_FLIGHT bounds it too)"}, integer(4, maxInt))
	AdmissionQueueWait = declare(Setting{Name: "ADMISSION_QUEUE_WAIT", Default: "5ms", Used: API, Section: secLimits,
		Doc: "longest a placement or cancel waits for a slot; one whose estimated wait is longer is refused at once"}, duration(time.Millisecond))
	AdmissionBacklogMaxAge = declare(Setting{Name: "ADMISSION_BACKLOG_MAX_AGE", Default: "10s", Used: API, Section: secLimits,
		Doc: "refuse new placements (503, cancels still pass) while the oldest task of the region's order task queue is older (0: off)"}, duration(0))
	AdmissionBacklogMaxCount = declare(Setting{Name: "ADMISSION_BACKLOG_MAX_COUNT", Default: "0", Used: API, Section: secLimits,
		Doc: "refuse new placements while the order task queue holds more tasks (0: off)"}, integer(0, maxInt))
	AdmissionBacklogInterval = declare(Setting{Name: "ADMISSION_BACKLOG_INTERVAL", Default: "2s", Used: API, Section: secLimits,
		Doc: "how often the gateway samples the order task queue's backlog (DescribeTaskQueue stats), also exported as orderflow_temporal_task_queue_backlog"},
		duration(100*time.Millisecond))
)

// Cache.
var (
	CacheCatalogTTL = declare(Setting{Name: "CACHE_CATALOG_TTL", Default: "5m", Used: API, Section: secCache,
		Doc: "how long a product stays cached"}, duration(time.Second))
	CacheInventoryTTL = declare(Setting{Name: "CACHE_INVENTORY_TTL", Default: "30s", Used: API, Section: secCache,
		Doc: "how long a stock count stays cached"}, duration(time.Second))
	CacheOrderTTL = declare(Setting{Name: "CACHE_ORDER_TTL", Default: "10m", Used: API, Section: secCache,
		Doc: "how long an order stays cached"}, duration(time.Second))
	CacheCallTimeout = declare(Setting{Name: "CACHE_CALL_TIMEOUT", Default: "500ms", Used: services, Section: secCache,
		Doc: "bound on every Redis call; a slow Redis is a cache miss"}, duration(time.Millisecond))
)

// Health.
var (
	HealthBudget = declare(Setting{Name: "HEALTH_BUDGET", Default: "3s", Used: services, Section: secHealth,
		Doc: "time budget of GET /health"}, duration(time.Millisecond))
	HealthDeepBudget = declare(Setting{Name: "HEALTH_DEEP_BUDGET", Default: "10s", Used: API, Section: secHealth,
		Doc: "time budget of GET /health/deep (a synthetic order through the saga)"}, duration(time.Millisecond))
	HealthMinFreeDiskMB = declare(Setting{Name: "HEALTH_MIN_FREE_DISK_MB", Default: "512", Used: services, Section: secHealth,
		Doc: "the disk check fails below this much free space on HEALTH_DISK_PATH"}, integer(0, maxInt))
	HealthDiskPath = declare(Setting{Name: "HEALTH_DISK_PATH", Default: "/", Used: services, Section: secHealth,
		Doc: "the file system the disk check watches"}, text(nonEmpty))
	HealthMaxHeapMB = declare(Setting{Name: "HEALTH_MAX_HEAP_MB", Default: "1024", Used: services, Section: secHealth,
		Doc: "the memory check fails above this Go heap"}, integer(1, maxInt))
	HealthSyntheticSKU = declare(Setting{Name: "HEALTH_SYNTHETIC_SKU", Default: "SYNTHETIC-HEALTH", Used: API, Section: secHealth,
		Doc: "the SKU the deep check orders (migration 0003 seeds it, hidden from the public API)"}, text(nonEmpty))
	HealthSyntheticCustomer = declare(Setting{Name: "HEALTH_SYNTHETIC_CUSTOMER", Default: "synthetic-health", Used: API, Section: secHealth,
		Doc: "the customer id of the deep check's orders"}, text(nonEmpty))
)

// Fulfillment and the carrier (docs/fulfillment.md).
var (
	FulfillmentEnabled = declare(Setting{Name: "FULFILLMENT_ENABLED", Default: "false", Used: API, Section: secFulfillment,
		Doc: "new sagas continue after CONFIRMED into fulfillment: shipments handed to the carrier, carrier events, delivery, returns; false: orders end CONFIRMED"},
		boolean)
	ShipmentSLA = declare(Setting{Name: "SHIPMENT_SLA", Default: "48h", Used: API, Section: secFulfillment,
		Doc: "how long a shipment may wait for the carrier's pickup before the order shows FULFILLMENT_OVERDUE and the breach is counted"},
		duration(time.Minute))
	CarrierURL = declare(Setting{Name: "CARRIER_URL", Used: services, Section: secFulfillment,
		Doc: "the carrier the workers hand shipments to; unset: shipments wait for carrier events all the same"}, urlOf("http", "https"))
	CarrierWebhookSecret = declare(Setting{Name: "CARRIER_WEBHOOK_SECRET", Used: API, Secret: Secret, Section: secFulfillment,
		Doc: "the shared secret of the carrier's HMAC-SHA256 event signatures; unset: every carrier event is refused"}, text(minLen(16)))
	CarrierEventTolerance = declare(Setting{Name: "CARRIER_EVENT_TOLERANCE", Default: "5m", Used: API, Section: secFulfillment,
		Doc: "how far a signed carrier event's timestamp may be from the gateway's clock (replay protection)"}, duration(time.Second))
	ReturnWindow = declare(Setting{Name: "RETURN_WINDOW", Default: "720h", Used: API, Section: secFulfillment,
		Doc: "how long after delivery goods may be returned (30 days)"}, duration(time.Hour))
)

// Mail and the event stream: read by the worker process, whose outbox pool
// sends the mail and runs the event relays and the analytics consumer.
var (
	SMTPURL = declare(Setting{Name: "SMTP_URL", Used: Worker, Secret: Password, Section: secMessaging,
		Doc: "the mail server as one URL: smtp://user:password@host:587?tls=mandatory|opportunistic|none, or smtps://... (TLS from the first byte, port 465); unset, with SMTP_HOST unset too: messages are logged (the development mailer)"},
		urlOf("smtp", "smtps"))
	SMTPHost = declare(Setting{Name: "SMTP_HOST", Used: Worker, Section: secMessaging,
		Doc: "the mail server's host, when SMTP_URL is unset (with SMTP_PORT, SMTP_USERNAME, SMTP_PASSWORD, SMTP_TLS)"}, text())
	SMTPPort = declare(Setting{Name: "SMTP_PORT", Default: "587", Used: Worker, Section: secMessaging,
		Doc: "the mail server's port, with SMTP_HOST"}, integer(1, 65535))
	SMTPUsername = declare(Setting{Name: "SMTP_USERNAME", Used: Worker, Secret: Secret, Section: secMessaging,
		Doc: "the SMTP user, with SMTP_HOST (often an address: never shown)"}, text())
	SMTPPassword = declare(Setting{Name: "SMTP_PASSWORD", Used: Worker, Secret: Secret, Section: secMessaging,
		Doc: "the SMTP password, with SMTP_HOST"}, text())
	SMTPTLS = declare(Setting{Name: "SMTP_TLS", Default: "mandatory", Used: Worker, Section: secMessaging,
		Doc: "STARTTLS policy with SMTP_HOST: mandatory (refuse a server without it), opportunistic, none, or implicit (TLS from the first byte)"},
		oneOf("mandatory", "opportunistic", "none", "implicit"))
	MailFrom = declare(Setting{Name: "MAIL_FROM", Default: "orders@orderflow.localhost", Used: Worker, Secret: Secret, Section: secMessaging,
		Doc: "the sender of customer messages; the Message-IDs use its domain (an address: never shown, as the logs hold none)"}, text(nonEmpty))
	NATSURL = declare(Setting{Name: "NATS_URL", Used: Worker, Secret: Password, Section: secMessaging,
		Doc: "the NATS server (or cluster, comma-separated) with JetStream the event relays publish to; unset: events wait in their outbox, nothing is lost"},
		list("nats:// URLs", func(s string) error { return checkURL(s, "nats", "tls") }))
	EventsReplicas = declare(Setting{Name: "EVENTS_REPLICAS", Default: "1", Used: Worker, Section: secMessaging,
		Doc: "replicas of each event stream: 1 on one server, 3 on a cluster"}, integer(1, 5))
	EventsMaxAge = declare(Setting{Name: "EVENTS_MAX_AGE", Default: "168h", Used: Worker, Section: secMessaging,
		Doc: "how long a stream keeps an event"}, duration(time.Minute))
	EventsDuplicateWindow = declare(Setting{Name: "EVENTS_DUPLICATE_WINDOW", Default: "10m", Used: Worker, Section: secMessaging,
		Doc: "how long JetStream remembers a message id to drop a republished copy"}, duration(time.Second))
	EventsAnalytics = declare(Setting{Name: "EVENTS_ANALYTICS", Default: "true", Used: Worker, Section: secMessaging,
		Doc: "run the analytics consumer (business metrics from the event stream) in the worker; needs NATS_URL"}, boolean)
)

// Outbound webhooks (docs/webhooks.md). The gateway reads the retry policy
// too: a redelivery or replay it starts carries it.
var (
	WebhooksRetryFor = declare(Setting{Name: "WEBHOOKS_RETRY_FOR", Default: "72h", Used: services, Section: secWebhooks,
		Doc: "how long one event is retried to an endpoint before it is given up (logged; replay sends it again)"}, duration(time.Second))
	WebhooksRetryInitial = declare(Setting{Name: "WEBHOOKS_RETRY_INITIAL", Default: "10s", Used: services, Section: secWebhooks,
		Doc: "the first wait before a failed delivery is retried; each wait doubles"}, duration(time.Millisecond))
	WebhooksRetryMax = declare(Setting{Name: "WEBHOOKS_RETRY_MAX", Default: "1h", Used: services, Section: secWebhooks,
		Doc: "the longest wait between two attempts at one delivery"}, duration(time.Millisecond))
	WebhooksTimeout = declare(Setting{Name: "WEBHOOKS_TIMEOUT", Default: "10s", Used: services, Section: secWebhooks,
		Doc: "how long one delivery attempt may take (connect, send, answer)"}, duration(100*time.Millisecond))
	WebhooksIdle = declare(Setting{Name: "WEBHOOKS_IDLE", Default: "10m", Used: services, Section: secWebhooks,
		Doc: "how long an order's delivery workflow waits for the order's next event before it completes"}, duration(time.Second))
	WebhooksDisableAfter = declare(Setting{Name: "WEBHOOKS_DISABLE_AFTER", Default: "24h", Used: services, Section: secWebhooks,
		Doc: "an endpoint failing this long with no success in between is disabled (OrderflowWebhookEndpointDisabled)"}, duration(time.Second))
	WebhooksSecretOverlap = declare(Setting{Name: "WEBHOOKS_SECRET_OVERLAP", Default: "24h", Used: API, Section: secWebhooks,
		Doc: "how long a rotated-out signing secret keeps signing beside the new one"}, duration(0))
	WebhooksAllowPrivate = declare(Setting{Name: "WEBHOOKS_ALLOW_PRIVATE", Default: "false", Used: services, Section: secWebhooks,
		Doc: "let deliveries connect to loopback, private and link-local addresses; false keeps endpoints off the platform's own network (SSRF)"}, boolean)
)

// Profiling.
var (
	APIPprofAddr = declare(Setting{Name: "API_PPROF_ADDR", Used: API, Section: secProfiler,
		Doc: "where the gateway serves net/http/pprof (such as 127.0.0.1:6060); unset: off"}, address(true))
	WorkerPprofAddr = declare(Setting{Name: "WORKER_PPROF_ADDR", Used: Worker, Section: secProfiler,
		Doc: "where a worker serves net/http/pprof; unset: off"}, address(true))
)

// rules tie settings together.
var rules = []rule{
	{used: API, check: pair(APITLSCertFile, APITLSKeyFile)},
	{used: services, check: pair(TemporalTLSCertFile, TemporalTLSKeyFile)},
	{used: services, check: func(v *Values) error {
		if (len(RedisSentinels.peek(v)) == 0) != (RedisMasterName.peek(v) == "") {
			return errors.New("REDIS_SENTINELS and REDIS_MASTER_NAME must be set together")
		}
		return nil
	}},
	{used: API, check: func(v *Values) error {
		if PaymentRetryInitial.peek(v) > PaymentRetryMax.peek(v) {
			return errors.New("PAYMENT_RETRY_INITIAL must not exceed PAYMENT_RETRY_MAX")
		}
		return nil
	}},
	{used: services, check: func(v *Values) error {
		if BulkheadCriticalPct.peek(v)+BulkheadNonCriticalPct.peek(v)+BulkheadAdminPct.peek(v) > 100 {
			return errors.New("BULKHEAD_CRITICAL_PCT, BULKHEAD_NONCRITICAL_PCT and BULKHEAD_ADMIN_PCT add up to more than 100")
		}
		return nil
	}},
	{used: API, check: func(v *Values) error {
		if AuthJWKSURL.peek(v) != "" && (AuthIssuer.peek(v) == "" || AuthAudience.peek(v) == "") {
			return errors.New("AUTH_JWKS_URL needs AUTH_ISSUER and AUTH_AUDIENCE")
		}
		return nil
	}},
}

// pair refuses one of two file settings without the other.
func pair(a, b Var[string]) func(v *Values) error {
	return func(v *Values) error {
		if (a.peek(v) == "") != (b.peek(v) == "") {
			return errors.New(a.s.Name + " and " + b.s.Name + " must be set together")
		}
		return nil
	}
}

// Regions and failover (docs/regions.md): `orderflow failover` runs in the
// region that survives, for the lost one.
var (
	// #nosec G101 -- names the setting; no credential.
	FailoverStandbyDatabaseURL = declare(Setting{Name: "FAILOVER_STANDBY_DATABASE_URL", Used: Failover, Secret: Password, Section: secRegions,
		Doc: "the lost region's database standby in this region, as a role that may run pg_promote: the failover promotes it"},
		postgresURL)
	// #nosec G101 -- names the setting; no credential.
	FailoverPrimaryDatabaseURL = declare(Setting{Name: "FAILOVER_PRIMARY_DATABASE_URL", Used: Failover, Secret: Password, Section: secRegions,
		Doc: "this region's own database primary, as a superuser: the failover drops the lost region's standby from its synchronous_standby_names, the failback puts it back"},
		postgresURL)
	FailoverWatchURL = declare(Setting{Name: "FAILOVER_WATCH_URL", Used: Failover, Section: secRegions,
		Doc: "the lost region's health endpoint `orderflow failover --watch` polls (its gateways' /health/ready through the entry point's per-region address)"},
		urlOf("http", "https"))
	FailoverWatchInterval = declare(Setting{Name: "FAILOVER_WATCH_INTERVAL", Default: "5s", Used: Failover, Section: secRegions,
		Doc: "how often --watch polls FAILOVER_WATCH_URL; it fails over after 3 failed polls within 3 intervals (15 s by default)"},
		duration(100*time.Millisecond))
	FailoverRedriveWindow = declare(Setting{Name: "FAILOVER_REDRIVE_WINDOW", Default: "1h", Used: Failover, Section: secRegions,
		Doc: "how far back from the failover the re-drive looks for accepted orders whose saga did not replicate: well past Temporal's replication lag"},
		duration(time.Minute))
)
