package auth

import (
	"fmt"
	"net/url"
	"time"
)

// Config configures bearer-token authentication at the gateway (and any
// other endpoint that asks for a token, such as a codec server). Production
// verifies RS256/ES256 tokens against an identity provider's JWKS;
// development verifies HS256 tokens signed with a shared secret. There is no
// default secret: New refuses a Config with neither JWKSURL nor HS256Secret.
// internal/config declares the environment variables that fill it.
type Config struct {
	// JWKSURL is the identity provider's JSON Web Key Set; when set, RS256
	// and ES256 tokens are verified against its keys.
	JWKSURL string
	// Issuer and Audience are the iss and aud every token must carry. Both
	// are required with a JWKS; with only the development secret they
	// default to DevIssuer and DevAudience.
	Issuer   string
	Audience string
	// HS256Secret signs development tokens (at least MinSecretBytes).
	HS256Secret string
	// ClockSkew is the leeway on exp and nbf.
	ClockSkew time.Duration
	// JWKSRefresh is how often the key set is fetched again, so removed keys
	// stop verifying; JWKSMinRefresh is the least time between two fetches a
	// token with an unknown key id may trigger, so forged key ids cannot
	// flood the provider.
	JWKSRefresh    time.Duration
	JWKSMinRefresh time.Duration
	// SessionTTL bounds how long verified claims are cached (the design's
	// session tier); the token's own expiry bounds it too.
	SessionTTL time.Duration
}

// Development defaults of the issuer and audience of HS256 tokens.
const (
	DevIssuer   = "orderflow-dev"
	DevAudience = "orderflow"
)

// String renders the settings for a start-up log line; the secret is never
// shown, only whether it is set, and a password in the JWKS URL is masked.
func (a Config) String() string {
	secret := "unset"
	if a.HS256Secret != "" {
		secret = "set"
	}
	jwks := a.JWKSURL
	if u, err := url.Parse(jwks); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			jwks = u.String()
		}
	}
	return fmt.Sprintf("jwks=%s issuer=%s audience=%s hs256_secret=%s clock_skew=%s session_ttl=%s",
		jwks, a.Issuer, a.Audience, secret, a.ClockSkew, a.SessionTTL)
}
