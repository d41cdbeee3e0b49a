// Package config reads orderflow's settings from the environment. Each
// subcommand has one struct; every field has a default so a bare machine runs
// the local stack without any variable set.
package config

import (
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Common holds what every process needs to reach the platform's dependencies.
type Common struct {
	DatabaseURL       string
	RedisURL          string
	TemporalAddress   string
	TemporalNamespace string
	Region            string
	LogFormat         string // "console" or "json"
	LogLevel          string
	// Resilience holds the knobs of the resilience patterns.
	Resilience Resilience
	// PII names the keys that encrypt personal data at rest.
	PII PII
	// TemporalTLS configures TLS or mutual TLS to Temporal (TEMPORAL_TLS_*).
	TemporalTLS TemporalTLS
}

// API configures the HTTP gateway.
type API struct {
	Common
	// EmbeddedWorker sizes the worker EmbedWorker starts.
	EmbeddedWorker Worker
	// EmbedWorker runs an order worker inside the gateway process, which lets
	// the gateway start sagas eagerly: the first workflow task comes back in
	// the start response and skips the server's task matching.
	EmbedWorker    bool
	Addr           string
	BodyLimitBytes int64
	IdempotencyTTL time.Duration
	PublicURL      string
	// Auth configures the bearer tokens every /v1 route requires.
	Auth Auth
	// TLS, when enabled, makes the gateway serve HTTPS (API_TLS_*).
	TLS ServerTLS
	// CodecOrigins are the Temporal Web UI origins that may call the
	// gateway's codec server from a browser (CODEC_CORS_ORIGINS, comma
	// separated; default the dev server's UI on :8233).
	CodecOrigins []string
	// TrustedProxies are the ranges whose forwarded headers are believed.
	TrustedProxies Proxies
}

// Worker configures a worker process.
type Worker struct {
	Common
	MaxConcurrentActivities      int
	MaxConcurrentLocalActivities int
	MaxConcurrentWorkflowTasks   int
	// MailLatency is the development mailer's simulated round trip
	// (MAIL_SIMULATED_LATENCY).
	MailLatency time.Duration
	// Messaging: the mail server and the event stream.
	Messaging Messaging
}

// LoadCommon reads the shared settings.
func LoadCommon() Common {
	return Common{
		DatabaseURL:       Env("DATABASE_URL", "postgres://orderflow:orderflow@127.0.0.1:5432/orderflow?sslmode=disable"),
		RedisURL:          Env("REDIS_URL", "redis://127.0.0.1:6379/0"),
		TemporalAddress:   Env("TEMPORAL_ADDRESS", "127.0.0.1:7233"),
		TemporalNamespace: Env("TEMPORAL_NAMESPACE", "default"),
		Region:            Env("ORDERFLOW_REGION", "local"),
		LogFormat:         Env("LOG_FORMAT", "console"),
		LogLevel:          Env("LOG_LEVEL", "info"),
		Resilience:        LoadResilience(),
		PII:               LoadPII(),
		TemporalTLS:       LoadTemporalTLS(),
	}
}

// LoadAPI reads the gateway's settings.
func LoadAPI() API {
	c := API{
		Common:         LoadCommon(),
		EmbeddedWorker: LoadWorker(),
		EmbedWorker:    Env("API_EMBED_WORKER", "false") == "true",
		Addr:           Env("API_ADDR", ":8080"),
		BodyLimitBytes: int64(EnvInt("API_BODY_LIMIT_BYTES", 64<<10)),
		IdempotencyTTL: EnvDuration("IDEMPOTENCY_TTL", 24*time.Hour),
		Auth:           LoadAuth(),
		TLS:            LoadServerTLS(),
		TrustedProxies: ParseProxies(Env("TRUSTED_PROXIES", "")),
	}
	c.PublicURL = Env("API_PUBLIC_URL", "")
	for _, o := range strings.Split(Env("CODEC_CORS_ORIGINS", "http://127.0.0.1:8233,http://localhost:8233"), ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.CodecOrigins = append(c.CodecOrigins, o)
		}
	}
	return c
}

// LoadWorker reads a worker's settings.
func LoadWorker() Worker {
	return Worker{
		Common:                       LoadCommon(),
		MaxConcurrentActivities:      EnvInt("WORKER_MAX_ACTIVITIES", 200),
		MaxConcurrentLocalActivities: EnvInt("WORKER_MAX_LOCAL_ACTIVITIES", 200),
		MaxConcurrentWorkflowTasks:   EnvInt("WORKER_MAX_WORKFLOW_TASKS", 100),
		MailLatency:                  EnvDuration("MAIL_SIMULATED_LATENCY", 0),
		Messaging:                    LoadMessaging(),
	}
}

// Env returns the variable's value, or def when it is unset or empty.
func Env(key, def string) string {
	if v := strings.TrimSpace(os.Getenv(key)); v != "" {
		return v
	}
	return def
}

// EnvInt returns the variable as an int, or def when it is unset or not a number.
func EnvInt(key string, def int) int {
	if n, err := strconv.Atoi(Env(key, "")); err == nil {
		return n
	}
	return def
}

// EnvFloat returns the variable as a float64, or def when it is unset or not a number.
func EnvFloat(key string, def float64) float64 {
	if f, err := strconv.ParseFloat(Env(key, ""), 64); err == nil {
		return f
	}
	return def
}

// EnvDuration returns the variable as a duration ("30s"), or def when unset or invalid.
func EnvDuration(key string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(Env(key, "")); err == nil {
		return d
	}
	return def
}

// Mask hides the password of a URL so it can be logged.
func Mask(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// String renders the settings for the start-up log line, secrets masked.
func (c Common) String() string {
	return fmt.Sprintf("database=%s redis=%s temporal=%s namespace=%s region=%s temporal_tls=%t",
		Mask(c.DatabaseURL), Mask(c.RedisURL), c.TemporalAddress, c.TemporalNamespace, c.Region, c.TemporalTLS.Enabled())
}
