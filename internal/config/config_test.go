package config

import (
	"bytes"
	"crypto/tls"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/cache"
	"github.com/orderflow/orderflow/internal/health"
	"github.com/orderflow/orderflow/internal/pii"
)

// envOf is a lookup over a fixed environment.
func envOf(kv map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
}

func TestParsersAcceptGoodValuesAndRefuseBadOnes(t *testing.T) {
	cases := []struct {
		name    string
		parse   func(string) (any, error)
		raw     string
		want    any
		wantErr string
	}{
		{"integer", wrap(integer(1, maxInt)), "200", 200, ""},
		{"integer with a letter O", wrap(integer(1, maxInt)), "2OO", nil, "not an integer"},
		{"integer below its least", wrap(integer(1, maxInt)), "0", nil, "must be at least 1"},
		{"integer above its most", wrap(integer(1, 100)), "101", nil, "must be between 1 and 100"},
		{"number", wrap(number(0.01, 1)), "0.5", 0.5, ""},
		{"number not a number", wrap(number(0.01, 1)), "half", nil, "not a number"},
		{"number NaN", wrap(number(0.01, 1)), "NaN", nil, "not a number"},
		{"number out of range", wrap(number(0.01, 1)), "1.5", nil, "must be between 0.01 and 1"},
		{"boolean", wrap(boolean), "true", true, ""},
		{"boolean 0", wrap(boolean), "0", false, ""},
		{"boolean yes", wrap(boolean), "yes", nil, "not a boolean"},
		{"duration", wrap(duration(time.Millisecond)), "1m30s", 90 * time.Second, ""},
		{"duration without unit", wrap(duration(time.Millisecond)), "30", nil, "not a duration"},
		{"duration too short", wrap(duration(time.Second)), "10ms", nil, "must be at least 1s"},
		{"listen address", wrap(address(true)), ":8080", ":8080", ""},
		{"address without a host", wrap(address(false)), ":7233", nil, "names no host"},
		{"address with a word for port", wrap(address(false)), "temporal:http", nil, "port"},
		{"address without port", wrap(address(false)), "temporal", nil, "not a host:port address"},
		{"URL", wrap(urlOf("postgres")), "postgres://u:p@db:5432/x", "postgres://u:p@db:5432/x", ""},
		{"URL of another scheme", wrap(urlOf("postgres")), "mysql://u:p@db/x", nil, "the scheme must be postgres"},
		{"URL without host", wrap(urlOf("redis")), "redis:///0", nil, "names no host"},
		{"PostgreSQL URL checking the server's name", wrap(postgresURL), "postgres://db/x?sslmode=verify-full", "postgres://db/x?sslmode=verify-full", ""},
		{"PostgreSQL URL without TLS", wrap(postgresURL), "postgres://db/x?sslmode=disable", "postgres://db/x?sslmode=disable", ""},
		{"PostgreSQL URL without sslmode", wrap(postgresURL), "postgres://db/x", nil, "names no sslmode"},
		{"PostgreSQL URL with TLS, unchecked", wrap(postgresURL), "postgres://db/x?sslmode=require", nil, "sslmode=require does not check the server's name"},
		{"PostgreSQL URL with the CA only", wrap(postgresURL), "postgresql://db/x?sslmode=verify-ca", nil, "sslmode=verify-ca does not check"},
		{"PostgreSQL URL of another scheme", wrap(postgresURL), "mysql://db/x?sslmode=disable", nil, "the scheme must be postgres"},
		{"TLS 1.3", wrap(tlsVersion), "1.3", uint16(tls.VersionTLS13), ""},
		{"TLS 1.2", wrap(tlsVersion), "1.2", uint16(tls.VersionTLS12), ""},
		{"TLS 1.1", wrap(tlsVersion), "1.1", nil, "must be 1.2 or 1.3"},
		{"one of", wrap(oneOf("console", "json")), "json", "json", ""},
		{"one of, misspelt", wrap(oneOf("console", "json")), "jsno", nil, "must be one of console, json"},
		{"origins", wrap(list("origins", origin)), " http://a:8233, ,https://b ", []string{"http://a:8233", "https://b"}, ""},
		{"origin with a path", wrap(list("origins", origin)), "http://a:8233/ui", nil, "no path"},
		{"prefixes", wrap(prefixes), "10.0.0.0/8, 192.0.2.7 ,2001:db8::/32",
			[]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("2001:db8::/32")}, ""},
		{"prefix of 33 bits", wrap(prefixes), "10.0.0.0/8,10.0.0.0/33", nil, `"10.0.0.0/33" is not a CIDR`},
		{"providers", wrap(providers), "a=paysim:http://x:1, stripe:", []Provider{{"a", "paysim", "http://x:1"}, {"stripe-2", "stripe", ""}}, ""},
		{"provider of a mistyped kind", wrap(providers), "a=paysym:http://x", nil, "the kind must be paysim or stripe"},
		{"provider without a kind", wrap(providers), "a=http://x:8090", nil, "the kind must be paysim or stripe"},
		{"provider listed twice", wrap(providers), "a=paysim:http://x,a=paysim:http://y", nil, "listed twice"},
		{"paysim without URL", wrap(providers), "a=paysim:", nil, "needs a URL"},
		{"provider URL not http", wrap(providers), "a=paysim:ftp://x", nil, "the scheme must be http or https"},
		{"no provider", wrap(providers), " , ", nil, "lists no provider"},
		{"name", wrap(text(name)), "eu-west-1", "eu-west-1", ""},
		{"name with a space", wrap(text(name)), "eu west", nil, "letters, digits"},
		{"secret long enough", wrap(text(minLen(32))), strings.Repeat("s", 32), strings.Repeat("s", 32), ""},
		{"secret too short", wrap(text(minLen(32))), "short", nil, "is 5 bytes, want at least 32"},
		{"PII keys", wrap(text(piiKeys)), "k1:" + goodKey + ",k2:" + goodKey, "k1:" + goodKey + ",k2:" + goodKey, ""},
		{"PII key not base64", wrap(text(piiKeys)), "k1:not base64!", nil, `key "k1": not base64`},
		{"PII key too short", wrap(text(piiKeys)), "k1:c2hvcnQ=", nil, `key "k1" is 5 bytes, want 32`},
		{"PII key without id", wrap(text(piiKeys)), pii.NewKey(), nil, "without an id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.parse(tc.raw)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

var goodKey = pii.NewKey()

func wrap[T any](p parser[T]) func(string) (any, error) {
	return func(raw string) (any, error) { return p.parse(raw) }
}

func TestEveryDeclarationIsCompleteAndItsDefaultParses(t *testing.T) {
	seen := map[string]bool{}
	sections := map[string]bool{}
	for _, s := range Sections {
		sections[s] = true
	}
	for _, s := range Settings() {
		assert.False(t, seen[s.Name], "%s is declared twice", s.Name)
		seen[s.Name] = true
		assert.NotEmpty(t, s.Doc, s.Name)
		assert.NotZero(t, s.Used, "%s: no component reads it", s.Name)
		assert.True(t, sections[s.Section], "%s: section %q is not in Sections", s.Name, s.Section)
		if s.Default != "" {
			_, err := s.parse(s.Default)
			assert.NoError(t, err, "%s: default %q", s.Name, s.Default)
		}
	}
	assert.Greater(t, len(seen), 60)
}

// The fallbacks plumbing packages apply to a zero field are the declared
// defaults.
func TestDeclaredDefaultsAgreeWithThePlumbingsOwn(t *testing.T) {
	assert.Equal(t, cache.CatalogTTL, CacheCatalogTTL.Default())
	assert.Equal(t, cache.InventoryTTL, CacheInventoryTTL.Default())
	assert.Equal(t, cache.OrderTTL, CacheOrderTTL.Default())
	assert.Equal(t, cache.SessionTTL, SessionTTL.Default())
	assert.Equal(t, cache.Timeout, CacheCallTimeout.Default())
	assert.Equal(t, health.DefaultBudget, HealthBudget.Default())
	assert.Equal(t, health.DefaultDiskPath, HealthDiskPath.Default())
	assert.Equal(t, health.DefaultMinFreeDiskMB, HealthMinFreeDiskMB.Default())
	assert.Equal(t, health.DefaultMaxHeapMB, HealthMaxHeapMB.Default())
	_, err := AuthHS256Secret.Parse(strings.Repeat("x", auth.MinSecretBytes-1))
	assert.Error(t, err, "AUTH_HS256_SECRET's check follows auth.MinSecretBytes")
}

func TestNothingSetGivesTheDefaultsAndABlankValueCountsAsUnset(t *testing.T) {
	v := Load(envOf(map[string]string{"WORKER_MAX_ACTIVITIES": "  ", "LOG_LEVEL": " debug "}), All)
	require.NoError(t, v.Err())
	assert.Equal(t, 200, WorkerMaxActivities.Get(v))
	assert.Equal(t, "debug", LogLevel.Get(v))
	assert.Equal(t, []Provider{{"paysim-a", "paysim", "http://127.0.0.1:8090"}}, PaymentProviders.Get(v))
	assert.Nil(t, TrustedProxies.Get(v))
	for _, val := range v.All() {
		if val.Setting.Name == "LOG_LEVEL" {
			assert.Equal(t, "env", val.Source())
		} else {
			assert.Equal(t, "default", val.Source(), val.Setting.Name)
		}
	}
}

// A bad value of each type stops start-up: Err names every one of them
// together, with the value unless it is secret, and Get never returns the
// default in its place.
func TestEveryBadValueIsReportedTogetherNamingItsSetting(t *testing.T) {
	bad := map[string]string{
		"WORKER_MAX_ACTIVITIES":         "2OO",
		"PAYMENT_BREAKER_FAILURE_RATIO": "lots",
		"API_EMBED_WORKER":              "yes please",
		"IDEMPOTENCY_TTL":               "24",
		"TEMPORAL_ADDRESS":              "temporal",
		"DATABASE_URL":                  "mysql://root:pg-s3cret@db/orderflow",
		"LOG_FORMAT":                    "xml",
		"CODEC_CORS_ORIGINS":            "http://ui/path",
		"TRUSTED_PROXIES":               "10.0.0.0/33",
		"PAYMENT_PROVIDERS":             "a=paysym:http://x",
		"AUTH_HS256_SECRET":             "hs256-s3cret",
	}
	v := Load(envOf(bad), All)
	assert.Zero(t, WorkerMaxActivities.Get(v), "a bad value never becomes the default")
	err := v.Err()
	require.Error(t, err)
	msg := err.Error()
	for name, value := range bad {
		s, _ := Lookup(name)
		assert.Contains(t, msg, name)
		if s.Secret == Public {
			assert.Contains(t, msg, value, "a public value is quoted")
		}
	}
	for _, secret := range []string{"pg-s3cret", "hs256-s3cret"} {
		assert.NotContains(t, msg, secret)
	}
	assert.Contains(t, msg, `WORKER_MAX_ACTIVITIES="2OO": not an integer`)
	assert.Contains(t, msg, "AUTH_HS256_SECRET (value not shown): is 12 bytes, want at least 32")
	assert.Len(t, err.(*Error).Problems, len(bad))
}

func TestRulesTieSettingsTogether(t *testing.T) {
	cases := map[string]struct {
		env  map[string]string
		want string
	}{
		"certificate without key": {map[string]string{"API_TLS_CERT_FILE": "c.pem"}, "API_TLS_CERT_FILE and API_TLS_KEY_FILE must be set together"},
		"Temporal key without certificate": {map[string]string{"TEMPORAL_TLS_KEY_FILE": "k.pem"},
			"TEMPORAL_TLS_CERT_FILE and TEMPORAL_TLS_KEY_FILE must be set together"},
		"Sentinels without a master name": {map[string]string{"REDIS_SENTINELS": "s1:26379"}, "REDIS_SENTINELS and REDIS_MASTER_NAME must be set together"},
		"retry initial over max":          {map[string]string{"PAYMENT_RETRY_INITIAL": "5m"}, "PAYMENT_RETRY_INITIAL must not exceed PAYMENT_RETRY_MAX"},
		"shares over 100 percent":         {map[string]string{"BULKHEAD_ADMIN_PCT": "20"}, "add up to more than 100"},
		"JWKS without issuer":             {map[string]string{"AUTH_JWKS_URL": "https://idp/jwks"}, "AUTH_JWKS_URL needs AUTH_ISSUER and AUTH_AUDIENCE"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			require.ErrorContains(t, Load(envOf(tc.env), API).Err(), tc.want)
		})
	}
	require.NoError(t, Load(envOf(map[string]string{"API_TLS_CERT_FILE": "c.pem", "API_TLS_KEY_FILE": "k.pem"}), API).Err())
}

func TestPrintMasksSecretsAndGivesEachSource(t *testing.T) {
	env := map[string]string{
		"DATABASE_URL":          "postgres://orderflow:pg-s3cret@db:5432/orderflow?sslmode=verify-full",
		"REDIS_URL":             "redis://:redis-s3cret@cache:6379/0",
		"STRIPE_API_KEY":        "sk_live_s3cret",
		"AUTH_HS256_SECRET":     "hs256-s3cret-of-at-least-thirty-two-bytes",
		"PII_KEYS":              "k1:" + goodKey,
		"WORKER_MAX_ACTIVITIES": "2OO",
	}
	v := Load(envOf(env), All)
	var out bytes.Buffer
	require.NoError(t, Print(&out, v))
	got := out.String()
	for _, secret := range []string{"pg-s3cret", "redis-s3cret", "sk_live_s3cret", "hs256-s3cret", goodKey} {
		assert.NotContains(t, got, secret)
	}
	assert.Contains(t, got, "postgres://orderflow:xxxxx@db:5432/orderflow?sslmode=verify-full")
	assert.Regexp(t, `STRIPE_API_KEY +\(set\) +env`, got)
	assert.Regexp(t, `AUTH_HS256_SECRET +\(set\) +env`, got)
	assert.Regexp(t, `LOG_FORMAT +console +default`, got)
	assert.Regexp(t, `WORKER_MAX_ACTIVITIES +2OO +env, invalid`, got)
	assert.Regexp(t, `PII_ACTIVE_KEY +\(unset\) +default`, got)
	for _, line := range v.FromEnv() {
		for _, secret := range []string{"pg-s3cret", "redis-s3cret", "sk_live_s3cret", "hs256-s3cret", goodKey} {
			assert.NotContains(t, line, secret)
		}
	}
}

func TestLoadChecksOnlyTheComponentsSettings(t *testing.T) {
	env := envOf(map[string]string{"API_ADDR": "nowhere", "WORKER_HEALTH_ADDR": ":8081"})
	require.NoError(t, Load(env, Worker).Err(), "the worker does not read API_ADDR")
	require.ErrorContains(t, Load(env, API).Err(), `API_ADDR="nowhere"`)
	// A setting asked for outside the loaded components is checked then.
	v := Load(env, Worker)
	assert.Empty(t, APIAddr.Get(v))
	require.ErrorContains(t, v.Err(), "API_ADDR")
}

// docs/configuration.md is what the declarations generate.
func TestConfigurationDocsAreGeneratedFromTheDeclarations(t *testing.T) {
	committed, err := os.ReadFile("../../docs/configuration.md")
	require.NoError(t, err)
	var want bytes.Buffer
	require.NoError(t, Markdown(&want))
	if want.String() != string(committed) {
		t.Fatal("docs/configuration.md differs from the declarations in internal/config: run go generate ./internal/config")
	}
	for _, s := range Settings() {
		assert.Contains(t, want.String(), "| `"+s.Name+"` |")
	}
}
