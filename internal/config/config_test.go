package config

import (
	"strings"
	"testing"
)

// The start-up line logs the settings through String: passwords in URLs and
// the Stripe key must not reach the log.
func TestSettingsAsLoggedHoldNoSecret(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://orderflow:pg-s3cret@db:5432/orderflow?sslmode=disable")
	t.Setenv("REDIS_URL", "redis://:redis-s3cret@cache:6379/0")
	t.Setenv("STRIPE_API_KEY", "sk_live_s3cret")
	t.Setenv("AUTH_HS256_SECRET", "hs256-s3cret-of-at-least-thirty-two-bytes")
	for name, s := range map[string]string{"common": LoadCommon().String(), "paysim": LoadPaysim().String(), "auth": LoadAuth().String()} {
		for _, secret := range []string{"pg-s3cret", "redis-s3cret", "sk_live_s3cret", "hs256-s3cret"} {
			if strings.Contains(s, secret) {
				t.Errorf("%s settings show %q: %s", name, secret, s)
			}
		}
		if name != "auth" && !strings.Contains(s, "db:5432") {
			t.Errorf("%s settings lost the database address: %s", name, s)
		}
	}
}
