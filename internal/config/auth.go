package config

import (
	"time"

	"github.com/orderflow/orderflow/internal/auth"
)

// Auth is the gateway's token settings; the type is internal/auth's own
// Config, filled here from the environment (AUTH_JWKS_URL, AUTH_ISSUER,
// AUTH_AUDIENCE, AUTH_HS256_SECRET, AUTH_CLOCK_SKEW, AUTH_JWKS_REFRESH,
// AUTH_JWKS_MIN_REFRESH, CACHE_SESSION_TTL).
type Auth = auth.Config

// Development defaults of the issuer and audience of HS256 tokens.
const (
	DevIssuer   = auth.DevIssuer
	DevAudience = auth.DevAudience
)

// LoadAuth reads the authentication settings.
func LoadAuth() Auth {
	a := Auth{
		JWKSURL:        Env("AUTH_JWKS_URL", ""),
		Issuer:         Env("AUTH_ISSUER", ""),
		Audience:       Env("AUTH_AUDIENCE", ""),
		HS256Secret:    Env("AUTH_HS256_SECRET", ""),
		ClockSkew:      EnvDuration("AUTH_CLOCK_SKEW", 30*time.Second),
		JWKSRefresh:    EnvDuration("AUTH_JWKS_REFRESH", 10*time.Minute),
		JWKSMinRefresh: EnvDuration("AUTH_JWKS_MIN_REFRESH", 30*time.Second),
		SessionTTL:     EnvDuration("CACHE_SESSION_TTL", 30*time.Minute),
	}
	if a.JWKSURL == "" {
		if a.Issuer == "" {
			a.Issuer = DevIssuer
		}
		if a.Audience == "" {
			a.Audience = DevAudience
		}
	}
	return a
}
