package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// The design's cache tiers, as named in the hit and miss counters.
const (
	TierCatalog   = "catalog"
	TierInventory = "inventory"
	TierOrder     = "order"
	TierSession   = "session"
)

// tierStats counts one tier's lookups for Hits and Misses; the OTel counters
// carry the same numbers to the exporter.
type tierStats struct{ hits, misses atomic.Int64 }

var (
	stats = map[string]*tierStats{
		TierCatalog: {}, TierInventory: {}, TierOrder: {}, TierSession: {},
	}
	meter       = otel.Meter("github.com/orderflow/orderflow/internal/cache")
	hitCounter  = mustCounter("orderflow.cache.hits", "cache lookups answered by Redis, by tier")
	missCounter = mustCounter("orderflow.cache.misses", "cache lookups that went to PostgreSQL, by tier")
	tierKey     = attribute.Key("tier")
)

func mustCounter(name, desc string) metric.Int64Counter {
	c, err := meter.Int64Counter(name, metric.WithDescription(desc))
	if err != nil {
		// The global API hands back a no-op instrument together with an
		// error only for an invalid name, which is a programming error.
		panic(err)
	}
	return c
}

// Record counts one lookup in tier as a hit or a miss. A Redis failure is a
// miss: the request went to PostgreSQL.
func Record(ctx context.Context, tier string, hit bool) {
	st, ok := stats[tier]
	if !ok {
		return
	}
	opt := metric.WithAttributes(tierKey.String(tier))
	if hit {
		st.hits.Add(1)
		hitCounter.Add(ctx, 1, opt)
		return
	}
	st.misses.Add(1)
	missCounter.Add(ctx, 1, opt)
}

// Hits returns how many lookups in tier this process answered from Redis.
func Hits(tier string) int64 {
	if st, ok := stats[tier]; ok {
		return st.hits.Load()
	}
	return 0
}

// Misses returns how many lookups in tier this process had to answer from
// PostgreSQL, Redis failures included.
func Misses(tier string) int64 {
	if st, ok := stats[tier]; ok {
		return st.misses.Load()
	}
	return 0
}

// leasePrefix marks a placeholder a reader put under a key while it loads the
// value from PostgreSQL. It is not JSON, so no reader mistakes it for a value.
const leasePrefix = "lease:"

// getOrLease returns the key's value, or, when there is none, puts a lease
// token in its place for ttlMs milliseconds and returns the token.
var getOrLease = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then return {1, v} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {0, ARGV[1]}
`)

// fillLease replaces the key's value with ARGV[2] for ARGV[3] milliseconds,
// but only while the key still holds the caller's lease ARGV[1].
var fillLease = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 0
`)

// Lease is a reader's claim to fill a key it missed. Writers invalidate with a
// plain DEL, which also drops a lease, so a reader that loaded the value
// before a write committed cannot put the stale value back after the write's
// delete: its FillLeased finds the lease gone and stores nothing. Without the
// lease, a 10-minute TTL would keep such a stale value for 10 minutes.
type Lease struct {
	key, token string
}

// GetLeased loads key into v and reports whether it was there. On a miss it
// returns a Lease to hand to FillLeased once the value is loaded from the
// system of record; the lease is nil when Redis is unavailable or another
// reader is filling the key, and FillLeased then stores nothing. hold bounds
// how long the lease blocks other fills; it must cover the load.
func GetLeased(ctx context.Context, c *redis.Client, log Warner, key string, v any, hold time.Duration) (bool, *Lease) {
	if c == nil {
		return false, nil
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	token := leasePrefix + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(ctx, CallTimeout(c))
	defer cancel()
	res, err := getOrLease.Run(ctx, c, []string{key}, token, hold.Milliseconds()).Slice()
	if err != nil {
		if !errors.Is(err, redis.Nil) && log != nil {
			log.Warn("cache get failed", "key", key, "error", err)
		}
		return false, nil
	}
	if len(res) != 2 {
		return false, nil
	}
	val, _ := res[1].(string)
	if found, _ := res[0].(int64); found == 0 {
		return false, &Lease{key: key, token: val}
	}
	if strings.HasPrefix(val, leasePrefix) {
		return false, nil // another reader is filling it
	}
	if json.Unmarshal([]byte(val), v) != nil {
		return false, nil
	}
	return true, nil
}

// FillLeased stores v under the lease's key for ttl if the lease still holds
// it, logging and ignoring failures.
func FillLeased(ctx context.Context, c *redis.Client, log Warner, l *Lease, v any, ttl time.Duration) {
	if l == nil {
		return
	}
	writeJSON(ctx, c, log, "fill", l.key, v, func(ctx context.Context, b []byte) error {
		return fillLease.Run(ctx, c, []string{l.key}, l.token, b, ttl.Milliseconds()).Err()
	})
}
