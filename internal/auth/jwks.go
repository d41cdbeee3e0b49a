package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"
)

// errUnknownKey is a token signed by a key the (fresh) key set lacks.
var errUnknownKey = errors.New("unknown signing key")

// KeySet is an identity provider's JSON Web Key Set (RFC 7517), fetched from
// its URL and kept fresh: refetched every refresh interval, so a key the
// provider removed stops verifying, and on a token whose key id it does not
// know, so a new key verifies at once; such fetches are at least minRefresh
// apart, whatever the tokens say.
type KeySet struct {
	url        string
	http       *http.Client
	refresh    time.Duration
	minRefresh time.Duration
	log        *zap.Logger

	mu        sync.RWMutex
	keys      map[string]any // kid -> *rsa.PublicKey or *ecdsa.PublicKey
	loaded    bool           // a fetch has succeeded
	lastTry   time.Time      // the last fetch attempt
	lastError error          // of the last attempt, nil when it succeeded
	fetchMu   sync.Mutex     // one fetch at a time
	fetches   int            // attempts, for tests and logs
	onRefresh []func()       // called after each successful fetch
}

// NewKeySet returns a key set for url; it holds no key until Refresh or
// Start fetched it.
func NewKeySet(url string, refresh, minRefresh time.Duration, log *zap.Logger) *KeySet {
	if log == nil {
		log = zap.NewNop()
	}
	if refresh <= 0 {
		refresh = 10 * time.Minute
	}
	return &KeySet{url: url, http: &http.Client{Timeout: 5 * time.Second}, refresh: refresh, minRefresh: minRefresh, log: log}
}

// Start fetches the key set once and then every refresh interval until ctx
// ends. A failed fetch is logged and retried; it does not stop the process,
// whose sessions the Redis tier can still serve.
func (k *KeySet) Start(ctx context.Context) {
	if err := k.Refresh(ctx); err != nil {
		k.log.Warn("jwks: first fetch failed; retrying", zap.Error(err))
	}
	go func() {
		t := time.NewTicker(k.refresh)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if err := k.Refresh(ctx); err != nil {
				k.log.Warn("jwks: refresh failed; keeping the keys it had", zap.Error(err))
			}
		}
	}()
}

// Refresh fetches the key set now and replaces the keys held with it. On
// failure the keys held are kept.
func (k *KeySet) Refresh(ctx context.Context) error {
	k.fetchMu.Lock()
	defer k.fetchMu.Unlock()
	return k.fetchLocked(ctx)
}

// Fetches returns how many fetches were attempted.
func (k *KeySet) Fetches() int {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.fetches
}

func (k *KeySet) fetchLocked(ctx context.Context) error {
	keys, err := k.fetch(ctx)
	k.mu.Lock()
	k.fetches++
	k.lastTry, k.lastError = time.Now(), err
	if err == nil {
		k.keys, k.loaded = keys, true
	}
	hooks := k.onRefresh
	k.mu.Unlock()
	if err != nil {
		return err
	}
	for _, f := range hooks {
		f()
	}
	return nil
}

// Has reports whether kid is in the key set held now.
func (k *KeySet) Has(kid string) bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	_, ok := k.keys[kid]
	return ok
}

// key returns the public key kid for alg, fetching the set again when kid is
// unknown and the last fetch is at least minRefresh old. It fails with
// errKeysUnavailable when the set cannot be fetched and with errUnknownKey
// when a fresh set lacks kid.
func (k *KeySet) key(ctx context.Context, kid, alg string) (any, error) {
	k.mu.RLock()
	key, ok := k.keys[kid]
	k.mu.RUnlock()
	if !ok {
		var err error
		if key, ok, err = k.refetchFor(ctx, kid); err != nil {
			return nil, err
		}
		if !ok {
			return nil, errUnknownKey
		}
	}
	switch key.(type) {
	case *rsa.PublicKey:
		if alg == jwt.SigningMethodRS256.Alg() {
			return key, nil
		}
	case *ecdsa.PublicKey:
		if alg == jwt.SigningMethodES256.Alg() {
			return key, nil
		}
	}
	return nil, fmt.Errorf("key %q does not fit %s", kid, alg)
}

// refetchFor fetches the set for an unknown kid, unless a fetch is too
// recent; a caller that waited for another's fetch looks at its result.
func (k *KeySet) refetchFor(ctx context.Context, kid string) (any, bool, error) {
	k.fetchMu.Lock()
	defer k.fetchMu.Unlock()
	k.mu.RLock()
	key, ok := k.keys[kid]
	recent := !k.lastTry.IsZero() && time.Since(k.lastTry) < k.minRefresh
	lastErr, loaded := k.lastError, k.loaded
	k.mu.RUnlock()
	if ok {
		return key, true, nil
	}
	if recent {
		if lastErr != nil || !loaded {
			return nil, false, fmt.Errorf("%w: %w", errKeysUnavailable, lastErr)
		}
		return nil, false, nil
	}
	// The fetch serves every request waiting on it: one client going away
	// must not cancel it (the HTTP client's timeout bounds it).
	if err := k.fetchLocked(context.WithoutCancel(ctx)); err != nil {
		return nil, false, fmt.Errorf("%w: %w", errKeysUnavailable, err)
	}
	k.mu.RLock()
	key, ok = k.keys[kid]
	k.mu.RUnlock()
	return key, ok, nil
}

// jwk is one key of a set, as RFC 7517 and 7518 spell it.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

func (k *KeySet) fetch(ctx context.Context) (map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks request: %w", err)
	}
	res, err := k.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch jwks: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch jwks: status %d", res.StatusCode)
	}
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&set); err != nil {
		return nil, fmt.Errorf("decode jwks: %w", err)
	}
	keys := map[string]any{}
	for _, j := range set.Keys {
		if j.Kid == "" || (j.Use != "" && j.Use != "sig") {
			continue
		}
		key, err := j.publicKey()
		if err != nil {
			k.log.Warn("jwks: skipping a key", zap.String("kid", j.Kid), zap.Error(err))
			continue
		}
		keys[j.Kid] = key
	}
	return keys, nil
}

func (j jwk) publicKey() (any, error) {
	switch j.Kty {
	case "RSA":
		n, err := b64int(j.N)
		if err != nil {
			return nil, fmt.Errorf("n: %w", err)
		}
		e, err := b64int(j.E)
		if err != nil || !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 {
			return nil, fmt.Errorf("bad exponent: %w", err)
		}
		if n.BitLen() < 2048 {
			return nil, fmt.Errorf("RSA key of %d bits, want at least 2048", n.BitLen())
		}
		return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
	case "EC":
		if j.Crv != "P-256" {
			return nil, fmt.Errorf("curve %q, want P-256", j.Crv)
		}
		// The point in its uncompressed encoding, 0x04 || x || y, each
		// coordinate 32 bytes (left-padded: some issuers drop leading zeros).
		point := make([]byte, 65)
		point[0] = 4
		x, errX := base64.RawURLEncoding.DecodeString(j.X)
		y, errY := base64.RawURLEncoding.DecodeString(j.Y)
		if errX != nil || errY != nil || len(x) > 32 || len(y) > 32 {
			return nil, errors.New("bad coordinates")
		}
		copy(point[33-len(x):33], x)
		copy(point[65-len(y):], y)
		pk, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point) // refuses a point off the curve
		if err != nil {
			return nil, fmt.Errorf("bad point: %w", err)
		}
		return pk, nil
	}
	return nil, fmt.Errorf("key type %q", j.Kty)
}

func b64int(s string) (*big.Int, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, errors.New("empty")
	}
	return new(big.Int).SetBytes(b), nil
}
