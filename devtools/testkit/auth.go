package testkit

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/config"
)

// AuthConfig is the development configuration `make run` gives the gateway,
// with a fresh random HS256 secret.
func AuthConfig() config.Auth {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	cfg := config.LoadAuth()
	cfg.JWKSURL, cfg.HS256Secret = "", base64.RawStdEncoding.EncodeToString(b)
	cfg.Issuer, cfg.Audience = config.DevIssuer, config.DevAudience
	return cfg
}

// Tokens is a gateway's authenticator and a minter of tokens it accepts.
type Tokens struct {
	Auth   *auth.Authenticator
	Minter *auth.Minter
	// Config holds the secret, issuer and audience, for tests that forge
	// tokens.
	Config config.Auth
}

// Auth returns an authenticator (without the Redis tier) and a minter that
// share a fresh HS256 secret.
func Auth(t testing.TB) Tokens {
	t.Helper()
	return AuthWith(t, AuthConfig())
}

// AuthWith is Auth for a given configuration, e.g. one whose secret a
// gateway process started by the test also gets.
func AuthWith(t testing.TB, cfg config.Auth) Tokens {
	t.Helper()
	a, err := auth.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("authenticator: %v", err)
	}
	m, err := auth.NewMinter(cfg)
	if err != nil {
		t.Fatalf("minter: %v", err)
	}
	return Tokens{Auth: a, Minter: m, Config: cfg}
}

// Bearer returns an Authorization header value for sub with roles, valid
// for an hour.
func (k Tokens) Bearer(sub string, roles ...auth.Role) string {
	return "Bearer " + k.Minter.MustMint(sub, time.Hour, roles...)
}

// Operator is an operator's Authorization header value.
func (k Tokens) Operator() string { return k.Bearer("ops-test", auth.RoleOperator) }
