package config

import (
	"fmt"
	"time"
)

// Auth configures bearer-token authentication at the gateway (and any other
// endpoint that asks for a token, such as a codec server). Production verifies
// RS256/ES256 tokens against an identity provider's JWKS; development verifies
// HS256 tokens signed with a shared secret. There is no default secret: a
// process with neither JWKSURL nor HS256Secret refuses to start.
type Auth struct {
	// JWKSURL is the identity provider's JSON Web Key Set (AUTH_JWKS_URL);
	// when set, RS256 and ES256 tokens are verified against its keys.
	JWKSURL string
	// Issuer and Audience are the iss and aud every token must carry
	// (AUTH_ISSUER, AUTH_AUDIENCE). Both are required with a JWKS; with only
	// the development secret they default to "orderflow-dev" and "orderflow".
	Issuer   string
	Audience string
	// HS256Secret signs development tokens (AUTH_HS256_SECRET, at least 32
	// bytes). `make run` generates one into the stack's data directory.
	HS256Secret string
	// ClockSkew is the leeway on exp and nbf (AUTH_CLOCK_SKEW).
	ClockSkew time.Duration
	// JWKSRefresh is how often the key set is fetched again, so removed keys
	// stop verifying (AUTH_JWKS_REFRESH); JWKSMinRefresh is the least time
	// between two fetches a token with an unknown key id may trigger
	// (AUTH_JWKS_MIN_REFRESH), so forged key ids cannot flood the provider.
	JWKSRefresh    time.Duration
	JWKSMinRefresh time.Duration
	// SessionTTL bounds how long verified claims are cached (the design's
	// session tier, CACHE_SESSION_TTL); the token's own expiry bounds it too.
	SessionTTL time.Duration
}

// Development defaults of the issuer and audience of HS256 tokens.
const (
	DevIssuer   = "orderflow-dev"
	DevAudience = "orderflow"
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

// String renders the settings for the start-up log line; the secret is
// never shown, only whether it is set.
func (a Auth) String() string {
	secret := "unset"
	if a.HS256Secret != "" {
		secret = "set"
	}
	return fmt.Sprintf("jwks=%s issuer=%s audience=%s hs256_secret=%s clock_skew=%s session_ttl=%s",
		Mask(a.JWKSURL), a.Issuer, a.Audience, secret, a.ClockSkew, a.SessionTTL)
}
