package ha

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow/devtools/testkit"
)

// fakeGateway stands in for a gateway behind deploy/haproxy/gateway.cfg:
// /health/ready answers 200 while ready, and once cut every request hangs,
// as on a host whose link went down (no answer, no reset).
type fakeGateway struct {
	name  string
	ready atomic.Bool
	cut   chan struct{}
	// cutOnOrder cuts the gateway as it takes a placement: the request is
	// in flight on it when its host is lost.
	cutOnOrder bool
	cutOnce    atomic.Bool
}

func (g *fakeGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	if r.URL.Path == "/v1/orders" && g.cutOnOrder && g.cutOnce.CompareAndSwap(false, true) {
		close(g.cut)
	}
	select {
	case <-g.cut:
		<-r.Context().Done() // cut off: never answers
		return
	default:
	}
	if strings.HasPrefix(r.URL.Path, "/health/ready") && !g.ready.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	fmt.Fprint(w, g.name)
}

// A placement in flight on a gateway that is cut off (its health checks
// then time out and the balancer marks it down) is retried on the other
// gateway, not aborted: the client gets the other gateway's answer. With
// on-marked-down shutdown-sessions the balancer closed such a request's
// connection as it marked the gateway down (the short chaos-ha's cut
// gateway RTO of 1.7 s).
func TestBalancerRetriesARequestHeldByACutGatewayOnTheOther(t *testing.T) {
	if _, err := exec.LookPath("haproxy"); err != nil {
		t.Fatal("haproxy is not installed (devtools/install.sh haproxy; make test installs it)")
	}
	gw1 := &fakeGateway{name: "gateway-1", cut: make(chan struct{}), cutOnOrder: true}
	gw2 := &fakeGateway{name: "gateway-2", cut: make(chan struct{})}
	gw1.ready.Store(true) // gateway-2 joins once gateway-1 holds the placement
	addrs := make([]string, 2)
	for i, g := range []*fakeGateway{gw1, gw2} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		srv := &http.Server{Handler: g, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { _ = srv.Close() })
		addrs[i] = ln.Addr().String()
	}
	lb := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
	stats := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	cmd := exec.Command("haproxy", "-db", "-f", filepath.Join(root, "deploy", "haproxy", "gateway.cfg"))
	cmd.Env = append(os.Environ(), "GATEWAY_LB_ADDR="+lb, "GATEWAY_LB_STATS_ADDR="+stats,
		"GATEWAY_1="+addrs[0], "GATEWAY_2="+addrs[1])
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	client := &http.Client{Timeout: 20 * time.Second}
	// HAProxy starts with both servers up: wait until its checks have
	// taken gateway-2 out, so the placement goes to gateway-1.
	require.Eventually(t, func() bool {
		st, err := balancerStatus(client, stats)
		return err == nil && st["gateway-1"] == "UP" && st["gateway-2"] == "DOWN"
	}, 20*time.Second, 100*time.Millisecond, "gateway-1 alone in rotation")

	go func() {
		<-gw1.cut
		gw2.ready.Store(true)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+lb+"/v1/orders", strings.NewReader(`{"customer_id":"c-1"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	require.NoError(t, err, "the balancer aborted the request held by the cut gateway")
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	assert.Equal(t, "gateway-2", string(body), "answered by the other gateway")
}

// balancerStatus reads the gateways backend's server states from the
// balancer's status page (GET /stats;csv: proxy name, server name, ...,
// the status in the 18th column).
func balancerStatus(c *http.Client, stats string) (map[string]string, error) {
	resp, err := c.Get("http://" + stats + "/stats;csv")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ",")
		if len(f) > 17 && f[0] == "gateways" {
			out[f[1]] = f[17]
		}
	}
	return out, nil
}
