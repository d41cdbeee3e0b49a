package api

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/tlsconf"
)

// The gateway built as `orderflow api` builds it with API_TLS_CERT_FILE and
// API_TLS_KEY_FILE (a certificate the test generated) answers HTTPS with
// Strict-Transport-Security and the other security headers, on TLS 1.3
// only by default (TLS_MIN_VERSION); plain HTTP to the same port is refused.
func TestGatewayServesHTTPSWithHSTSFromCertificateFiles(t *testing.T) {
	certs := testkit.Certs(t, "gateway.test")
	tlsCfg, err := tlsconf.Server(tlsconf.ServerConfig{CertFile: certs.Cert, KeyFile: certs.Key})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := HTTPServer(ln.Addr().String(), (&Server{Log: zap.NewNop()}).Handler(), tlsCfg)
	go func() { _ = hs.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = hs.Close() })
	url := "https://" + ln.Addr().String()

	get := func(max uint16) (*http.Response, error) {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: certs.Pool, ServerName: "gateway.test", MaxVersion: max}}}
		defer c.CloseIdleConnections()
		return c.Get(url + "/health/live")
	}
	for _, v := range []uint16{tls.VersionTLS13} {
		res, err := get(v)
		if err != nil {
			t.Fatalf("HTTPS GET with TLS up to %s: %v", tls.VersionName(v), err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || res.TLS == nil || res.TLS.Version != v {
			t.Fatalf("TLS up to %s: %d over %v", tls.VersionName(v), res.StatusCode, res.TLS)
		}
		if got := res.Header.Get(HeaderHSTS); got != "max-age=31536000; includeSubDomains" {
			t.Errorf("%s: %s = %q", tls.VersionName(v), HeaderHSTS, got)
		}
		for k, want := range wantSecurityHeaders {
			if got := res.Header.Get(k); got != want {
				t.Errorf("%s: %s = %q, want %q", tls.VersionName(v), k, got, want)
			}
		}
	}
	for _, v := range []uint16{tls.VersionTLS11, tls.VersionTLS12} {
		if res, err := get(v); err == nil {
			res.Body.Close()
			t.Fatalf("a client of at most %s was served", tls.VersionName(v))
		}
	}
	res, err := http.Get("http://" + ln.Addr().String() + "/health/live")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "HTTPS") {
		t.Fatalf("plain HTTP to the HTTPS port: %d %q, want net/http's 400", res.StatusCode, b)
	}
}
