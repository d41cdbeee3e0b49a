package auth

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Minter signs development tokens with the HS256 secret, for `orderflow
// token`, the load generators and tests. Production tokens come from the
// identity provider, never from here.
type Minter struct {
	secret           []byte
	issuer, audience string
	now              func() time.Time
	bearers          sync.Map // subject+role -> "Bearer <token>"
}

// NewMinter returns a minter for cfg's HS256 secret, issuer and audience.
func NewMinter(cfg Config) (*Minter, error) {
	if cfg.HS256Secret == "" {
		return nil, errors.New("AUTH_HS256_SECRET is not set: `make run` writes one to .data/auth-hs256.secret")
	}
	if len(cfg.HS256Secret) < MinSecretBytes {
		return nil, fmt.Errorf("AUTH_HS256_SECRET is %d bytes, want at least %d", len(cfg.HS256Secret), MinSecretBytes)
	}
	iss, aud := cfg.Issuer, cfg.Audience
	if iss == "" {
		iss = DevIssuer
	}
	if aud == "" {
		aud = DevAudience
	}
	return &Minter{secret: []byte(cfg.HS256Secret), issuer: iss, audience: aud, now: time.Now}, nil
}

// Mint returns a token for sub with roles, valid for ttl from now.
func (m *Minter) Mint(sub string, ttl time.Duration, roles ...Role) (string, error) {
	if sub == "" {
		return "", errors.New("a token needs a subject")
	}
	if ttl <= 0 {
		return "", fmt.Errorf("ttl %s: want a positive duration", ttl)
	}
	names := make([]string, len(roles))
	for i, r := range roles {
		if !r.Known() {
			return "", fmt.Errorf("unknown role %q (customer, operator or admin)", r)
		}
		names[i] = string(r)
	}
	now := m.now()
	claims := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject: sub, Issuer: m.issuer, Audience: jwt.ClaimStrings{m.audience},
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Roles: names,
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(m.secret)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}

// MustMint is Mint for callers whose arguments are constants (tests, load
// generators); it panics on error.
func (m *Minter) MustMint(sub string, ttl time.Duration, roles ...Role) string {
	t, err := m.Mint(sub, ttl, roles...)
	if err != nil {
		panic(err)
	}
	return t
}

// BearerTTL is how long the tokens Bearer mints are valid: longer than any
// load run.
const BearerTTL = 24 * time.Hour

// Bearer returns an Authorization header value ("Bearer <token>") for sub
// with role, valid for BearerTTL. It mints once per subject and role and
// reuses the token after, as a real client reuses its token. It panics on
// an unknown role or an empty subject.
func (m *Minter) Bearer(sub string, role Role) string {
	key := string(role) + " " + sub
	if v, ok := m.bearers.Load(key); ok {
		return v.(string)
	}
	v := "Bearer " + m.MustMint(sub, BearerTTL, role)
	m.bearers.Store(key, v)
	return v
}
