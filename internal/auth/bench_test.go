package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/cache"
)

// BenchmarkAuthenticate prices what a request's token costs the gateway:
// verifying it (HS256, RS256, ES256), answering it from the in-process
// session tier, and, for comparison, one Redis GET of a session key (what
// asking the shared tier first would add to every miss). The numbers go to
// docs/performance.md.
func BenchmarkAuthenticate(b *testing.B) {
	ctx := context.Background()
	cfg := devConfig()
	now := time.Now()

	b.Run("verify/hs256", func(b *testing.B) {
		v, err := auth.NewVerifier(cfg, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		tok := hs256(b, cfg.HS256Secret, claims(now, "c-bench", "customer"))
		for b.Loop() {
			if _, err := v.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		method jwt.SigningMethod
		priv   any
		pub    any
	}{{"verify/rs256", jwt.SigningMethodRS256, rsaKey, &rsaKey.PublicKey}, {"verify/es256", jwt.SigningMethodES256, ecKey, &ecKey.PublicKey}} {
		b.Run(tc.name, func(b *testing.B) {
			j := newJWKSB(b)
			j.set("k", tc.pub)
			actx, cancel := context.WithCancel(ctx)
			defer cancel()
			a, err := auth.New(actx, jwksConfig(j.URL))
			if err != nil {
				b.Fatal(err)
			}
			v, err := auth.NewVerifier(jwksConfig(j.URL), a.Keys(), nil)
			if err != nil {
				b.Fatal(err)
			}
			tok := signedB(b, tc.method, "k", tc.priv, "c-bench")
			for b.Loop() {
				if _, err := v.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("session/local_hit", func(b *testing.B) {
		a, err := auth.New(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		tok := hs256(b, cfg.HS256Secret, claims(now, "c-bench", "customer"))
		for b.Loop() {
			if _, err := a.Authenticate(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("session/new_token_hs256", func(b *testing.B) {
		a, err := auth.New(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		toks := make([]string, 4096)
		for i := range toks {
			toks[i] = hs256(b, cfg.HS256Secret, claims(now, "c-"+uuid.NewString(), "customer"))
		}
		i := 0
		for b.Loop() {
			// Each token is new to a fresh authenticator only once; after
			// that these are hits, so renew the authenticator per lap.
			if i%len(toks) == 0 {
				b.StopTimer()
				a, _ = auth.New(ctx, cfg)
				b.StartTimer()
			}
			if _, err := a.Authenticate(ctx, toks[i%len(toks)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("sha256_of_token", func(b *testing.B) {
		tok := hs256(b, cfg.HS256Secret, claims(now, "c-bench", "customer"))
		for b.Loop() {
			_ = sha256.Sum256([]byte(tok))
		}
	})
	b.Run("redis/get_session_key", func(b *testing.B) {
		rc := testkit.Redis(b)
		key := auth.SessionKey(uuid.NewString())
		for b.Loop() {
			cctx, cancel := context.WithTimeout(ctx, cache.Timeout)
			_ = rc.Get(cctx, key).Err()
			cancel()
		}
	})
}
