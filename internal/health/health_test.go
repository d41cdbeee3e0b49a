package health_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/health"
)

// hungServer accepts connections and never answers, like a dependency whose
// process is stuck.
func hungServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				_ = c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	return ln.Addr().String()
}

// refusedURL is an address where nothing listens.
func refusedURL(t *testing.T) string {
	return fmt.Sprintf("http://127.0.0.1:%d/", testkit.FreePort(t))
}

func get(t *testing.T, h http.Handler) (int, health.Report) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/health", nil))
	var rep health.Report
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &rep), rec.Body.String())
	assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
	return rec.Code, rep
}

func TestCheckerStatusFollowsTheCriticalChecks(t *testing.T) {
	pool, rc, tc := testkit.DB(t), testkit.Redis(t), testkit.Temporal(t)
	hung := redis.NewClient(&redis.Options{Addr: hungServer(t), MaxRetries: -1})
	t.Cleanup(func() { _ = hung.Close() })
	// pgx gives up with the context's deadline, at the moment the budget ends.
	hungPool, err := pgxpool.New(context.Background(), "postgres://x@"+hungServer(t)+"/x?sslmode=disable")
	require.NoError(t, err)
	t.Cleanup(hungPool.Close)
	// Something live on the heap, so the zero-megabyte limit is exceeded.
	ballast := make([]byte, 8<<20)
	defer runtime.KeepAlive(ballast)

	healthy := []health.Check{health.Database(pool), health.Cache(rc), health.Temporal(tc),
		health.Disk("/", 0), health.Memory(1 << 20)}
	cases := []struct {
		name      string
		checks    []health.Check
		budget    time.Duration
		code      int
		status    string
		failing   []string
		errSubstr map[string]string
	}{
		{name: "every check passes", checks: healthy, code: http.StatusOK, status: health.StatusOK},
		{name: "a hung cache times out and only degrades",
			checks: []health.Check{health.Database(pool), health.Temporal(tc), health.Disk("/", 0), health.Memory(1 << 20), health.Cache(hung)}, budget: 300 * time.Millisecond,
			code: http.StatusOK, status: health.StatusDegraded, failing: []string{"cache"},
			errSubstr: map[string]string{"cache": "timed out after 300ms"}},
		{name: "a hung database times out and fails",
			checks: []health.Check{health.Database(hungPool), health.Cache(rc)}, budget: 300 * time.Millisecond,
			code: http.StatusServiceUnavailable, status: health.StatusFail, failing: []string{"database"},
			errSubstr: map[string]string{"database": "timed out after 300ms"}},
		{name: "too little free disk fails",
			checks: append(healthy[:3:3], health.Disk("/", 1<<40)),
			code:   http.StatusServiceUnavailable, status: health.StatusFail, failing: []string{"disk"},
			errSubstr: map[string]string{"disk": "below the 1099511627776 MB minimum"}},
		{name: "a missing disk path fails",
			checks: []health.Check{health.Disk("/no/such/dir", 0)},
			code:   http.StatusServiceUnavailable, status: health.StatusFail, failing: []string{"disk"},
			errSubstr: map[string]string{"disk": "statfs /no/such/dir"}},
		{name: "a heap above the limit fails",
			checks: []health.Check{health.Database(pool), health.Memory(0)},
			code:   http.StatusServiceUnavailable, status: health.StatusFail, failing: []string{"memory"},
			errSubstr: map[string]string{"memory": "above the 0 MB maximum"}},
		{name: "an unreachable critical provider fails, an unreachable optional one degrades",
			checks: []health.Check{health.Reachable("payment:a", refusedURL(t), true), health.Reachable("payment:b", refusedURL(t), false)},
			code:   http.StatusServiceUnavailable, status: health.StatusFail, failing: []string{"payment:a", "payment:b"},
			errSubstr: map[string]string{"payment:a": "connection refused", "payment:b": "connection refused"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			budget := tc.budget
			if budget == 0 {
				budget = 3 * time.Second
			}
			code, rep := get(t, health.New(budget, tc.checks...))
			assert.Equal(t, tc.code, code)
			assert.Equal(t, tc.status, rep.Status)
			assert.Equal(t, tc.failing, rep.Failing)
			require.Len(t, rep.Checks, len(tc.checks))
			for _, ch := range tc.checks {
				r := rep.Checks[ch.Name]
				assert.Equal(t, ch.Critical, r.Critical, ch.Name)
				want, failing := tc.errSubstr[ch.Name]
				switch {
				case !failing:
					assert.Equal(t, health.StatusOK, r.Status, "%s: %s", ch.Name, r.Error)
					assert.Empty(t, r.Error)
				case ch.Critical:
					assert.Equal(t, health.StatusFail, r.Status, ch.Name)
				default:
					assert.Equal(t, health.StatusDegraded, r.Status, ch.Name)
				}
				if failing {
					assert.Contains(t, r.Error, want, ch.Name)
				}
				assert.GreaterOrEqual(t, r.LatencyMS, 0.0)
			}
			if m, ok := rep.Checks["memory"]; ok {
				assert.Contains(t, m.Detail, "rss ", "memory reports the resident set size")
			}
		})
	}
}

func TestAddedCheckRunsAndReplacesOneOfTheSameName(t *testing.T) {
	c := health.New(time.Second, health.Disk("/", 0))
	c.Add(health.Reachable("payment:a", refusedURL(t), false))
	c.Add(health.Disk("/", 1<<40))
	code, rep := get(t, c)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, []string{"disk", "payment:a"}, rep.Failing)
	assert.Len(t, rep.Checks, 2)
}

func TestPanickingCheckFailsInsteadOfCrashing(t *testing.T) {
	c := health.New(time.Second, health.Check{Name: "broken", Critical: true, Fn: func(context.Context) (string, error) {
		var m map[string]int
		//lint:ignore SA5000 the nil map write is the bug this test plants
		m["x"]++ // a nil map write, as a buggy check would do
		return "", nil
	}})
	code, rep := get(t, c)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, rep.Checks["broken"].Error, "check panicked")
}

func TestListenServesHealthUntilItsContextEnds(t *testing.T) {
	pool := testkit.DB(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, err := health.Listen(ctx, "127.0.0.1:0", health.New(3*time.Second, health.Database(pool)), nil, zaptest.NewLogger(t))
	require.NoError(t, err)

	res, err := http.Get("http://" + addr.String() + "/health/live")
	require.NoError(t, err)
	_ = res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode)
	for _, path := range []string{"/health", "/health/ready"} {
		res, err := http.Get("http://" + addr.String() + path)
		require.NoError(t, err)
		b, _ := io.ReadAll(res.Body)
		_ = res.Body.Close()
		assert.Equal(t, http.StatusOK, res.StatusCode, string(b))
		assert.True(t, strings.Contains(string(b), `"database":{"status":"ok"`), string(b))
	}

	_, err = health.Listen(ctx, addr.String(), health.New(time.Second), nil, zaptest.NewLogger(t))
	assert.ErrorContains(t, err, "address already in use", "a taken address is an error")

	cancel()
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", addr.String())
		if err == nil {
			_ = c.Close()
		}
		return err != nil
	}, 5*time.Second, 20*time.Millisecond, "the listener closes with its context")
}
