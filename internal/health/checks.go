package health

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/metrics"
	"strconv"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/client"
)

// Names of the standard checks, as they appear in reports.
const (
	NameDatabase = "database"
	NameCache    = "cache"
	NameTemporal = "temporal"
	NameDisk     = "disk"
	NameMemory   = "memory"
)

// Database is critical: PostgreSQL, the system of record, must answer a query.
func Database(pool *pgxpool.Pool) Check {
	return Check{Name: NameDatabase, Critical: true, Fn: func(ctx context.Context) (string, error) {
		var one int
		if err := pool.QueryRow(ctx, `SELECT 1`).Scan(&one); err != nil {
			return "", fmt.Errorf("query postgresql: %w", err)
		}
		return "", nil
	}}
}

// Cache pings Redis. It is not critical: Redis holds nothing that cannot be
// rebuilt (caches and rate-limit buckets), and every caller falls back to
// PostgreSQL without it, so a Redis outage reports "degraded" and the
// endpoint still answers 200. A nil client reports the cache as disabled.
func Cache(rc *redis.Client) Check {
	return Check{Name: NameCache, Critical: false, Fn: func(ctx context.Context) (string, error) {
		if rc == nil {
			return "disabled", nil
		}
		if err := rc.Ping(ctx).Err(); err != nil {
			return "", fmt.Errorf("ping redis: %w", err)
		}
		return "", nil
	}}
}

// Temporal is critical: without its frontend no saga starts or advances.
func Temporal(c client.Client) Check {
	return Check{Name: NameTemporal, Critical: true, Fn: func(ctx context.Context) (string, error) {
		if _, err := c.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
			return "", fmt.Errorf("temporal health: %w", err)
		}
		return "", nil
	}}
}

// Disk is critical: it fails when the file system holding path has less than
// minFreeMB megabytes available to unprivileged users (logs, temp files and
// the pod's ephemeral storage live there).
func Disk(path string, minFreeMB int) Check {
	return Check{Name: NameDisk, Critical: true, Fn: func(ctx context.Context) (string, error) {
		var st syscall.Statfs_t
		if err := syscall.Statfs(path, &st); err != nil {
			return "", fmt.Errorf("statfs %s: %w", path, err)
		}
		free := st.Bavail * uint64(st.Bsize) >> 20 // #nosec G115 -- a file system's block size is positive
		detail := fmt.Sprintf("%d MB free on %s", free, path)
		if free < uint64(max(minFreeMB, 0)) {
			return detail, fmt.Errorf("%d MB free on %s, below the %d MB minimum", free, path, minFreeMB)
		}
		return detail, nil
	}}
}

// Memory is critical: it fails when the Go heap holds more than maxHeapMB
// megabytes of live and unswept objects, which signals a leak or a load the
// process cannot carry. The detail also reports the resident set size.
func Memory(maxHeapMB int) Check {
	return Check{Name: NameMemory, Critical: true, Fn: func(ctx context.Context) (string, error) {
		heap := HeapBytes() >> 20
		detail := fmt.Sprintf("heap %d MB", heap)
		if rss, ok := RSSBytes(); ok {
			detail += fmt.Sprintf(", rss %d MB", rss>>20)
		}
		if heap > uint64(max(maxHeapMB, 0)) {
			return detail, fmt.Errorf("heap %d MB above the %d MB maximum", heap, maxHeapMB)
		}
		return detail, nil
	}}
}

// HeapBytes is the Go heap's object bytes, read without stopping the world.
func HeapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// RSSBytes is the process's resident set size, from /proc/self/statm; ok is
// false where that file does not exist.
func RSSBytes() (uint64, bool) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, false
	}
	pages, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0, false
	}
	return pages * uint64(os.Getpagesize()), true // #nosec G115 -- the page size is positive
}

// Reachable checks that an HTTP service answers GET url with a status below
// 500; any answer short of that proves the service up and routing, which is
// what a provider's reachability check needs. Payment provider checks passed
// to the gateway's deep check can be built with it.
func Reachable(name, url string, critical bool) Check {
	return Check{Name: name, Critical: critical, Fn: func(ctx context.Context) (string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return "", fmt.Errorf("request %s: %w", url, err)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", fmt.Errorf("get %s: %w", url, err)
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
		_ = res.Body.Close()
		if res.StatusCode >= 500 {
			return "", fmt.Errorf("get %s: status %d", url, res.StatusCode)
		}
		return fmt.Sprintf("status %d", res.StatusCode), nil
	}}
}
