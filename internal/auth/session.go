package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/orderflow/orderflow/internal/cache"
)

// maxLocalSessions bounds the in-process session tier; past it, expired
// entries go first, then everything (the next requests verify again, which
// costs microseconds).
const maxLocalSessions = 50_000

// Authenticator verifies bearer tokens through the session tier. It is safe
// for concurrent use; build one per process with New.
//
// A token's claims are looked up in process first. On a miss the token is
// verified (HS256 takes microseconds, RS256/ES256 tens of them: less than a
// Redis round trip, see docs/performance.md) and its claims are cached in
// process and, with a JWKS, in Redis. Redis is read only when the key set
// cannot be fetched: sessions another replica verified then go on while the
// identity provider is down. A cached session lasts the session TTL, never
// past the token's expiry, and is dropped once its signing key leaves the
// key set.
type Authenticator struct {
	verifier *Verifier
	keys     *KeySet // nil without a JWKS
	redis    *redis.Client
	ttl      time.Duration
	now      func() time.Time
	log      *zap.Logger

	mu    sync.Mutex
	local map[[32]byte]session
}

type session struct {
	claims *Claims
	until  time.Time
}

// Option adjusts an Authenticator.
type Option func(*Authenticator)

// WithClock sets the clock of expiry checks and cache bounds (tests).
func WithClock(now func() time.Time) Option { return func(a *Authenticator) { a.now = now } }

// WithRedis sets the shared session tier; nil leaves it off.
func WithRedis(rc *redis.Client) Option { return func(a *Authenticator) { a.redis = rc } }

// WithLogger sets the logger of key-set fetch failures.
func WithLogger(log *zap.Logger) Option { return func(a *Authenticator) { a.log = log } }

// New builds an Authenticator from cfg. With a JWKS URL the key set is
// fetched in the background until ctx ends (a first failure is logged, not
// returned). It fails when cfg configures no way to verify a token.
func New(ctx context.Context, cfg Config, opts ...Option) (*Authenticator, error) {
	a := &Authenticator{ttl: cfg.SessionTTL, now: time.Now, log: zap.NewNop(), local: map[[32]byte]session{}}
	for _, o := range opts {
		o(a)
	}
	if a.ttl <= 0 {
		a.ttl = cache.SessionTTL
	}
	if cfg.JWKSURL != "" {
		a.keys = NewKeySet(cfg.JWKSURL, cfg.JWKSRefresh, cfg.JWKSMinRefresh, a.log)
	}
	v, err := NewVerifier(cfg, a.keys, a.now)
	if err != nil {
		return nil, err
	}
	a.verifier = v
	if a.keys != nil {
		a.keys.onRefresh = append(a.keys.onRefresh, a.dropRevoked)
		a.keys.Start(ctx)
	}
	return a, nil
}

// Keys returns the key set, nil without a JWKS.
func (a *Authenticator) Keys() *KeySet { return a.keys }

// SessionKey is the Redis key of a token's cached claims: a hash of the
// token, never the token.
func SessionKey(raw string) string {
	h := sha256.Sum256([]byte(raw))
	return sessionKey(h)
}

func sessionKey(h [32]byte) string { return "session:" + hex.EncodeToString(h[:]) }

// Authenticate returns the claims of a bearer token: from the session tier,
// or verified. Failures are *Error values (401, or 503 when the keys cannot
// be fetched and no replica cached the session).
func (a *Authenticator) Authenticate(ctx context.Context, raw string) (*Claims, error) {
	if raw == "" {
		return nil, ErrMissingToken
	}
	h := sha256.Sum256([]byte(raw))
	now := a.now()
	a.mu.Lock()
	s, ok := a.local[h]
	a.mu.Unlock()
	if ok && now.Before(s.until) && a.keyCurrent(s.claims) {
		cache.Record(ctx, cache.TierSession, true)
		return s.claims, nil
	}
	c, err := a.verifier.Verify(ctx, raw)
	if err != nil {
		var e *Error
		if errors.As(err, &e) && e.Status == http.StatusServiceUnavailable {
			if c, ok := a.shared(ctx, h, now); ok {
				a.remember(h, c, now)
				return c, nil
			}
		}
		cache.Record(ctx, cache.TierSession, false)
		return nil, err
	}
	cache.Record(ctx, cache.TierSession, false)
	until := a.remember(h, c, now)
	if a.redis != nil && a.keys != nil {
		// Only a key set can be unavailable; with the HS256 secret alone
		// Redis would never be read.
		b, _ := json.Marshal(c)
		cctx, cancel := context.WithTimeout(ctx, cache.CallTimeout(a.redis))
		if err := a.redis.Set(cctx, sessionKey(h), b, until.Sub(now)).Err(); err != nil {
			a.log.Warn("session tier: redis set failed", zap.Error(err))
		}
		cancel()
	}
	return c, nil
}

// remember caches c in process until the session TTL or the token's expiry,
// whichever comes first, and returns that time.
func (a *Authenticator) remember(h [32]byte, c *Claims, now time.Time) time.Time {
	until := now.Add(a.ttl)
	if c.ExpiresAt.Before(until) {
		until = c.ExpiresAt
	}
	a.mu.Lock()
	if len(a.local) >= maxLocalSessions {
		for k, s := range a.local {
			if !now.Before(s.until) {
				delete(a.local, k)
			}
		}
		if len(a.local) >= maxLocalSessions {
			clear(a.local)
		}
	}
	a.local[h] = session{claims: c, until: until}
	a.mu.Unlock()
	return until
}

// shared reads a session another replica cached, for when the key set
// cannot be fetched.
func (a *Authenticator) shared(ctx context.Context, h [32]byte, now time.Time) (*Claims, bool) {
	if a.redis == nil {
		return nil, false
	}
	cctx, cancel := context.WithTimeout(ctx, cache.CallTimeout(a.redis))
	defer cancel()
	b, err := a.redis.Get(cctx, sessionKey(h)).Bytes()
	if err != nil {
		if !errors.Is(err, redis.Nil) {
			a.log.Warn("session tier: redis get failed", zap.Error(err))
		}
		return nil, false
	}
	var c Claims
	if json.Unmarshal(b, &c) != nil || !now.Before(c.ExpiresAt) {
		return nil, false
	}
	cache.Record(ctx, cache.TierSession, true)
	return &c, true
}

// keyCurrent reports whether the key that signed c is still in the key set.
func (a *Authenticator) keyCurrent(c *Claims) bool {
	return c.KeyID == "" || a.keys == nil || a.keys.Has(c.KeyID)
}

// dropRevoked forgets the cached sessions whose key left the key set, in
// process and in Redis, so a removed key's tokens stop verifying everywhere.
func (a *Authenticator) dropRevoked() {
	var gone []string
	a.mu.Lock()
	for h, s := range a.local {
		if !a.keyCurrent(s.claims) {
			delete(a.local, h)
			gone = append(gone, sessionKey(h))
		}
	}
	a.mu.Unlock()
	if len(gone) > 0 && a.redis != nil {
		// One DEL per hash slot: the sessions' keys lie in many.
		cache.Del(context.Background(), a.redis, nil, gone...)
	}
}
