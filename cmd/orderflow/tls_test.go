package main

import (
	"crypto/tls"
	"net"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow/api"
	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/tlsconf"
)

// The gateway's listeners, built from the environment as `orderflow api`
// builds them (API_TLS_*, TLS_MIN_VERSION), refuse a client that speaks at
// most TLS 1.2 by default and serve it with TLS_MIN_VERSION=1.2, the switch
// for an old load balancer; TLS 1.3 is served either way.
func TestGatewayListenersRefuseTLS12UnlessTLSMinVersionSaysSo(t *testing.T) {
	certs := testkit.Certs(t, "gateway.test")
	for _, tc := range []struct {
		env      map[string]string
		accept12 bool
	}{
		{map[string]string{}, false},
		{map[string]string{"TLS_MIN_VERSION": "1.3"}, false},
		{map[string]string{"TLS_MIN_VERSION": "1.2"}, true},
	} {
		tc.env["API_TLS_CERT_FILE"], tc.env["API_TLS_KEY_FILE"] = certs.Cert, certs.Key
		tc.env["OPERATOR_ADDR"] = "127.0.0.1:0"
		cfg, v := loadGateway(envOf(tc.env))
		require.NoError(t, v.Err())
		tlsCfg, err := tlsconf.Server(cfg.TLS)
		require.NoError(t, err)
		// The customer and the operator listener (/metrics, /codec) share it.
		for _, which := range []string{"api", "operator"} {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			hs := api.HTTPServer(ln.Addr().String(), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}), tlsCfg)
			go func() { _ = hs.ServeTLS(ln, "", "") }()
			for _, max := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
				c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: certs.Pool,
					ServerName: "gateway.test", MaxVersion: max}}}
				res, err := c.Get("https://" + ln.Addr().String() + "/")
				if err == nil {
					res.Body.Close()
				}
				want := max == tls.VersionTLS13 || tc.accept12
				assert.Equal(t, want, err == nil, "%s listener, TLS_MIN_VERSION=%q, client of at most %s: %v",
					which, tc.env["TLS_MIN_VERSION"], tls.VersionName(max), err)
				c.CloseIdleConnections()
			}
			_ = hs.Close()
		}
	}
}

// TLS_MIN_VERSION reaches every client a process configures: the worker's
// and migrate's PostgreSQL and Redis (boot.Config) and Temporal, the
// worker's SMTP; a value other than 1.2 or 1.3 stops start-up naming it.
func TestTLSMinVersionReachesEveryClient(t *testing.T) {
	w, v := loadWorker(envOf(map[string]string{"TLS_MIN_VERSION": "1.2"}))
	require.NoError(t, v.Err())
	assert.Equal(t, uint16(tls.VersionTLS12), w.Boot.TLSMinVersion)
	assert.Equal(t, uint16(tls.VersionTLS12), w.Boot.Temporal.TLS.MinVersion)
	assert.Equal(t, uint16(tls.VersionTLS12), w.Messaging.TLSMinVersion)
	g, v := loadGateway(envOf(map[string]string{}))
	require.NoError(t, v.Err())
	assert.Equal(t, uint16(tls.VersionTLS13), g.Boot.TLSMinVersion)
	assert.Equal(t, uint16(tls.VersionTLS13), g.Boot.Temporal.TLS.MinVersion)
	assert.Equal(t, uint16(tls.VersionTLS13), g.TLS.MinVersion)
	m, v := loadMigrate(envOf(map[string]string{"TLS_MIN_VERSION": "1.2"}))
	require.NoError(t, v.Err())
	assert.Equal(t, uint16(tls.VersionTLS12), m.TLSMinVersion)
	_, v = loadGateway(envOf(map[string]string{"TLS_MIN_VERSION": "1.1"}))
	require.ErrorContains(t, v.Err(), "TLS_MIN_VERSION")
}
