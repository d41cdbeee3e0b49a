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

// AuthConfig is the development configuration `make run` gives the gateway
// (the declared defaults), with a fresh random HS256 secret.
func AuthConfig() auth.Config {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return auth.Config{HS256Secret: base64.RawStdEncoding.EncodeToString(b), Issuer: auth.DevIssuer, Audience: auth.DevAudience,
		ClockSkew: config.AuthClockSkew.Default(), JWKSRefresh: config.AuthJWKSRefresh.Default(),
		JWKSMinRefresh: config.AuthJWKSMinRefresh.Default(), SessionTTL: config.SessionTTL.Default()}
}

// Tokens is a gateway's authenticator and a minter of tokens it accepts.
type Tokens struct {
	Auth   *auth.Authenticator
	Minter *auth.Minter
	// Config holds the secret, issuer and audience, for tests that forge
	// tokens.
	Config auth.Config
}

// Auth returns an authenticator (without the Redis tier) and a minter that
// share a fresh HS256 secret.
func Auth(t testing.TB) Tokens {
	t.Helper()
	return AuthWith(t, AuthConfig())
}

// AuthWith is Auth for a given configuration, e.g. one whose secret a
// gateway process started by the test also gets.
func AuthWith(t testing.TB, cfg auth.Config) Tokens {
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
