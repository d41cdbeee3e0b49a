package api

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow/devtools/testkit"
)

func realIP(t *testing.T, trusted []string, peer string, header map[string]string) string {
	t.Helper()
	var ps []netip.Prefix
	for _, s := range trusted {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	e := echo.New()
	e.IPExtractor = ipExtractor(ps)
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.RemoteAddr = peer
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return e.NewContext(req, httptest.NewRecorder()).RealIP()
}

func TestForwardedHeadersAreIgnoredFromAnUntrustedPeer(t *testing.T) {
	forged := map[string]string{"X-Forwarded-For": "203.0.113.7", "X-Real-IP": "203.0.113.8", "Forwarded": "for=203.0.113.9"}
	for _, peer := range []string{"127.0.0.1:5000", "10.1.2.3:5000", "192.168.1.1:5000", "169.254.1.1:5000", "[::1]:5000", "198.51.100.1:5000"} {
		host, _, _ := net.SplitHostPort(peer)
		assert.Equal(t, host, realIP(t, nil, peer, forged), "no trusted proxies: peer %s", peer)
		assert.Equal(t, host, realIP(t, []string{"10.9.0.0/16"}, peer, forged), "peer %s is not in the trusted range", peer)
	}
}

func TestATrustedProxysForwardedAddressIsTheClient(t *testing.T) {
	trusted := []string{"10.9.0.0/16", "2001:db8:ffff::/48"}
	assert.Equal(t, "203.0.113.7", realIP(t, trusted, "10.9.4.5:5000", map[string]string{"X-Forwarded-For": "203.0.113.7"}))
	assert.Equal(t, "203.0.113.7", realIP(t, trusted, "[2001:db8:ffff::1]:5000", map[string]string{"X-Forwarded-For": "203.0.113.7"}))
	// A client's own forged entry comes before the address the proxy saw: the
	// last untrusted hop counts, not the first.
	assert.Equal(t, "198.51.100.4", realIP(t, trusted, "10.9.4.5:5000", map[string]string{"X-Forwarded-For": "203.0.113.7, 198.51.100.4"}))
	// Proxies in a chain: every trusted hop is skipped.
	assert.Equal(t, "198.51.100.4", realIP(t, trusted, "10.9.4.5:5000", map[string]string{"X-Forwarded-For": "203.0.113.7, 198.51.100.4, 10.9.1.1"}))
	// X-Real-IP is not read (the ingress sets X-Forwarded-For).
	assert.Equal(t, "10.9.4.5", realIP(t, trusted, "10.9.4.5:5000", map[string]string{"X-Real-IP": "203.0.113.7"}))
}

// fromLoopback is a client whose connections come from a loopback address no
// other test or run uses (the test Redis keeps buckets across runs).
func fromLoopback(t *testing.T) (*http.Client, string) {
	t.Helper()
	ip := net.IPv4(127, byte(1+rand.IntN(250)), byte(rand.IntN(256)), byte(1+rand.IntN(250)))
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return d.DialContext(ctx, "tcp4", addr)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}, ip.String()
}

func get(t *testing.T, c *http.Client, url string, header map[string]string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := c.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	return res.StatusCode
}

func TestAnUntrustedPeerForgingXForwardedForIsStillRateLimited(t *testing.T) {
	g := newGateway(t, testkit.Redis(t), func(s *Server) {
		limits(100, 5, time.Hour)(s)
		s.TrustedProxies = nil // the default: no proxy is trusted
	})
	c, _ := fromLoopback(t)
	statuses := make([]int, 0, 10)
	for i := 0; i < 10; i++ {
		// A fresh address in every forwarded header, and no token.
		forged := fmt.Sprintf("203.0.113.%d, 2001:db8::%s", i+1, uuid.NewString()[:4])
		statuses = append(statuses, get(t, c, g.url+"/v1/products/x", map[string]string{
			"X-Forwarded-For": forged, "X-Real-IP": forged, "Forwarded": "for=" + forged}))
	}
	assert.Equal(t, []int{401, 401, 401, 401, 401, 429, 429, 429, 429, 429}, statuses,
		"the peer's address is charged whatever the headers say")
}

func TestATrustedProxysClientsAreLimitedByTheForwardedAddress(t *testing.T) {
	g := newGateway(t, testkit.Redis(t), func(s *Server) {
		limits(100, 3, time.Hour)(s)
		s.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	c, _ := fromLoopback(t)
	client := clientIP()
	for i := 1; i <= 3; i++ {
		require.Equal(t, http.StatusUnauthorized, get(t, c, g.url+"/v1/products/x", map[string]string{"X-Forwarded-For": client}), "request %d", i)
	}
	assert.Equal(t, http.StatusTooManyRequests, get(t, c, g.url+"/v1/products/x", map[string]string{"X-Forwarded-For": client}))
	// The proxy itself is not charged for its clients: another client through it passes.
	assert.Equal(t, http.StatusUnauthorized, get(t, c, g.url+"/v1/products/x", map[string]string{"X-Forwarded-For": clientIP()}))
}
