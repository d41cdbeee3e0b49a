package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/auth"
)

// TestGatewayVerifiesJWKSTokensThroughRotationAndCachesSessionsInRedis runs
// the gateway as production configures it: ES256 tokens against a JWKS the
// test serves, the session tier in the test Redis. A new key verifies as
// soon as it is published, a withdrawn key's tokens are refused once the set
// is refreshed, and sessions sit in Redis under the token's hash for no
// longer than the session TTL.
func TestGatewayVerifiesJWKSTokensThroughRotationAndCachesSessionsInRedis(t *testing.T) {
	ctx := context.Background()
	rc := testkit.Redis(t)
	var mu sync.Mutex
	published := map[string]*ecdsa.PublicKey{}
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		keys := []map[string]string{}
		for kid, k := range published {
			point, _ := k.Bytes() // 0x04 || x || y
			keys = append(keys, map[string]string{"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
				"x": base64.RawURLEncoding.EncodeToString(point[1:33]), "y": base64.RawURLEncoding.EncodeToString(point[33:])})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	}))
	t.Cleanup(jwks.Close)
	publish := func(kid string, k *ecdsa.PrivateKey) {
		mu.Lock()
		defer mu.Unlock()
		if k == nil {
			delete(published, kid)
			return
		}
		published[kid] = &k.PublicKey
	}
	k1, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	k2, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	publish("k1", k1)

	actx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	cfg := auth.Config{JWKSURL: jwks.URL, Issuer: "https://idp.example", Audience: "orderflow-api", ClockSkew: 30 * time.Second,
		JWKSRefresh: time.Hour, SessionTTL: 30 * time.Minute}
	a, err := auth.New(actx, cfg, auth.WithRedis(rc))
	require.NoError(t, err)
	g := newGateway(t, rc, func(s *Server) { s.Auth = a })
	sku := testkit.Product(t, g.pool, 500, 3)
	token := func(kid string, key *ecdsa.PrivateKey) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"sub": "c-" + uuid.NewString(), "iss": cfg.Issuer,
			"aud": cfg.Audience, "exp": time.Now().Add(time.Hour).Unix(), "roles": []string{"customer"}})
		tok.Header["kid"] = kid
		s, err := tok.SignedString(key)
		require.NoError(t, err)
		return s
	}
	get := func(tok string) answer {
		return g.do(http.MethodGet, "/v1/products/"+sku, map[string]string{echo.HeaderAuthorization: "Bearer " + tok}, nil)
	}

	old := token("k1", k1)
	require.Equal(t, http.StatusOK, get(old).status)
	ttl, err := rc.PTTL(ctx, auth.SessionKey(old)).Result()
	require.NoError(t, err)
	assert.True(t, ttl > 29*time.Minute && ttl <= 30*time.Minute, "session in Redis for the session TTL: %s", ttl)

	fresh := token("k2", k2)
	a401 := get(fresh)
	require.Equal(t, http.StatusUnauthorized, a401.status, "k2 is not published yet")
	assert.Equal(t, "invalid_token", a401.errorCode(t))
	assert.Contains(t, a401.header.Get(echo.HeaderWWWAuthenticate), `error="invalid_token"`)

	publish("k2", k2)
	assert.Equal(t, http.StatusOK, get(fresh).status, "the new key verifies once published")
	assert.Equal(t, http.StatusOK, get(old).status, "the old key still does while it is published")

	publish("k1", nil)
	require.NoError(t, a.Keys().Refresh(ctx))
	gone := get(old)
	assert.Equal(t, http.StatusUnauthorized, gone.status, "the withdrawn key's token is refused, though its session was cached")
	assert.Equal(t, "invalid_token", gone.errorCode(t))
	assert.Equal(t, http.StatusOK, get(fresh).status)
}
