// Package cache holds orderflow's Redis tiers. Redis holds nothing that cannot
// be rebuilt, so every call here is bounded and best-effort: a slow or absent
// Redis turns into a cache miss, never into a failed request.
package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderflow/orderflow/internal/tlsconf"
)

// Timeout is the default bound on every cache call (a setting sets it per
// client through OpenTimeout).
const Timeout = 500 * time.Millisecond

// Default TTLs of the design's cache tiers, used where no configuration
// (Tiers) is given; internal/config declares the same defaults, and its
// tests check they agree.
const (
	CatalogTTL   = 5 * time.Minute
	InventoryTTL = 30 * time.Second
	OrderTTL     = 10 * time.Minute
	SessionTTL   = 30 * time.Minute
)

// Open parses a redis:// URL and returns a client whose calls are bounded by
// Timeout. It does not fail when the server is down: the cache is optional at
// run time.
func Open(url string) (*redis.Client, error) { return OpenTimeout(url, Timeout) }

// OpenTimeout is Open with every call of the client (dial, read, write and
// the whole of each cache function here) bounded by timeout.
func OpenTimeout(url string, timeout time.Duration) (*redis.Client, error) {
	return Connect(Config{URL: url, Timeout: timeout})
}

// Config says how to reach Redis: a redis:// URL, or, with Sentinels and
// MasterName, the master the Sentinels name (the URL then gives only the
// password and the database number).
type Config struct {
	URL        string
	Sentinels  []string // host:port of each Sentinel (REDIS_SENTINELS)
	MasterName string   // the master they monitor (REDIS_MASTER_NAME)
	Timeout    time.Duration
	// TLSMinVersion is the oldest TLS version offered with a rediss:// URL
	// (TLS_MIN_VERSION; zero: tlsconf's default, TLS 1.3).
	TLSMinVersion uint16
}

// Connect returns a client whose every call (dial, read, write and the whole
// of each cache function here) is bounded by cfg.Timeout (default Timeout).
// With Sentinels it is go-redis's failover client: it asks the Sentinels for
// the master, and when they promote a replica it drops its connections to
// the old master and dials the new one. It does not fail when Redis is down:
// the cache is optional at run time; it fails on a bad URL, or when only one
// of Sentinels and MasterName is set.
func Connect(cfg Config) (*redis.Client, error) {
	opt, err := redis.ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("parse redis url: %w", err)
	}
	if opt.TLSConfig != nil {
		opt.TLSConfig.MinVersion = tlsconf.Min(cfg.TLSMinVersion)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = Timeout
	}
	if (len(cfg.Sentinels) > 0) != (cfg.MasterName != "") {
		return nil, fmt.Errorf("redis: REDIS_SENTINELS (%d given) and REDIS_MASTER_NAME (%q) go together", len(cfg.Sentinels), cfg.MasterName)
	}
	if len(cfg.Sentinels) == 0 {
		opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = timeout, timeout, timeout
		// Context deadlines bound the socket calls too, so a caller's shorter
		// deadline is honoured.
		opt.ContextTimeoutEnabled = true
		opt.MaxRetries = 0
		return redis.NewClient(opt), nil
	}
	return redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName: cfg.MasterName, SentinelAddrs: cfg.Sentinels,
		Username: opt.Username, Password: opt.Password, DB: opt.DB, TLSConfig: opt.TLSConfig,
		DialTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout,
		ContextTimeoutEnabled: true, MaxRetries: 0, PoolSize: opt.PoolSize,
	}), nil
}

// Trace gives every command and pipeline of c a span of tp, a child of the
// span in the caller's context, named by the command; the span does not hold
// the command's arguments (cached values, keys with ids). A nil tp (tracing
// off) installs nothing.
func Trace(c *redis.Client, tp trace.TracerProvider) error {
	if tp == nil {
		return nil
	}
	if err := redisotel.InstrumentTracing(c, redisotel.WithTracerProvider(tp), redisotel.WithDBStatement(false)); err != nil {
		return fmt.Errorf("redis tracing: %w", err)
	}
	return nil
}

// CallTimeout is the bound on one call of c: the read timeout it was opened
// with.
func CallTimeout(c *redis.Client) time.Duration {
	if d := c.Options().ReadTimeout; d > 0 {
		return d
	}
	return Timeout
}

// Warner is the one logging call the cache makes; the Temporal SDK's loggers
// and logging.Temporal satisfy it.
type Warner interface {
	Warn(msg string, keyvals ...any)
}

// ProductKey is the catalog tier's key for a product.
func ProductKey(sku string) string { return "catalog:product:" + sku }

// InventoryKey is the inventory tier's key for a SKU's counts.
func InventoryKey(sku string) string { return "inventory:" + sku }

// OrderKey is the hot-order tier's key for an order's API view. Every write
// of an order's status deletes it.
func OrderKey(orderID string) string { return "order:" + orderID }

// GetJSON loads key into v and reports whether it was there. Errors other than
// a miss are logged and reported as a miss.
func GetJSON(ctx context.Context, c *redis.Client, log Warner, key string, v any) bool {
	if c == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, CallTimeout(c))
	defer cancel()
	b, err := c.Get(ctx, key).Bytes()
	if err != nil {
		if !errors.Is(err, redis.Nil) && log != nil {
			log.Warn("cache get failed", "key", key, "error", err)
		}
		return false
	}
	return json.Unmarshal(b, v) == nil
}

// GetManyJSON loads several keys in one round trip. decode is called for
// each key that was there, with its index; failures count as misses. Keys
// are read with one MGET per hash slot (all of them in one pipeline), so
// the same call works against Redis Cluster, which refuses a multi-key
// command over several slots (CROSSSLOT).
func GetManyJSON(ctx context.Context, c *redis.Client, log Warner, keys []string, decode func(i int, raw []byte) error) {
	if c == nil || len(keys) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, CallTimeout(c))
	defer cancel()
	groups := BySlot(keys)
	cmds := make([]*redis.SliceCmd, len(groups))
	_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for g, idx := range groups {
			cmds[g] = p.MGet(ctx, pick(keys, idx)...)
		}
		return nil
	})
	if err != nil {
		if log != nil {
			log.Warn("cache mget failed", "keys", len(keys), "error", err)
		}
		return
	}
	for g, idx := range groups {
		for j, v := range cmds[g].Val() {
			if s, ok := v.(string); ok {
				_ = decode(idx[j], []byte(s))
			}
		}
	}
}

// SetJSON stores v under key for ttl, logging and ignoring failures.
func SetJSON(ctx context.Context, c *redis.Client, log Warner, key string, v any, ttl time.Duration) {
	writeJSON(ctx, c, log, "set", key, v, func(ctx context.Context, b []byte) error {
		return c.Set(ctx, key, b, ttl).Err()
	})
}

// writeJSON encodes v and hands it to write within the client's call
// timeout; a failure is logged as the cache's "<what> failed" and ignored.
func writeJSON(ctx context.Context, c *redis.Client, log Warner, what, key string, v any, write func(context.Context, []byte) error) {
	if c == nil {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, CallTimeout(c))
	defer cancel()
	if err := write(ctx, b); err != nil && !errors.Is(err, redis.Nil) && log != nil {
		log.Warn("cache "+what+" failed", "key", key, "error", err)
	}
}

// Del removes keys, logging and ignoring failures; the short TTLs bound any
// staleness a failed delete leaves behind. As GetManyJSON, it sends one DEL
// per hash slot, in one pipeline, so it works against Redis Cluster.
func Del(ctx context.Context, c *redis.Client, log Warner, keys ...string) {
	if c == nil || len(keys) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, CallTimeout(c))
	defer cancel()
	_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, idx := range BySlot(keys) {
			p.Del(ctx, pick(keys, idx)...)
		}
		return nil
	})
	if err != nil && log != nil {
		log.Warn("cache delete failed", "keys", keys, "error", err)
	}
}

// Tiers sets the cache tiers' TTLs and the bound on every cache call; a
// zero field takes the default above. internal/config declares the settings
// that fill it.
type Tiers struct {
	CatalogTTL   time.Duration
	InventoryTTL time.Duration
	OrderTTL     time.Duration
	CallTimeout  time.Duration
}
