package api

import (
	"crypto/tls"
	"net/http"
	"time"
)

// Timeouts of the gateway's connections. A client must send its headers
// within ReadHeaderTimeout and its whole request (the body is at most
// BodyLimit) within ReadTimeout, so a slow sender cannot hold a connection
// and a goroutine forever; an idle keep-alive connection is closed after
// IdleTimeout. There is no write timeout: each handler bounds its own work
// (requestTimeout, the health budgets).
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 30 * time.Second
	IdleTimeout       = 2 * time.Minute
)

// HTTPServer returns the gateway's server on addr for h (Server.Handler),
// serving HTTPS with tlsConfig when it is not nil (tlsconf.Server builds it
// from API_TLS_CERT_FILE and API_TLS_KEY_FILE; Serve with ServeTLS or
// ListenAndServeTLS("", "")). Over TLS every answer carries
// Strict-Transport-Security.
func HTTPServer(addr string, h http.Handler, tlsConfig *tls.Config) *http.Server {
	return &http.Server{Addr: addr, Handler: h, TLSConfig: tlsConfig,
		ReadHeaderTimeout: ReadHeaderTimeout, ReadTimeout: ReadTimeout, IdleTimeout: IdleTimeout}
}
