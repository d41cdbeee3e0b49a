package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MinSecretBytes is the shortest HS256 secret accepted: the hash's size, as
// RFC 7518 section 3.2 requires.
const MinSecretBytes = 32

// Verifier checks a token's signature and claims, without any cache. It is
// safe for concurrent use.
type Verifier struct {
	secret []byte // HS256; nil when unset
	keys   *KeySet
	parser *jwt.Parser
	now    func() time.Time
}

// errKeysUnavailable marks a token that could not be checked because the key
// set could not be fetched: the token may well be good.
var errKeysUnavailable = errors.New("signing keys unavailable")

// NewVerifier builds a verifier from cfg. It needs the JWKS URL or the
// HS256 secret; with a JWKS it needs an issuer and an audience too. The key
// set is not fetched here: see KeySet.Start.
func NewVerifier(cfg Config, keys *KeySet, now func() time.Time) (*Verifier, error) {
	if now == nil {
		now = time.Now
	}
	v := &Verifier{keys: keys, now: now}
	var methods []string
	if cfg.HS256Secret != "" {
		if len(cfg.HS256Secret) < MinSecretBytes {
			return nil, fmt.Errorf("AUTH_HS256_SECRET is %d bytes, want at least %d", len(cfg.HS256Secret), MinSecretBytes)
		}
		v.secret = []byte(cfg.HS256Secret)
		methods = append(methods, jwt.SigningMethodHS256.Alg())
	}
	if keys != nil {
		methods = append(methods, jwt.SigningMethodRS256.Alg(), jwt.SigningMethodES256.Alg())
	}
	if len(methods) == 0 {
		return nil, errors.New("no token verification configured: set AUTH_JWKS_URL (production) or AUTH_HS256_SECRET (development)")
	}
	if cfg.Issuer == "" || cfg.Audience == "" {
		return nil, errors.New("AUTH_ISSUER and AUTH_AUDIENCE are required")
	}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods(methods),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(cfg.ClockSkew),
		jwt.WithTimeFunc(now),
	)
	return v, nil
}

// tokenClaims is the token's payload as parsed.
type tokenClaims struct {
	jwt.RegisteredClaims
	Roles roleList `json:"roles"`
}

// roleList reads "roles" as an array of names or as one name.
type roleList []string

func (r *roleList) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*r = roleList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("roles: want a string or an array of strings: %w", err)
	}
	*r = many
	return nil
}

// maxTokenBytes bounds what is parsed; a real token is well under 4 KiB.
const maxTokenBytes = 8 << 10

// Verify checks raw's signature, algorithm, issuer, audience, expiry (with
// the clock skew) and not-before, and returns its claims. A token that fails
// is an *Error: 401 invalid_token, or 503 auth_unavailable when the key set
// could not be fetched to check it.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	if len(raw) > maxTokenBytes {
		return nil, invalidToken("the token is too large", nil)
	}
	var tc tokenClaims
	var kid string
	tok, err := v.parser.ParseWithClaims(raw, &tc, func(t *jwt.Token) (any, error) {
		kid, _ = t.Header["kid"].(string)
		switch t.Method.Alg() {
		case jwt.SigningMethodHS256.Alg():
			if v.secret == nil {
				return nil, errors.New("HS256 is not accepted")
			}
			return v.secret, nil
		default:
			if kid == "" {
				return nil, errors.New("the token names no key (kid)")
			}
			return v.keys.key(ctx, kid, t.Method.Alg())
		}
	})
	if err != nil {
		return nil, verifyError(err)
	}
	if tc.Subject == "" {
		return nil, invalidToken("the token has no subject", nil)
	}
	c := &Claims{Subject: tc.Subject, ExpiresAt: tc.ExpiresAt.Time}
	if tok.Method.Alg() != jwt.SigningMethodHS256.Alg() {
		c.KeyID = kid
	}
	for _, r := range tc.Roles {
		if role := Role(r); role.Known() && !c.Has(role) {
			c.Roles = append(c.Roles, role)
		}
	}
	return c, nil
}

// verifyError turns a jwt error into the failure the client sees; its
// message says which check failed, never anything from the token.
func verifyError(err error) *Error {
	switch {
	case errors.Is(err, errKeysUnavailable):
		return keysUnavailable(err)
	case errors.Is(err, errUnknownKey):
		return invalidToken("the token's signing key is not in the key set", err)
	case errors.Is(err, jwt.ErrTokenExpired):
		return invalidToken("the token has expired", err)
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return invalidToken("the token is not valid yet", err)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return invalidToken("the token is not meant for this service (aud)", err)
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return invalidToken("the token's issuer is not trusted (iss)", err)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return invalidToken("the token lacks a required claim (exp)", err)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return invalidToken("the token's signature is invalid", err)
	case errors.Is(err, jwt.ErrTokenMalformed):
		return invalidToken("the token is malformed", err)
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return invalidToken("the token cannot be verified (algorithm or key)", err)
	}
	return invalidToken("the token is invalid", err)
}
