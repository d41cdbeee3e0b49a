package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/auth"
)

func TestTokenMintsAnHS256TokenTheGatewayAccepts(t *testing.T) {
	cfg := testkit.AuthConfig()
	t.Setenv("AUTH_HS256_SECRET", cfg.HS256Secret)
	t.Setenv("AUTH_JWKS_URL", "")
	var out bytes.Buffer
	require.NoError(t, runToken(&out, os.LookupEnv, []string{"--sub", "c-42", "--role", "operator", "--ttl", "5m"}))
	a, err := auth.New(context.Background(), cfg)
	require.NoError(t, err)
	c, err := a.Authenticate(context.Background(), strings.TrimSpace(out.String()))
	require.NoError(t, err)
	assert.Equal(t, "c-42", c.Subject)
	assert.Equal(t, []auth.Role{auth.RoleOperator}, c.Roles)

	require.Error(t, runToken(&out, os.LookupEnv, []string{"--role", "customer"}), "a subject is required")
	require.ErrorContains(t, runToken(&out, os.LookupEnv, []string{"--sub", "c-1", "--role", "root"}), "unknown role")
	t.Setenv("AUTH_HS256_SECRET", "")
	require.ErrorContains(t, runToken(&out, os.LookupEnv, []string{"--sub", "c-1"}), "AUTH_HS256_SECRET is not set")
}
