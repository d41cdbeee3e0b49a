// Package boot is the start-up every orderflow process shares, the
// gateway, the workers, the operator tools and the dev tools alike: its
// logger, its clients (one PostgreSQL pool, one Redis client, one Temporal
// client, the PII keyring), an optional pprof listener, and serving an HTTP
// server until the context ends. It lives in internal/ rather than
// cmd/internal so that the dev tools' binary (devtools/cmd) starts the same
// way; it imports plumbing only, never an area.
package boot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	_ "net/http/pprof" // #nosec G108 -- on http.DefaultServeMux, which only the pprof address (off by default) serves
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/orderflow/orderflow/internal/cache"
	"github.com/orderflow/orderflow/internal/db"
	"github.com/orderflow/orderflow/internal/logging"
	"github.com/orderflow/orderflow/internal/pii"
	"github.com/orderflow/orderflow/internal/telemetry"
	"github.com/orderflow/orderflow/internal/temporal"
)

// Logger is a process's logger, every line tagged with its component.
func Logger(c Config, component string) (*zap.Logger, error) {
	l, err := logging.New(c.LogFormat, c.LogLevel)
	if err != nil {
		return nil, err
	}
	return l.With(zap.String("component", component)), nil
}

// Pprof serves net/http/pprof on addr (API_PPROF_ADDR, WORKER_PPROF_ADDR;
// e.g. 127.0.0.1:6060) for profiling under load; an empty addr is off.
func Pprof(log *zap.Logger, addr string) {
	if addr == "" {
		return
	}
	go func() {
		log.Info("pprof listening", zap.String("addr", addr))
		hs := &http.Server{Addr: addr, ReadHeaderTimeout: 5 * time.Second} // profiles stream for as long as asked: no write timeout
		if err := hs.ListenAndServe(); err != nil {
			log.Warn("pprof stopped", zap.Error(err))
		}
	}()
}

// Clients are what a long-running process holds: one pool, one Redis
// client, one Temporal client, all traced by Tracer when it is set, and the
// keyring that seals personal data in PostgreSQL and in Temporal payloads.
type Clients struct {
	DB       *pgxpool.Pool
	Cache    *redis.Client
	Temporal client.Client
	Tracer   trace.TracerProvider
	PII      *pii.Keyring
}

// ClientOptions say what a process needs of its clients.
type ClientOptions struct {
	// Tracer traces the clients' calls when set.
	Tracer trace.TracerProvider
	// NeedKeys refuses to open without PII keys: the gateway and the workers
	// handle personal data. Others use the keys when they are configured.
	NeedKeys bool
	// OrderIDOf names the order of a workflow id in the Temporal client's
	// logs and spans.
	OrderIDOf func(workflowID string) (string, bool)
}

// Open opens a process's clients; on an error it closes what it opened.
func Open(ctx context.Context, c Config, log *zap.Logger, o ClientOptions) (*Clients, error) {
	keys, err := pii.LoadOptional(c.PII)
	if err != nil {
		return nil, err
	}
	if keys == nil && o.NeedKeys {
		return nil, pii.ErrNoKeys
	}
	pool, err := db.Open(ctx, c.DatabaseURL, db.WithTracing(o.Tracer), db.WithTLSMinVersion(c.TLSMinVersion))
	if err != nil {
		return nil, err
	}
	if err := db.ObservePool(pool); err != nil {
		pool.Close()
		return nil, err
	}
	rc, err := cache.Connect(cache.Config{URL: c.RedisURL, Sentinels: c.RedisSentinels,
		MasterName: c.RedisMasterName, Timeout: c.CacheTimeout, TLSMinVersion: c.TLSMinVersion})
	if err == nil {
		err = cache.Trace(rc, o.Tracer)
	}
	if err != nil {
		pool.Close()
		return nil, err
	}
	tc, err := temporal.Dial(c.Temporal, temporal.Options{Log: log, Tracer: o.Tracer, Keys: keys, OrderIDOf: o.OrderIDOf})
	if err != nil {
		_ = rc.Close()
		pool.Close()
		return nil, err
	}
	if keys != nil {
		log.Info("personal data is encrypted in PostgreSQL and in Temporal payloads", zap.String("pii_active_key", keys.Active()))
	}
	return &Clients{DB: pool, Cache: rc, Temporal: tc, Tracer: o.Tracer, PII: keys}, nil
}

// Close closes the clients, Temporal first.
func (c *Clients) Close() {
	c.Temporal.Close()
	_ = c.Cache.Close()
	c.DB.Close()
}

// Serve runs hs until ctx ends, then shuts it down, letting requests in
// flight finish for up to 10 s. It serves HTTPS when hs has a TLS
// configuration (its certificates loaded). A failure to listen is returned.
func Serve(ctx context.Context, hs *http.Server, log *zap.Logger, what string) error {
	errc := make(chan error, 1)
	go func() {
		if hs.TLSConfig != nil {
			errc <- hs.ListenAndServeTLS("", "")
			return
		}
		errc <- hs.ListenAndServe()
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", hs.Addr, err)
	case <-ctx.Done():
	}
	log.Info("shutting down " + what)
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// Main is a command's whole life: it prints usage and exits 2 without a
// subcommand, runs run with a context that SIGINT or SIGTERM cancels, and
// exits 1 with the error prefixed by the command's name when run fails.
func Main(name, usage string, run func(ctx context.Context, cmd string, args []string) error) {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1], os.Args[2:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}

// Process is a long-running component as Start leaves it: its logger, its
// tracer (nil when tracing is off), its clients and the handler that serves
// its /metrics.
type Process struct {
	Log     *zap.Logger
	Tracer  trace.TracerProvider
	Clients *Clients
	Metrics http.Handler
	closers []func()
}

// Start is the start-up the gateway and the workers share: the logger
// tagged with component, pprof on c.PprofAddr when set, tracing and metrics
// under the service name orderflow-<component>, and the clients, which need
// PII keys. On an error it undoes what it did; Close undoes all of it.
func Start(ctx context.Context, c Config, component string, idOf func(string) (string, bool)) (*Process, error) {
	log, err := Logger(c, component)
	if err != nil {
		return nil, err
	}
	p := &Process{Log: log, closers: []func(){func() { _ = log.Sync() }}}
	fail := func(err error) (*Process, error) { p.Close(); return nil, err }
	Pprof(log, c.PprofAddr)
	service := "orderflow-" + component
	tp, stopTracing, err := telemetry.Tracing(ctx, service)
	if err != nil {
		return fail(err)
	}
	p.Tracer = tp
	p.closers = append(p.closers, func() { _ = stopTracing(context.Background()) })
	if p.Clients, err = Open(ctx, c, log, ClientOptions{Tracer: tp, NeedKeys: true, OrderIDOf: idOf}); err != nil {
		return fail(err)
	}
	p.closers = append(p.closers, p.Clients.Close)
	metrics, stopMetrics, err := telemetry.Metrics(service)
	if err != nil {
		return fail(err)
	}
	p.Metrics = metrics
	p.closers = append(p.closers, func() { _ = stopMetrics(context.Background()) })
	return p, nil
}

// Close undoes Start in reverse order.
func (p *Process) Close() {
	for i := len(p.closers) - 1; i >= 0; i-- {
		p.closers[i]()
	}
}
