package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/orderflow/orderflow/activities/payment"
	hooks "github.com/orderflow/orderflow/activities/webhooks"
	"github.com/orderflow/orderflow/api"
	"github.com/orderflow/orderflow/internal/admission"
	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/boot"
	"github.com/orderflow/orderflow/internal/bulkhead"
	"github.com/orderflow/orderflow/internal/cache"
	"github.com/orderflow/orderflow/internal/config"
	"github.com/orderflow/orderflow/internal/health"
	"github.com/orderflow/orderflow/internal/pii"
	"github.com/orderflow/orderflow/internal/tlsconf"
	"github.com/orderflow/orderflow/workers"
)

// Each component's settings are built here, and only here, from the
// declarations of internal/config: every package gets its own small Config.
// A builder reads the values; the caller then asks v.Err() once, so that
// every bad value is reported together.

// env reads the process's environment; tests replace it.
type env = func(string) (string, bool)

// gatewayConfig is the gateway process: api.Config and what only the
// process needs (its listener, TLS, tokens, the embedded worker).
type gatewayConfig struct {
	Boot boot.Config
	API  api.Config
	Addr string
	// OperatorAddr, when set, is the operators' own listener (/metrics,
	// /codec); DrainDelay is how long a SIGTERM'd gateway keeps serving
	// with readiness failing.
	OperatorAddr string
	DrainDelay   time.Duration
	TLS          tlsconf.ServerConfig
	Auth         auth.Config
	Embed        bool
	Worker       workerConfig // the embedded worker, with Embed
}

// workerConfig is a worker process, or the gateway's embedded worker.
type workerConfig struct {
	Boot        boot.Config
	Pool        workers.Config
	Payment     paymentConfig
	Health      health.Config
	HealthAddr  string
	MailLatency time.Duration
	// CarrierURL is the carrier fulfilled orders' shipments are handed to;
	// empty: shipments wait for carrier events all the same.
	CarrierURL string
	// Messaging is the worker process's mail server and event stream (the
	// gateway's embedded worker runs no outbox pool).
	Messaging workers.MessagingConfig
	// Namespaces, when set, are the namespaces a worker process polls, each
	// only while its cluster is active for it, asked every NamespaceCheck
	// (docs/regions.md); empty: the client's namespace, always.
	Namespaces     []string
	NamespaceCheck time.Duration
}

// paymentConfig is what the worker's payment activities are built from:
// the providers in failover order, their breakers and the failover pause.
type paymentConfig struct {
	Providers     []config.Provider
	StripeKey     string
	Timeout       time.Duration
	Breaker       payment.BreakerSettings
	FailoverQuiet time.Duration
}

func loadGateway(lookup env) (gatewayConfig, *config.Values) {
	v := config.Load(lookup, config.API)
	c := gatewayConfig{
		Boot: boot.Common(v, &config.APIPprofAddr),
		API: api.Config{
			Region:         config.Region.Get(v),
			Regions:        config.Regions.Get(v),
			AcceptCommit:   config.AcceptSynchronousCommit.Get(v),
			BodyLimit:      int64(config.APIBodyLimitBytes.Get(v)),
			IdempotencyTTL: config.IdempotencyTTL.Get(v),
			EagerStart:     config.APIEmbedWorker.Get(v),
			StartDeferMax:  config.OrderStartDeferMax.Get(v),
			Payment: api.PaymentSchedule{Deadline: config.PaymentDeadline.Get(v), RetryInitial: config.PaymentRetryInitial.Get(v),
				RetryMax: config.PaymentRetryMax.Get(v)},
			RateLimit: api.RateLimit{Enabled: config.RateLimitEnabled.Get(v), PerUser: config.RateLimitPerUser.Get(v),
				PerIP: config.RateLimitPerIP.Get(v), Period: config.RateLimitPeriod.Get(v)},
			Bulkhead: api.Bulkhead{MaxInFlight: config.GatewayMaxInFlight.Get(v), Shares: shares(v)},
			Tiers: cache.Tiers{CatalogTTL: config.CacheCatalogTTL.Get(v), InventoryTTL: config.CacheInventoryTTL.Get(v),
				OrderTTL: config.CacheOrderTTL.Get(v), CallTimeout: config.CacheCallTimeout.Get(v)},
			TrustedProxies: config.TrustedProxies.Get(v),
			Health: api.Health{Config: boot.Health(v), DeepBudget: config.HealthDeepBudget.Get(v),
				SyntheticSKU: config.HealthSyntheticSKU.Get(v), SyntheticOwner: config.HealthSyntheticCustomer.Get(v)},
			CodecOrigins: config.CodecCORSOrigins.Get(v),
			Fulfillment: api.Fulfillment{Enabled: config.FulfillmentEnabled.Get(v), ShipmentSLA: config.ShipmentSLA.Get(v),
				WebhookSecret: config.CarrierWebhookSecret.Get(v), EventTolerance: config.CarrierEventTolerance.Get(v),
				ReturnWindow: config.ReturnWindow.Get(v)},
			Resilience: resilience(v),
			Webhooks:   api.Webhooks{Policy: webhookPolicy(v), SecretOverlap: config.WebhooksSecretOverlap.Get(v)},
			PaymentWebhooks: api.PaymentWebhooks{Secrets: config.PaymentWebhookSecrets.Get(v),
				Tolerance: config.PaymentWebhookTolerance.Get(v)},
		},
		Addr:         config.APIAddr.Get(v),
		OperatorAddr: config.OperatorAddr.Get(v),
		DrainDelay:   config.APIDrainDelay.Get(v),
		TLS: tlsconf.ServerConfig{CertFile: config.APITLSCertFile.Get(v), KeyFile: config.APITLSKeyFile.Get(v),
			MinVersion: config.TLSMinVersion.Get(v)},
		Auth:  boot.Auth(v),
		Embed: config.APIEmbedWorker.Get(v),
	}
	c.Worker = workerFrom(v)
	c.Worker.Boot = c.Boot
	c.Worker.Namespaces, c.Worker.NamespaceCheck = config.WorkerNamespaces.Get(v), config.WorkerNamespaceCheckInterval.Get(v)
	return c, v
}

func loadWorker(lookup env) (workerConfig, *config.Values) {
	v := config.Load(lookup, config.Worker)
	c := workerFrom(v)
	c.Boot = boot.Common(v, &config.WorkerPprofAddr)
	c.HealthAddr = config.WorkerHealthAddr.Get(v)
	c.Namespaces, c.NamespaceCheck = config.WorkerNamespaces.Get(v), config.WorkerNamespaceCheckInterval.Get(v)
	c.Messaging = workers.MessagingConfig{SMTPURL: config.SMTPURL.Get(v), SMTPHost: config.SMTPHost.Get(v),
		SMTPPort: config.SMTPPort.Get(v), SMTPUsername: config.SMTPUsername.Get(v), SMTPPassword: config.SMTPPassword.Get(v),
		SMTPTLS: config.SMTPTLS.Get(v), MailFrom: config.MailFrom.Get(v), NATSURL: strings.Join(config.NATSURL.Get(v), ","),
		EventsReplicas: config.EventsReplicas.Get(v), EventsMaxAge: config.EventsMaxAge.Get(v),
		EventsDuplicateWindow: config.EventsDuplicateWindow.Get(v), Analytics: config.EventsAnalytics.Get(v),
		TLSMinVersion: config.TLSMinVersion.Get(v)}
	return c, v
}

// workerFrom reads what a worker and the gateway's embedded worker share.
func workerFrom(v *config.Values) workerConfig {
	return workerConfig{
		Pool: workers.Config{Region: config.Region.Get(v), MaxConcurrentActivities: config.WorkerMaxActivities.Get(v),
			MaxConcurrentLocalActivities: config.WorkerMaxLocalActivities.Get(v),
			MaxConcurrentWorkflowTasks:   config.WorkerMaxWorkflowTasks.Get(v), Bulkhead: shares(v),
			Webhooks: workers.Webhooks{Policy: webhookPolicy(v), DisableAfter: config.WebhooksDisableAfter.Get(v),
				AllowPrivate: config.WebhooksAllowPrivate.Get(v)}},
		Payment: paymentConfig{
			Providers: config.PaymentProviders.Get(v), StripeKey: config.StripeAPIKey.Get(v),
			Timeout: config.PaymentProviderTimeout.Get(v), Breaker: paymentBreaker(v), FailoverQuiet: config.PaymentFailoverQuiet.Get(v),
		},
		Health:      boot.Health(v),
		MailLatency: config.MailSimulatedLatency.Get(v),
		CarrierURL:  config.CarrierURL.Get(v),
	}
}

// webhookPolicy is the outbound webhooks' retry policy, which the worker's
// dispatchers and the gateway's redeliveries and replays pass on.
func webhookPolicy(v *config.Values) hooks.Policy {
	return hooks.Policy{RetryFor: config.WebhooksRetryFor.Get(v), RetryInitial: config.WebhooksRetryInitial.Get(v),
		RetryMax: config.WebhooksRetryMax.Get(v), Timeout: config.WebhooksTimeout.Get(v), Idle: config.WebhooksIdle.Get(v)}
}

func shares(v *config.Values) bulkhead.Shares {
	return bulkhead.Shares{CriticalPct: config.BulkheadCriticalPct.Get(v), NonCriticalPct: config.BulkheadNonCriticalPct.Get(v),
		AdminPct: config.BulkheadAdminPct.Get(v)}
}

func paymentBreaker(v *config.Values) payment.BreakerSettings {
	// #nosec G115 -- both counts are declared 1 to MaxUint32 (internal/config).
	return payment.BreakerSettings{Window: config.PaymentBreakerWindow.Get(v), FailureRatio: config.PaymentBreakerFailureRatio.Get(v),
		MinRequests: uint32(config.PaymentBreakerMinRequests.Get(v)), OpenTimeout: config.PaymentBreakerOpenTimeout.Get(v),
		HalfOpenSuccesses: uint32(config.PaymentBreakerHalfOpenSuccesses.Get(v))}
}

// loadMigrate reads `orderflow migrate`: the database, and the PII keys to
// seal what is stored in the clear.
func loadMigrate(lookup env) (boot.Config, *config.Values) {
	v := config.Load(lookup, config.Migrate)
	return boot.Config{DatabaseURL: config.DatabaseURL.Get(v), PII: boot.PII(v), TLSMinVersion: config.TLSMinVersion.Get(v)}, v
}

func loadReplay(lookup env) (pii.Config, *config.Values) {
	v := config.Load(lookup, config.Replay)
	return boot.PII(v), v
}

// loadToken reads what minting a development token needs; the minter
// defaults the issuer and audience.
func loadToken(lookup env) (auth.Config, *config.Values) {
	v := config.Load(lookup, config.Token)
	return auth.Config{HS256Secret: config.AuthHS256Secret.Get(v), Issuer: config.AuthIssuer.Get(v), Audience: config.AuthAudience.Get(v)}, v
}

// failoverConfig is `orderflow failover` and `orderflow redrive`, run in
// the region that survives with the environment of its standby set for the
// lost region (docs/regions.md): DatabaseURL is the lost region's database
// (the re-drive reads its acceptance records), the Temporal cluster is the
// local one, and the failover's own settings name the databases it changes.
type failoverConfig struct {
	Boot          boot.Config
	Regions       []string
	StandbyDSN    string
	PrimaryDSN    string
	WatchURL      string
	WatchInterval time.Duration
	RedriveWindow time.Duration
}

func loadFailover(lookup env) (failoverConfig, *config.Values) {
	v := config.Load(lookup, config.Failover)
	return failoverConfig{
		Boot: boot.Config{LogFormat: config.LogFormat.Get(v), LogLevel: config.LogLevel.Get(v), DatabaseURL: config.DatabaseURL.Get(v),
			Temporal: boot.Temporal(v), PII: boot.PII(v), TLSMinVersion: config.TLSMinVersion.Get(v)},
		Regions:    config.Regions.Get(v),
		StandbyDSN: config.FailoverStandbyDatabaseURL.Get(v), PrimaryDSN: config.FailoverPrimaryDatabaseURL.Get(v),
		WatchURL: config.FailoverWatchURL.Get(v), WatchInterval: config.FailoverWatchInterval.Get(v),
		RedriveWindow: config.FailoverRedriveWindow.Get(v),
	}, v
}

// loaders build each component's configuration, for `orderflow config` and
// the tests.
var loaders = map[config.Component]func(env) *config.Values{
	config.API:      func(e env) *config.Values { _, v := loadGateway(e); return v },
	config.Worker:   func(e env) *config.Values { _, v := loadWorker(e); return v },
	config.Migrate:  func(e env) *config.Values { _, v := loadMigrate(e); return v },
	config.Replay:   func(e env) *config.Values { _, v := loadReplay(e); return v },
	config.Token:    func(e env) *config.Values { _, v := loadToken(e); return v },
	config.Failover: func(e env) *config.Values { _, v := loadFailover(e); return v },
}

const configUsage = `usage: orderflow config [api|worker|migrate|replay|token|failover]
       orderflow config --markdown

Prints the effective configuration of a component (every component without
one): each setting's value, secrets masked, and whether it comes from the
environment or is the default. Exits non-zero when a value is bad.
--markdown prints the configuration reference (docs/configuration.md).
`

// runConfig is `orderflow config`.
func runConfig(out io.Writer, lookup env, args []string) error {
	switch {
	case len(args) == 1 && args[0] == "--markdown":
		return config.Markdown(out)
	case len(args) == 1 && (args[0] == "-h" || args[0] == "--help"):
		_, err := fmt.Fprint(out, configUsage)
		return err
	case len(args) > 1:
		return fmt.Errorf("config: too many arguments\n%s", configUsage)
	}
	which := config.All
	if len(args) == 1 {
		c, err := config.ParseComponent(args[0])
		if err != nil {
			return fmt.Errorf("config: %w\n%s", err, configUsage)
		}
		which = c
	}
	v := config.Load(lookup, which)
	if err := config.Print(out, v); err != nil {
		return err
	}
	return v.Err()
}

// resilience is the gateway's admission, backpressure and breaker settings;
// the breakers take the design's numbers (breaker.Design) but the Temporal
// frontend's open period (TEMPORAL_BREAKER_OPEN_TIMEOUT).
func resilience(v *config.Values) api.Resilience {
	return api.Resilience{Admission: config.AdmissionEnabled.Get(v), TemporalOpenTimeout: config.TemporalBreakerOpenTimeout.Get(v),
		Limit: admission.Config{InitialLimit: config.AdmissionInitialLimit.Get(v), MaxLimit: config.AdmissionMaxLimit.Get(v),
			QueueWait: config.AdmissionQueueWait.Get(v)},
		Namespace: config.TemporalNamespace.Get(v), BacklogInterval: config.AdmissionBacklogInterval.Get(v),
		BacklogMaxAge: config.AdmissionBacklogMaxAge.Get(v), BacklogMaxCount: int64(config.AdmissionBacklogMaxCount.Get(v))}
}
