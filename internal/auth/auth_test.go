package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/cache"
)

// clock is a settable time for expiry and cache bounds.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// claims are a token's payload for the tests to bend.
func claims(now time.Time, sub string, roles ...string) jwt.MapClaims {
	return jwt.MapClaims{"sub": sub, "iss": auth.DevIssuer, "aud": auth.DevAudience,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "roles": roles}
}

func hs256(t testing.TB, secret string, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(secret))
	require.NoError(t, err)
	return s
}

func devConfig() auth.Config {
	cfg := testkit.AuthConfig()
	cfg.SessionTTL = 30 * time.Minute
	return cfg
}

func authError(t *testing.T, err error) *auth.Error {
	t.Helper()
	require.Error(t, err)
	e, ok := auth.AsError(err)
	require.True(t, ok, "error %v is not an *auth.Error", err)
	return e
}

func TestVerifyRefusesEveryBadTokenWith401AndAChallenge(t *testing.T) {
	clk := newClock()
	cfg := devConfig()
	a, err := auth.New(context.Background(), cfg, auth.WithClock(clk.now))
	require.NoError(t, err)
	now := clk.now()
	with := func(k string, v any) jwt.MapClaims {
		c := claims(now, "c-1", "customer")
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	rs256, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims(now, "c-1", "customer")).SignedString(rsaKey)
	require.NoError(t, err)
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims(now, "c-1", "admin")).SignedString(jwt.UnsafeAllowNoneSignatureType)
	require.NoError(t, err)
	good := hs256(t, cfg.HS256Secret, claims(now, "c-1", "customer"))
	parts := strings.Split(good, ".")
	// The admin role pasted into a customer's token, signature kept.
	escalated := parts[0] + "." + base64.RawURLEncoding.EncodeToString(mustJSON(t, claims(now, "c-1", "admin"))) + "." + parts[2]

	for _, tc := range []struct {
		name, token, says string
	}{
		{"expired beyond the clock skew", hs256(t, cfg.HS256Secret, with("exp", now.Add(-31*time.Second).Unix())), "expired"},
		{"not valid yet beyond the clock skew", hs256(t, cfg.HS256Secret, with("nbf", now.Add(time.Minute).Unix())), "not valid yet"},
		{"without exp", hs256(t, cfg.HS256Secret, with("exp", nil)), "exp"},
		{"forged: signed with another secret", hs256(t, cfg.HS256Secret+"x", claims(now, "c-1", "customer")), "signature"},
		{"forged: claims changed after signing", escalated, "signature"},
		{"another audience", hs256(t, cfg.HS256Secret, with("aud", "someone-else")), "aud"},
		{"another issuer", hs256(t, cfg.HS256Secret, with("iss", "https://evil.example")), "iss"},
		{"alg none", none, "signature"},
		{"RS256 without a JWKS", rs256, "signature"},
		{"without subject", hs256(t, cfg.HS256Secret, with("sub", nil)), "subject"},
		{"not a JWT", "not-a-jwt", "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.Authenticate(context.Background(), tc.token)
			e := authError(t, err)
			assert.Equal(t, http.StatusUnauthorized, e.Status)
			assert.Equal(t, "invalid_token", e.Code)
			assert.Contains(t, e.Message, tc.says)
			assert.True(t, strings.HasPrefix(e.Challenge(), `Bearer realm="orderflow", error="invalid_token", error_description="`), e.Challenge())
		})
	}

	t.Run("expired within the clock skew is still good", func(t *testing.T) {
		c, err := a.Authenticate(context.Background(), hs256(t, cfg.HS256Secret, with("exp", now.Add(-10*time.Second).Unix())))
		require.NoError(t, err)
		assert.Equal(t, "c-1", c.Subject)
	})
	t.Run("no token is 401 with the realm only", func(t *testing.T) {
		e := authError(t, func() error { _, err := a.Authenticate(context.Background(), ""); return err }())
		assert.Equal(t, http.StatusUnauthorized, e.Status)
		assert.Equal(t, `Bearer realm="orderflow"`, e.Challenge())
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

func TestRolesClaimTakesAnArrayOrOneNameAndIgnoresUnknownRoles(t *testing.T) {
	cfg := devConfig()
	a, err := auth.New(context.Background(), cfg)
	require.NoError(t, err)
	now := time.Now()
	for _, tc := range []struct {
		name  string
		roles any
		want  []auth.Role
	}{
		{"array", []string{"customer", "operator"}, []auth.Role{auth.RoleCustomer, auth.RoleOperator}},
		{"one name", "operator", []auth.Role{auth.RoleOperator}},
		{"unknown roles dropped", []string{"superuser", "customer"}, []auth.Role{auth.RoleCustomer}},
		{"none", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := claims(now, "sub-"+tc.name)
			c["roles"] = tc.roles
			got, err := a.Authenticate(context.Background(), hs256(t, cfg.HS256Secret, c))
			require.NoError(t, err)
			assert.Equal(t, tc.want, got.Roles)
		})
	}
	admin := &auth.Claims{Roles: []auth.Role{auth.RoleAdmin}}
	assert.True(t, admin.Has(auth.RoleOperator) && admin.Has(auth.RoleCustomer), "admin has every role")
	customer := &auth.Claims{Roles: []auth.Role{auth.RoleCustomer}}
	assert.False(t, customer.Has(auth.RoleOperator))
}

func TestNoVerificationConfiguredRefusesToStart(t *testing.T) {
	cfg := devConfig()
	cfg.HS256Secret = ""
	_, err := auth.New(context.Background(), cfg)
	require.ErrorContains(t, err, "AUTH_JWKS_URL")
	cfg.HS256Secret = "too-short"
	_, err = auth.New(context.Background(), cfg)
	require.ErrorContains(t, err, "at least 32")
}

func TestSessionCacheAnswersRepeatsAndNeverOutlivesTheToken(t *testing.T) {
	clk := newClock()
	cfg := devConfig()
	a, err := auth.New(context.Background(), cfg, auth.WithClock(clk.now))
	require.NoError(t, err)
	ctx := context.Background()

	short := claims(clk.now(), "c-short", "customer")
	short["exp"] = clk.now().Add(2 * time.Minute).Unix()
	tok := hs256(t, cfg.HS256Secret, short)
	hits, misses := cache.Hits(cache.TierSession), cache.Misses(cache.TierSession)
	_, err = a.Authenticate(ctx, tok)
	require.NoError(t, err)
	_, err = a.Authenticate(ctx, tok)
	require.NoError(t, err)
	assert.Equal(t, hits+1, cache.Hits(cache.TierSession), "the repeat is a session hit")
	assert.Equal(t, misses+1, cache.Misses(cache.TierSession), "only the first verified")

	clk.add(2*time.Minute + 31*time.Second) // past exp and the clock skew
	e := authError(t, func() error { _, err := a.Authenticate(ctx, tok); return err }())
	assert.Contains(t, e.Message, "expired", "the cached session ends with the token")

	long := hs256(t, cfg.HS256Secret, claims(clk.now(), "c-long", "customer")) // exp in 1 h
	_, err = a.Authenticate(ctx, long)
	require.NoError(t, err)
	misses = cache.Misses(cache.TierSession)
	clk.add(31 * time.Minute)
	_, err = a.Authenticate(ctx, long)
	require.NoError(t, err, "still valid")
	assert.Equal(t, misses+1, cache.Misses(cache.TierSession), "after the 30-minute session TTL the token is verified again")
}

// jwksServer serves a key set the test changes, counting fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	keys    map[string]any // kid -> public key
	fetches atomic.Int64
}

func newJWKS(t *testing.T) *jwksServer { return newJWKSB(t) }

func newJWKSB(t testing.TB) *jwksServer {
	j := &jwksServer{keys: map[string]any{}}
	j.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		j.fetches.Add(1)
		j.mu.Lock()
		defer j.mu.Unlock()
		var set struct {
			Keys []map[string]string `json:"keys"`
		}
		for kid, k := range j.keys {
			switch k := k.(type) {
			case *rsa.PublicKey:
				set.Keys = append(set.Keys, map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
					"n": b64(k.N), "e": b64(big.NewInt(int64(k.E)))})
			case *ecdsa.PublicKey:
				point, _ := k.Bytes() // 0x04 || x || y
				set.Keys = append(set.Keys, map[string]string{"kty": "EC", "kid": kid, "use": "sig", "alg": "ES256", "crv": "P-256",
					"x": base64.RawURLEncoding.EncodeToString(point[1:33]), "y": base64.RawURLEncoding.EncodeToString(point[33:])})
			}
		}
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(j.Close)
	return j
}

func b64(i *big.Int) string { return base64.RawURLEncoding.EncodeToString(i.Bytes()) }

func (j *jwksServer) set(kid string, key any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if key == nil {
		delete(j.keys, kid)
		return
	}
	j.keys[kid] = key
}

func jwksConfig(url string) auth.Config {
	return auth.Config{JWKSURL: url, Issuer: "https://idp.example", Audience: "orderflow-api", ClockSkew: 30 * time.Second,
		JWKSRefresh: time.Hour, JWKSMinRefresh: 0, SessionTTL: 30 * time.Minute}
}

func signed(t *testing.T, method jwt.SigningMethod, kid string, key any, sub string) string {
	t.Helper()
	return signedB(t, method, kid, key, sub)
}

func signedB(t testing.TB, method jwt.SigningMethod, kid string, key any, sub string) string {
	t.Helper()
	now := time.Now()
	c := jwt.MapClaims{"sub": sub, "iss": "https://idp.example", "aud": []string{"orderflow-api"},
		"exp": now.Add(time.Hour).Unix(), "roles": []string{"customer"}}
	tok := jwt.NewWithClaims(method, c)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

func TestJWKSRotationVerifiesTheNewKeyAndDropsTheRemovedOne(t *testing.T) {
	ctx := context.Background()
	oldKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	newKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	j := newJWKS(t)
	j.set("old", &oldKey.PublicKey)
	actx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	a, err := auth.New(actx, jwksConfig(j.URL))
	require.NoError(t, err)

	oldTok := signed(t, jwt.SigningMethodRS256, "old", oldKey, "c-old")
	newTok := signed(t, jwt.SigningMethodES256, "new", newKey, "c-new")
	c, err := a.Authenticate(ctx, oldTok)
	require.NoError(t, err)
	assert.Equal(t, "c-old", c.Subject)
	assert.Equal(t, "old", c.KeyID)

	e := authError(t, func() error { _, err := a.Authenticate(ctx, newTok); return err }())
	assert.Equal(t, http.StatusUnauthorized, e.Status, "a key the provider does not publish is refused")
	assert.Contains(t, e.Message, "key set")

	// Rotation, step 1: the provider publishes the new key next to the old.
	j.set("new", &newKey.PublicKey)
	c, err = a.Authenticate(ctx, newTok)
	require.NoError(t, err, "an unknown kid refetches the set and the new key verifies")
	assert.Equal(t, "c-new", c.Subject)
	_, err = a.Authenticate(ctx, oldTok)
	require.NoError(t, err, "the old key still verifies while it is published")

	// Step 2: the old key is withdrawn; once the set is refreshed, its
	// tokens fail, the cached session included.
	j.set("old", nil)
	require.NoError(t, a.Keys().Refresh(ctx))
	e = authError(t, func() error { _, err := a.Authenticate(ctx, oldTok); return err }())
	assert.Equal(t, http.StatusUnauthorized, e.Status)
	_, err = a.Authenticate(ctx, newTok)
	require.NoError(t, err)

	t.Run("a key of the wrong type for the alg is refused", func(t *testing.T) {
		// The EC key's kid on an RS256 token.
		forged := signed(t, jwt.SigningMethodRS256, "new", oldKey, "c-x")
		e := authError(t, func() error { _, err := a.Authenticate(ctx, forged); return err }())
		assert.Equal(t, http.StatusUnauthorized, e.Status)
	})
	t.Run("HS256 is refused with only a JWKS (no algorithm confusion)", func(t *testing.T) {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "c-x", "iss": "https://idp.example", "aud": "orderflow-api",
			"exp": time.Now().Add(time.Hour).Unix()})
		tok.Header["kid"] = "new"
		pub, err := newKey.PublicKey.ECDH()
		require.NoError(t, err)
		s, err := tok.SignedString(pub.Bytes()) // the public key's bytes, as an attacker would use them
		require.NoError(t, err)
		e := authError(t, func() error { _, err := a.Authenticate(ctx, s); return err }())
		assert.Equal(t, http.StatusUnauthorized, e.Status)
	})
}

func TestUnknownKeyIDsRefetchTheSetAtMostOncePerMinRefresh(t *testing.T) {
	ctx := context.Background()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	j := newJWKS(t)
	j.set("k1", &key.PublicKey)
	cfg := jwksConfig(j.URL)
	cfg.JWKSMinRefresh = time.Hour
	actx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	a, err := auth.New(actx, cfg)
	require.NoError(t, err)
	require.Equal(t, int64(1), j.fetches.Load(), "the set is fetched at start")
	for range 5 {
		_, err := a.Authenticate(ctx, signed(t, jwt.SigningMethodES256, "forged-"+uuid.NewString(), key, "c-1"))
		e := authError(t, err)
		assert.Equal(t, http.StatusUnauthorized, e.Status)
	}
	assert.Equal(t, int64(1), j.fetches.Load(), "forged key ids do not make the gateway hammer the provider")
}

// With a JWKS, verified claims also go to Redis under a hash of the token,
// for no longer than the token lives; a gateway that cannot fetch the key
// set serves those sessions and answers 503 for the others.
func TestSessionTierInRedisServesSessionsWhileTheKeySetIsUnavailable(t *testing.T) {
	ctx := context.Background()
	rc := testkit.Redis(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	j := newJWKS(t)
	j.set("k1", &key.PublicKey)
	actx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	a, err := auth.New(actx, jwksConfig(j.URL), auth.WithRedis(rc))
	require.NoError(t, err)

	tok := signed(t, jwt.SigningMethodES256, "k1", key, "c-"+uuid.NewString())
	_, err = a.Authenticate(ctx, tok)
	require.NoError(t, err)
	ttl, err := rc.PTTL(ctx, auth.SessionKey(tok)).Result()
	require.NoError(t, err)
	assert.True(t, ttl > 29*time.Minute && ttl <= 30*time.Minute, "the session tier's 30 minutes: %s", ttl)
	raw, err := rc.Get(ctx, auth.SessionKey(tok)).Result()
	require.NoError(t, err)
	assert.NotContains(t, raw, tok, "the token itself is not stored")
	assert.NotContains(t, auth.SessionKey(tok), tok)

	// A token that expires in 5 minutes is cached for 5 minutes.
	short := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"sub": "c-short", "iss": "https://idp.example", "aud": "orderflow-api",
		"exp": time.Now().Add(5 * time.Minute).Unix()})
	short.Header["kid"] = "k1"
	shortTok, err := short.SignedString(key)
	require.NoError(t, err)
	_, err = a.Authenticate(ctx, shortTok)
	require.NoError(t, err)
	ttl, err = rc.PTTL(ctx, auth.SessionKey(shortTok)).Result()
	require.NoError(t, err)
	assert.True(t, ttl > 0 && ttl <= 5*time.Minute, "bounded by the token's exp: %s", ttl)

	// Another gateway whose identity provider does not answer.
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	b, err := auth.New(actx, jwksConfig(down.URL), auth.WithRedis(rc))
	require.NoError(t, err, "an unreachable JWKS does not stop the gateway")
	c, err := b.Authenticate(ctx, tok)
	require.NoError(t, err, "a session cached by another gateway is served")
	assert.Equal(t, []auth.Role{auth.RoleCustomer}, c.Roles)
	other := signed(t, jwt.SigningMethodES256, "k1", key, "c-"+uuid.NewString())
	e := authError(t, func() error { _, err := b.Authenticate(ctx, other); return err }())
	assert.Equal(t, http.StatusServiceUnavailable, e.Status, "an unknown session cannot be checked: 503, not 401")
	assert.Equal(t, "1", e.RetryAfter())

	// Withdrawing the key drops its sessions from Redis too.
	j.set("k1", nil)
	require.NoError(t, a.Keys().Refresh(ctx))
	n, err := rc.Exists(ctx, auth.SessionKey(tok)).Result()
	require.NoError(t, err)
	assert.Zero(t, n, "the removed key's session is gone from Redis")
}

func TestMintedTokensVerifyWithTheirRole(t *testing.T) {
	cfg := devConfig()
	a, err := auth.New(context.Background(), cfg)
	require.NoError(t, err)
	m, err := auth.NewMinter(cfg)
	require.NoError(t, err)
	c, err := a.Authenticate(context.Background(), m.MustMint("c-9", time.Minute, auth.RoleCustomer))
	require.NoError(t, err)
	assert.Equal(t, "c-9", c.Subject)
	assert.Equal(t, []auth.Role{auth.RoleCustomer}, c.Roles)
	_, err = m.Mint("c-9", time.Minute, auth.Role("root"))
	require.ErrorContains(t, err, "unknown role")
	assert.Equal(t, m.Bearer("c-9", auth.RoleCustomer), m.Bearer("c-9", auth.RoleCustomer), "a client's token is reused")
}
