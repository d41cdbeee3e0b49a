package api

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"
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

// ShutdownTimeout bounds how long requests in flight may finish once the
// gateway stops accepting new ones.
const ShutdownTimeout = 10 * time.Second

// Serve runs the customer server and, when not nil, the operator server
// until ctx ends (SIGTERM); a failure to listen is returned. Then it
// drains, in this order: readiness fails at once (Drain: GET /health/ready
// answers 503); after drainDelay, time for the load balancer's checks to
// take this instance out, the customer server closes its listener and lets
// requests in flight finish (up to ShutdownTimeout); the operator server,
// which Prometheus scrapes meanwhile, stops last.
func (s *Server) Serve(ctx context.Context, customer, operator *http.Server, drainDelay time.Duration) error {
	servers := []*http.Server{customer}
	if operator != nil {
		servers = append(servers, operator)
	}
	errc := make(chan error, len(servers))
	for _, hs := range servers {
		go func() {
			var err error
			if hs.TLSConfig != nil {
				err = hs.ListenAndServeTLS("", "")
			} else {
				err = hs.ListenAndServe()
			}
			if !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve %s: %w", hs.Addr, err)
			}
		}()
	}
	select {
	case err := <-errc:
		for _, hs := range servers {
			_ = hs.Close()
		}
		return err
	case <-ctx.Done():
	}
	s.Drain()
	s.Log.Info("draining: readiness fails; stopping after the drain delay", zap.Duration("drain_delay", drainDelay))
	if drainDelay > 0 {
		time.Sleep(drainDelay)
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	var errs []error
	for _, hs := range servers {
		if err := hs.Shutdown(sctx); err != nil {
			errs = append(errs, fmt.Errorf("shutdown %s: %w", hs.Addr, err))
		}
	}
	s.Log.Info("gateway stopped")
	return errors.Join(errs...)
}
