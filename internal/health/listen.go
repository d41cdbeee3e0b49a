package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// Listen serves c on GET /health (and /health/ready, its alias), Live on
// GET /health/live and, when metrics is not nil, metrics on GET /metrics, at
// addr, for processes that have no HTTP server of their own, such as workers. It returns
// once the address is bound, with the bound address (useful with port 0), and
// shuts the listener down when ctx ends. A failure to bind is returned.
func Listen(ctx context.Context, addr string, c *Checker, metrics http.Handler, log *zap.Logger) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("health listener %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /health", c)
	mux.Handle("GET /health/ready", c)
	mux.HandleFunc("GET /health/live", Live)
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("health listener stopped", zap.String("addr", addr), zap.Error(err))
		}
	}()
	// #nosec G118 -- ctx has ended: the shutdown's grace needs a context of its own.
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	log.Info("health listening", zap.Stringer("addr", ln.Addr()))
	return ln.Addr(), nil
}
