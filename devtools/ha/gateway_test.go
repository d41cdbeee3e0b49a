package ha

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/auth"
)

// load sends GET /v1/products through the balancer back to back until
// stopped, counting answers other than 200 (and transport errors).
type load struct {
	ok, bad atomic.Int64
	stop    chan struct{}
	wg      sync.WaitGroup
}

func startLoad(url, bearer string, workers int) *load {
	l := &load{stop: make(chan struct{})}
	c := &http.Client{Timeout: 10 * time.Second}
	for range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				req, _ := http.NewRequest(http.MethodGet, url+"/v1/products", nil)
				req.Header.Set("Authorization", bearer)
				res, err := c.Do(req)
				if err == nil {
					_ = res.Body.Close()
				}
				if err != nil || res.StatusCode != http.StatusOK {
					l.bad.Add(1)
				} else {
					l.ok.Add(1)
				}
			}
		}()
	}
	return l
}

func (l *load) end() (ok, bad int64) {
	close(l.stop)
	l.wg.Wait()
	return l.ok.Load(), l.bad.Load()
}

func TestGatewaysBehindHAProxyDrainWithoutErrorsAndRouteAroundALostOne(t *testing.T) {
	root, base := haEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tok := testkit.Auth(t)
	testkit.DB(t) // migrated
	g := &Gateways{Root: root, Data: t.TempDir(), PortBase: base + 500, Binary: testkit.Binary(t), Env: []string{
		"DATABASE_URL=" + testkit.Require(t, testkit.EnvDatabase), "REDIS_URL=" + testkit.Require(t, testkit.EnvRedis),
		"TEMPORAL_ADDRESS=" + testkit.Require(t, testkit.EnvTemporal), "AUTH_HS256_SECRET=" + tok.Config.HS256Secret,
		"ORDERFLOW_REGION=ha-test", "LOG_LEVEL=warn", "RATE_LIMIT_ENABLED=false"}}
	bringUp(ctx, t, g)
	bearer := tok.Bearer("ha-test", auth.RoleCustomer)
	// Operators' endpoints are on the operator listener, not behind the balancer.
	for path, want := range map[string]int{"/metrics": http.StatusNotFound, "/codec/session": http.StatusNotFound, "/health/ready": http.StatusOK} {
		res, err := http.Get(g.URL() + path)
		if err != nil || res.StatusCode != want {
			t.Fatalf("GET %s through the balancer = %v, %v; want %d", path, res.StatusCode, err, want)
		}
		_ = res.Body.Close()
	}
	if res, err := http.Get(g.OperatorURL(0) + "/metrics"); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics on the operator listener = %v, %v", res, err)
	}

	// A gateway stopped (SIGTERM) drains: not one request fails.
	l := startLoad(g.URL(), bearer, 4)
	time.Sleep(500 * time.Millisecond) // some load before the stop, for the count below
	if err := g.Stack().Stop(GatewayName(0)); err != nil {
		t.Fatal(err)
	}
	ok, bad := l.end()
	if bad != 0 || ok == 0 {
		t.Fatalf("while gateway-1 drained: %d ok, %d failed; want none failed", ok, bad)
	}
	t.Logf("gateway-1 drained under load: %d requests, none failed", ok)

	if err := g.Stack().Start(ctx, GatewayName(0)); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(ctx, g.Serving(0, 1), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	// A gateway killed: the balancer retries refused connections on the
	// other one and takes the dead one out.
	l = startLoad(g.URL(), bearer, 4)
	time.Sleep(500 * time.Millisecond)
	if err := g.Stack().Kill(GatewayName(1)); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	if err := waitFor(ctx, g.Serving(0), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	out := time.Since(killed)
	time.Sleep(500 * time.Millisecond)
	ok, bad = l.end()
	if ok == 0 {
		t.Fatal("no request succeeded after gateway-2 was killed")
	}
	t.Logf("gateway-2 killed under load: %d ok, %d failed; out of rotation after %s", ok, bad, out.Round(100*time.Millisecond))
	if bad != 0 {
		t.Errorf("%d requests failed though the balancer retries a refused connection", bad)
	}

	// No gateway left: the balancer's own answer is the gateways' JSON 503
	// with Retry-After, not HAProxy's page.
	if err := g.Stack().Kill(GatewayName(0)); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(ctx, checkFunc{"no gateway in rotation", func(context.Context) error {
		res, err := http.Get(g.URL() + "/v1/orders/none")
		if err != nil {
			return err
		}
		defer res.Body.Close()
		var body struct {
			Error struct{ Code string } `json:"error"`
		}
		if res.StatusCode != http.StatusServiceUnavailable {
			return fmt.Errorf("status %d", res.StatusCode)
		}
		if err := json.NewDecoder(res.Body).Decode(&body); err != nil || body.Error.Code == "" {
			return fmt.Errorf("503 without the JSON error body (%v)", err)
		}
		if res.Header.Get("Retry-After") == "" {
			return errors.New("503 without Retry-After")
		}
		return nil
	}}, 30*time.Second); err != nil {
		t.Fatal(err)
	}
}
