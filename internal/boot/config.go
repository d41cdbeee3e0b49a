package boot

import (
	"time"

	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/config"
	"github.com/orderflow/orderflow/internal/health"
	"github.com/orderflow/orderflow/internal/pii"
	"github.com/orderflow/orderflow/internal/temporal"
	"github.com/orderflow/orderflow/internal/tlsconf"
)

// Config is what every long-running process's start-up needs: its log, its
// clients and its profiler.
type Config struct {
	LogFormat string // "console" or "json"
	LogLevel  string
	// DatabaseURL is the PostgreSQL database.
	DatabaseURL string
	// RedisURL is the cache's Redis; CacheTimeout bounds each call to it.
	RedisURL     string
	CacheTimeout time.Duration
	// RedisSentinels and RedisMasterName, when set, reach Redis through its
	// Sentinels (go-redis's failover client).
	RedisSentinels  []string
	RedisMasterName string
	// Temporal is the cluster the process talks to.
	Temporal temporal.Config
	// PII names the keys that seal personal data.
	PII pii.Config
	// PprofAddr serves net/http/pprof when set.
	PprofAddr string
	// TLSMinVersion is the oldest TLS version the PostgreSQL and Redis
	// clients accept when their URLs turn TLS on (TLS_MIN_VERSION; the
	// Temporal client's is in Temporal.TLS).
	TLSMinVersion uint16
}

// Common builds the start-up's Config from the declared settings; pprof is
// the component's own profiler setting (API_PPROF_ADDR, WORKER_PPROF_ADDR),
// nil for none.
func Common(v *config.Values, pprof *config.Var[string]) Config {
	c := Config{
		LogFormat: config.LogFormat.Get(v), LogLevel: config.LogLevel.Get(v),
		DatabaseURL: config.DatabaseURL.Get(v), RedisURL: config.RedisURL.Get(v), CacheTimeout: config.CacheCallTimeout.Get(v),
		RedisSentinels: config.RedisSentinels.Get(v), RedisMasterName: config.RedisMasterName.Get(v),
		Temporal: Temporal(v), PII: PII(v), TLSMinVersion: config.TLSMinVersion.Get(v),
	}
	if pprof != nil {
		c.PprofAddr = pprof.Get(v)
	}
	return c
}

// Temporal is the cluster the declared settings name.
func Temporal(v *config.Values) temporal.Config {
	return temporal.Config{Address: config.TemporalAddress.Get(v), Namespace: config.TemporalNamespace.Get(v),
		TLS: tlsconf.ClientConfig{CAFile: config.TemporalTLSCAFile.Get(v), CertFile: config.TemporalTLSCertFile.Get(v),
			KeyFile: config.TemporalTLSKeyFile.Get(v), ServerName: config.TemporalTLSServerName.Get(v),
			MinVersion: config.TLSMinVersion.Get(v)}}
}

// PII is the key settings.
func PII(v *config.Values) pii.Config {
	return pii.Config{Keys: config.PIIKeys.Get(v), KeysFile: config.PIIKeysFile.Get(v), ActiveKey: config.PIIActiveKey.Get(v)}
}

// Auth is the token settings. With the development secret and no JWKS the
// issuer and audience default to auth's development ones.
func Auth(v *config.Values) auth.Config {
	a := auth.Config{
		JWKSURL: config.AuthJWKSURL.Get(v), Issuer: config.AuthIssuer.Get(v), Audience: config.AuthAudience.Get(v),
		HS256Secret: config.AuthHS256Secret.Get(v), ClockSkew: config.AuthClockSkew.Get(v),
		JWKSRefresh: config.AuthJWKSRefresh.Get(v), JWKSMinRefresh: config.AuthJWKSMinRefresh.Get(v),
		SessionTTL: config.SessionTTL.Get(v),
	}
	if a.JWKSURL == "" {
		if a.Issuer == "" {
			a.Issuer = auth.DevIssuer
		}
		if a.Audience == "" {
			a.Audience = auth.DevAudience
		}
	}
	return a
}

// Health is the thresholds of the checks every process runs.
func Health(v *config.Values) health.Config {
	return health.Config{Budget: config.HealthBudget.Get(v), DiskPath: config.HealthDiskPath.Get(v),
		MinFreeDiskMB: config.HealthMinFreeDiskMB.Get(v), MaxHeapMB: config.HealthMaxHeapMB.Get(v)}
}
