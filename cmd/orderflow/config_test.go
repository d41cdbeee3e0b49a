package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/api"
	"github.com/orderflow/orderflow/internal/config"
	"github.com/orderflow/orderflow/internal/pii"
)

func noEnv(string) (string, bool) { return "", false }

func envOf(kv map[string]string) env {
	return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
}

// What `orderflow config` and docs/configuration.md say a component reads
// is what its configuration is built from: no more, no less.
func TestEachComponentReadsExactlyTheSettingsDeclaredForIt(t *testing.T) {
	for c, load := range loaders {
		t.Run(c.String(), func(t *testing.T) {
			v := load(noEnv)
			require.NoError(t, v.Err())
			read := map[string]bool{}
			for _, s := range v.Read() {
				read[s.Name] = true
				assert.NotZero(t, s.Used&c, "%s reads %s, which is not declared for it", c, s.Name)
			}
			for _, s := range config.Settings() {
				if s.Used&c != 0 {
					assert.True(t, read[s.Name], "%s is declared for %s, which does not read it", s.Name, c)
				}
			}
		})
	}
}

// A bad value stops each command before it starts anything, with a
// message naming the setting; several bad values are named together.
func TestBadValueStopsStartUpNamingTheSetting(t *testing.T) {
	cases := []struct {
		cmd  string
		args []string
		env  map[string]string
		want []string
	}{
		{"worker", nil, map[string]string{"WORKER_MAX_ACTIVITIES": "2OO"}, []string{`WORKER_MAX_ACTIVITIES="2OO": not an integer`}},
		{"worker", nil, map[string]string{"PAYMENT_BREAKER_FAILURE_RATIO": "0", "CACHE_CALL_TIMEOUT": "fast"},
			[]string{"PAYMENT_BREAKER_FAILURE_RATIO", "CACHE_CALL_TIMEOUT"}},
		{"worker", []string{"--region", "eu west"}, nil, []string{"--region: must be letters"}},
		{"api", nil, map[string]string{"PAYMENT_PROVIDERS": "paysim-a=paysym:http://127.0.0.1:8090"},
			[]string{"PAYMENT_PROVIDERS", "the kind must be paysim or stripe"}},
		{"api", nil, map[string]string{"API_EMBED_WORKER": "yes", "RATE_LIMIT_PER_IP": "-1"}, []string{"API_EMBED_WORKER", "RATE_LIMIT_PER_IP"}},
		{"migrate", nil, map[string]string{"DATABASE_URL": "mysql://root:s3cret@db/orderflow"}, []string{"DATABASE_URL (value not shown): the scheme must be postgres"}},
		{"replay", []string{"history.json"}, map[string]string{"PII_KEYS": "k1:s3cret"}, []string{"PII_KEYS (value not shown)", `key "k1"`}},
		{"migrate", nil, map[string]string{"PII_KEYS": "k1:c2hvcnQ="}, []string{"PII_KEYS (value not shown)", "want 32"}},
		{"token", []string{"--sub", "c-1"}, map[string]string{"AUTH_HS256_SECRET": "short-s3cret"}, []string{"AUTH_HS256_SECRET (value not shown): is 12 bytes"}},
	}
	for _, tc := range cases {
		t.Run(tc.cmd+" "+strings.Join(tc.args, " "), func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			err := run(context.Background(), tc.cmd, tc.args)
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.NotContains(t, err.Error(), "s3cret")
		})
	}
}

func TestConfigCommandPrintsEffectiveValuesWithSecretsMasked(t *testing.T) {
	key := pii.NewKey()
	e := envOf(map[string]string{
		"DATABASE_URL":      "postgres://orderflow:pg-s3cret@db:5432/orderflow?sslmode=verify-full",
		"STRIPE_API_KEY":    "sk_live_s3cret",
		"AUTH_HS256_SECRET": "hs256-s3cret-of-at-least-thirty-two-bytes",
		"PII_KEYS":          "k1:" + key,
		"API_ADDR":          ":9090",
	})
	var out bytes.Buffer
	require.NoError(t, runConfig(&out, e, []string{"api"}))
	got := out.String()
	for _, secret := range []string{"pg-s3cret", "sk_live_s3cret", "hs256-s3cret", key} {
		assert.NotContains(t, got, secret)
	}
	assert.Regexp(t, `DATABASE_URL +postgres://orderflow:xxxxx@db:5432/orderflow\?sslmode=verify-full +env`, got)
	assert.Regexp(t, `AUTH_HS256_SECRET +\(set\) +env`, got)
	assert.Regexp(t, `API_ADDR +:9090 +env`, got)
	assert.Regexp(t, `RATE_LIMIT_PER_USER +100 +default`, got)
	assert.NotContains(t, got, "WORKER_HEALTH_ADDR", "the gateway does not read it")

	out.Reset()
	err := runConfig(&out, envOf(map[string]string{"WORKER_MAX_ACTIVITIES": "2OO"}), []string{"worker"})
	require.ErrorContains(t, err, `WORKER_MAX_ACTIVITIES="2OO"`)
	assert.Regexp(t, `WORKER_MAX_ACTIVITIES +2OO +env, invalid`, out.String())

	out.Reset()
	require.NoError(t, runConfig(&out, noEnv, nil))
	assert.Contains(t, out.String(), "WORKER_HEALTH_ADDR", "without a component: every setting")
	assert.Contains(t, out.String(), "API_ADDR")

	require.ErrorContains(t, runConfig(&out, noEnv, []string{"gateway"}), `unknown component "gateway"`)

	out.Reset()
	require.NoError(t, runConfig(&out, noEnv, []string{"--markdown"}))
	var md bytes.Buffer
	require.NoError(t, config.Markdown(&md))
	assert.Equal(t, md.String(), out.String())
}

// The fallbacks api applies to a zero Config field are the declared
// defaults.
func TestDeclaredDefaultsAgreeWithTheGatewaysFallbacks(t *testing.T) {
	assert.EqualValues(t, api.DefaultBodyLimit, config.APIBodyLimitBytes.Default())
	assert.Equal(t, api.DefaultIdempotencyTTL, config.IdempotencyTTL.Default())
	assert.Equal(t, api.DefaultRateLimitPeriod, config.RateLimitPeriod.Default())
	assert.Equal(t, api.DefaultDeepBudget, config.HealthDeepBudget.Default())
	assert.Equal(t, api.DefaultSyntheticSKU, config.HealthSyntheticSKU.Default())
	assert.Equal(t, api.DefaultSyntheticCustomer, config.HealthSyntheticCustomer.Default())
}

func TestBreakerDefaultsAreTheDesignsNumbers(t *testing.T) {
	assert.Equal(t, payment.BreakerSettings{Window: 10 * time.Second, FailureRatio: 0.5, MinRequests: 10,
		OpenTimeout: 30 * time.Second, HalfOpenSuccesses: 3}, paymentBreaker(config.Load(noEnv, config.Worker)))
}

// The gateway's Temporal breaker is the one departure from the design's
// 30 s open period (docs/resilience.md), and the setting's default is the
// gateway's own.
func TestTemporalBreakerOpenPeriodIsItsSettingDefaultingToTheGatewaysFiveSeconds(t *testing.T) {
	assert.Equal(t, api.DefaultTemporalOpenTimeout, config.TemporalBreakerOpenTimeout.Default())
	assert.Equal(t, 5*time.Second, resilience(config.Load(noEnv, config.API)).TemporalOpenTimeout)
	v := config.Load(envOf(map[string]string{"TEMPORAL_BREAKER_OPEN_TIMEOUT": "12s"}), config.API)
	require.NoError(t, v.Err())
	assert.Equal(t, 12*time.Second, resilience(v).TemporalOpenTimeout)
}

func TestGatewayConfigIsBuiltFromTheEnvironment(t *testing.T) {
	cfg, v := loadGateway(envOf(map[string]string{
		"ORDERFLOW_REGION": "eu", "API_EMBED_WORKER": "true", "TRUSTED_PROXIES": "10.0.0.0/8",
		"GATEWAY_MAX_IN_FLIGHT": "50", "WORKER_MAX_ACTIVITIES": "20", "PAYMENT_PROVIDERS": "a=paysim:http://p:1,b=stripe:",
		"WORKER_NAMESPACES": "orders-eu,orders-us",
	}))
	require.NoError(t, v.Err())
	assert.Equal(t, "eu", cfg.API.Region)
	assert.True(t, cfg.Embed)
	assert.True(t, cfg.API.EagerStart)
	assert.Equal(t, "10.0.0.0/8", cfg.API.TrustedProxies[0].String())
	assert.Equal(t, 50, cfg.API.Bulkhead.MaxInFlight)
	assert.Equal(t, 60, cfg.API.Bulkhead.CriticalPct)
	assert.Equal(t, 20, cfg.Worker.Pool.MaxConcurrentActivities)
	assert.Equal(t, "eu", cfg.Worker.Pool.Region)
	assert.Len(t, cfg.Worker.Payment.Providers, 2)
	assert.Equal(t, cfg.Boot, cfg.Worker.Boot)
	assert.Equal(t, []string{"orders-eu", "orders-us"}, cfg.Worker.Namespaces, "the embedded worker follows WORKER_NAMESPACES")
}
