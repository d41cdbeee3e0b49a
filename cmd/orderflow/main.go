// Command orderflow is the single orderflow binary: the HTTP gateway, the
// workers, migrations and the operator tools are its subcommands.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	_ "net/http/pprof" // served only on PPROF_ADDR
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/orderflow/orderflow/activities"
	"github.com/orderflow/orderflow/api"
	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/cache"
	"github.com/orderflow/orderflow/internal/config"
	"github.com/orderflow/orderflow/internal/db"
	"github.com/orderflow/orderflow/internal/health"
	"github.com/orderflow/orderflow/internal/logging"
	"github.com/orderflow/orderflow/internal/payment"
	"github.com/orderflow/orderflow/internal/pii"
	"github.com/orderflow/orderflow/internal/telemetry"
	"github.com/orderflow/orderflow/internal/tlsconf"
	"github.com/orderflow/orderflow/schema"
	"github.com/orderflow/orderflow/workers"
	"github.com/orderflow/orderflow/workflows"
)

const usage = `usage: orderflow <command>

commands:
  api       run the HTTP gateway (API_ADDR, default :8080)
  worker    run a worker for a region (--region, or ORDERFLOW_REGION; default local),
            with GET /health on WORKER_HEALTH_ADDR (default :8081)
  migrate   apply the database migrations
  seed      load the demo catalog (idempotent)
  paysim    run a simulated payment provider (PAYSIM_ADDR, default :8090; PAYSIM_NAME, default paysim-a)
  chaos     drive orders while killing and restarting the stack's processes, then check the invariants (make chaos)
  bench     load-test a running stack (see make bench and docs/performance.md)
  replay    replay exported workflow histories against this build: orderflow replay <history.json>...
            (a check before deploying workflow changes; see docs/operations.md)
  token     mint a development token: orderflow token --sub <customer> --role customer|operator|admin [--ttl 1h]
            (HS256 with AUTH_HS256_SECRET; make run prints a customer and an operator token)

Every setting comes from the environment: DATABASE_URL, REDIS_URL,
TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, ORDERFLOW_REGION, LOG_FORMAT, LOG_LEVEL.
The gateway verifies bearer tokens against AUTH_JWKS_URL (with AUTH_ISSUER and
AUTH_AUDIENCE) or, in development, AUTH_HS256_SECRET. The gateway and the
workers need PII_KEYS or PII_KEYS_FILE: they seal stored e-mails and every
Temporal payload; the gateway serves the codec server on /codec for operators
(CODEC_CORS_ORIGINS: the Web UI origins allowed to call it). It serves HTTPS when
API_TLS_CERT_FILE and API_TLS_KEY_FILE are set; TEMPORAL_TLS_CA_FILE,
TEMPORAL_TLS_CERT_FILE, TEMPORAL_TLS_KEY_FILE and TEMPORAL_TLS_SERVER_NAME turn
on TLS (mutual with a certificate) to Temporal.
Traces go out over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT (or another OTEL_*
exporter variable) is set; tracing is off otherwise.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1], os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "orderflow:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cmd string, args []string) error {
	switch cmd {
	case "api":
		return runAPI(ctx, config.LoadAPI())
	case "worker":
		cfg := config.LoadWorker()
		if len(args) == 2 && args[0] == "--region" {
			cfg.Region = args[1]
		} else if len(args) != 0 {
			return fmt.Errorf("worker: unexpected arguments %q", args)
		}
		return runWorker(ctx, cfg)
	case "migrate":
		return runMigrate(ctx, config.LoadCommon())
	case "seed":
		return runSeed(ctx, config.LoadCommon())
	case "bench":
		return runBench(ctx, args)
	case "paysim":
		return runPaysim(ctx, args)
	case "chaos":
		return runChaos(ctx, args)
	case "replay":
		return runReplay(os.Stdout, args)
	case "token":
		return runToken(os.Stdout, args)
	case "help", "-h", "--help":
		fmt.Print(usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

// servePprof exposes net/http/pprof on the address in the variable key
// (API_PPROF_ADDR, WORKER_PPROF_ADDR; e.g. 127.0.0.1:6060) when it is set,
// for profiling under load; it is off by default.
func servePprof(log *zap.Logger, key string) {
	addr := config.Env(key, "")
	if addr == "" {
		return
	}
	go func() {
		log.Info("pprof listening", zap.String("addr", addr))
		if err := http.ListenAndServe(addr, nil); err != nil {
			log.Warn("pprof stopped", zap.Error(err))
		}
	}()
}

func newLogger(c config.Common, component string) (*zap.Logger, error) {
	l, err := logging.New(c.LogFormat, c.LogLevel)
	if err != nil {
		return nil, err
	}
	return l.With(zap.String("component", component)), nil
}

// dialTemporal dials the process's one Temporal client, its workers' too:
// the SDK logs through log, the request id travels in headers and, when tp
// is set, the tracing interceptor joins workflows and activities to the
// caller's trace. With keys, every payload and failure message is sealed by
// the keyring's codec before it reaches the server (pii.Codec); a client
// that starts or runs sagas must have them.
func dialTemporal(c config.Common, log *zap.Logger, tp trace.TracerProvider, keys *pii.Keyring) (client.Client, error) {
	interceptors, propagators, err := telemetry.Temporal(tp, workflows.OrderIDOf)
	if err != nil {
		return nil, err
	}
	tlsCfg, err := tlsconf.Client(c.TemporalTLS)
	if err != nil {
		return nil, err
	}
	opts := client.Options{
		HostPort: c.TemporalAddress, Namespace: c.TemporalNamespace, Logger: logging.Temporal(log),
		Interceptors: interceptors, ContextPropagators: propagators,
		MetricsHandler: telemetry.TemporalMetrics(),
		// No gzip: the SDK compresses every request by default, but the
		// payloads that make up most of a request are sealed (pii.Codec),
		// and ciphertext does not compress. Both ends paid the CPU for
		// nothing: 3% of the gateway's (docs/performance.md, decision 16).
		ConnectionOptions: client.ConnectionOptions{TLS: tlsCfg, GrpcCompression: &client.GrpcCompressionNone{}},
	}
	if keys != nil {
		opts.DataConverter, opts.FailureConverter = pii.Converters(keys)
	}
	tc, err := client.Dial(opts)
	if err != nil {
		return nil, fmt.Errorf("dial temporal %s: %w", c.TemporalAddress, err)
	}
	return tc, nil
}

// clients are what a long-running process holds: one pool, one Redis client,
// one Temporal client, all traced by tracer when it is set, and the keyring
// that seals personal data in PostgreSQL and in Temporal payloads.
type clients struct {
	db       *pgxpool.Pool
	cache    *redis.Client
	temporal client.Client
	tracer   trace.TracerProvider
	pii      *pii.Keyring
}

// openClients opens a process's clients. The gateway and the workers
// handle personal data and refuse to start without PII keys (needKeys);
// the load generator uses them when they are configured.
func openClients(ctx context.Context, c config.Common, log *zap.Logger, tp trace.TracerProvider, needKeys bool) (*clients, error) {
	keys, err := pii.LoadOptional(c.PII)
	if err != nil {
		return nil, err
	}
	if keys == nil && needKeys {
		return nil, pii.ErrNoKeys
	}
	pool, err := db.Open(ctx, c.DatabaseURL, db.WithTracing(tp))
	if err != nil {
		return nil, err
	}
	if err := db.ObservePool(pool); err != nil {
		pool.Close()
		return nil, err
	}
	rc, err := cache.OpenTimeout(c.RedisURL, c.Resilience.Cache.CallTimeout)
	if err == nil {
		err = cache.Trace(rc, tp)
	}
	if err != nil {
		pool.Close()
		return nil, err
	}
	tc, err := dialTemporal(c, log, tp, keys)
	if err != nil {
		_ = rc.Close()
		pool.Close()
		return nil, err
	}
	if keys != nil {
		log.Info("personal data is encrypted in PostgreSQL and in Temporal payloads", zap.String("pii_active_key", keys.Active()))
	}
	return &clients{db: pool, cache: rc, temporal: tc, tracer: tp, pii: keys}, nil
}

func (c *clients) close() {
	c.temporal.Close()
	_ = c.cache.Close()
	c.db.Close()
}

func runAPI(ctx context.Context, cfg config.API) error {
	log, err := newLogger(cfg.Common, "api")
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck
	servePprof(log, "API_PPROF_ADDR")
	log.Info("starting gateway", zap.String("addr", cfg.Addr), zap.Stringer("config", cfg.Common), zap.Stringer("auth", cfg.Auth),
		zap.Bool("embedded_worker", cfg.EmbedWorker), zap.Bool("tls", cfg.TLS.Enabled()))
	tlsCfg, err := tlsconf.Server(cfg.TLS)
	if err != nil {
		return err
	}
	tp, stopTracing, err := telemetry.Tracing(ctx, "orderflow-api")
	if err != nil {
		return err
	}
	defer stopTracing(context.Background()) //nolint:errcheck
	cl, err := openClients(ctx, cfg.Common, log, tp, true)
	if err != nil {
		return err
	}
	defer cl.close()
	metrics, stopMetrics, err := telemetry.Metrics("orderflow-api")
	if err != nil {
		return err
	}
	defer stopMetrics(context.Background()) //nolint:errcheck
	authn, err := auth.New(ctx, cfg.Auth, auth.WithRedis(cl.cache), auth.WithLogger(log))
	if err != nil {
		return err
	}

	srv := &api.Server{DB: cl.db, Cache: cl.cache, Temporal: cl.temporal, Log: log, Region: cfg.Region, Metrics: metrics,
		BodyLimit: cfg.BodyLimitBytes, IdempotencyTTL: cfg.IdempotencyTTL, EagerStart: cfg.EmbedWorker, Payment: cfg.Resilience.Payment,
		RateLimit: cfg.Resilience.RateLimit, Bulkhead: cfg.Resilience.Bulkhead, Tiers: cfg.Resilience.Cache,
		Health: cfg.Resilience.Health, TracerProvider: tp,
		Codec: pii.NewCodec(cl.pii), CodecOrigins: cfg.CodecOrigins}
	srv.Auth = authn
	if cfg.EmbedWorker {
		w, err := newWorker(cl, cfg.EmbeddedWorker, log, false)
		if err != nil {
			return err
		}
		if err := w.Start(); err != nil {
			return fmt.Errorf("start embedded worker: %w", err)
		}
		defer w.Stop()
		srv.HealthChecks = append(srv.HealthChecks, breakerChecks(w.Payments)...)
		log.Info("embedded order worker started; sagas start eagerly", zap.String("region", cfg.Region))
	}
	srv.ProviderChecks = providerChecks(cfg.Resilience.Payment)
	hs := api.HTTPServer(cfg.Addr, srv.Handler(), tlsCfg)
	return serve(ctx, hs, log, "gateway")
}

// serve runs hs until ctx ends, then shuts it down, letting requests in
// flight finish for up to 10 s. It serves HTTPS when hs has a TLS
// configuration (its certificates loaded). A failure to listen is returned.
func serve(ctx context.Context, hs *http.Server, log *zap.Logger, what string) error {
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

func runWorker(ctx context.Context, cfg config.Worker) error {
	log, err := newLogger(cfg.Common, "worker")
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck
	servePprof(log, "WORKER_PPROF_ADDR")
	log.Info("starting worker", zap.Stringer("config", cfg.Common))
	tp, stopTracing, err := telemetry.Tracing(ctx, "orderflow-worker")
	if err != nil {
		return err
	}
	defer stopTracing(context.Background()) //nolint:errcheck
	cl, err := openClients(ctx, cfg.Common, log, tp, true)
	if err != nil {
		return err
	}
	defer cl.close()
	pool, err := newWorker(cl, cfg, log, true)
	if err != nil {
		return err
	}
	w := &runningWorker{Runner: pool}
	checks := workerHealth(cl, cfg.Resilience.Health, w)
	checks.Add(breakerChecks(pool.Payments)...)
	metrics, stopMetrics, err := telemetry.Metrics("orderflow-worker")
	if err != nil {
		return err
	}
	defer stopMetrics(context.Background()) //nolint:errcheck
	if _, err := health.Listen(ctx, cfg.Resilience.Health.WorkerAddr, checks, metrics, log); err != nil {
		return err
	}
	err = workers.Run(ctx, w)
	log.Info("worker stopped")
	return err
}

// newWorker builds a worker process's pools; standalone adds the
// notification and admin pools, which the gateway's embedded worker leaves
// to the worker processes.
func newWorker(cl *clients, cfg config.Worker, log *zap.Logger, standalone bool) (*workers.Pool, error) {
	providers, err := buildProviders(cfg.Resilience.Payment, cl.tracer)
	if err != nil {
		return nil, err
	}
	if cl.pii == nil {
		return nil, pii.ErrNoKeys
	}
	deps := workers.Deps{DB: cl.db, Cache: cl.cache, Log: log, PII: cl.pii,
		Payments:      payment.NewRouter(payment.Settings(cfg.Resilience.Payment), providers...),
		FailoverQuiet: cfg.Resilience.Payment.FailoverQuiet,
		Mailer:        activities.LogMailer{Log: log, Latency: cfg.MailLatency}}
	return workers.New(cl.temporal, deps, workers.Options{Region: cfg.Region, MaxConcurrentActivities: cfg.MaxConcurrentActivities,
		MaxConcurrentLocalActivities: cfg.MaxConcurrentLocalActivities, MaxConcurrentWorkflowTasks: cfg.MaxConcurrentWorkflowTasks,
		Bulkhead: cfg.Resilience.Bulkhead, Outbox: standalone, Admin: standalone}), nil
}

func runMigrate(ctx context.Context, cfg config.Common) error {
	pool, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := schema.Migrate(ctx, pool); err != nil {
		return err
	}
	fmt.Println("migrations applied")
	// Stored e-mails come under the active key: plaintext from before
	// migration 0006 and values sealed with an older key. Without keys this
	// fails only if there is such a row.
	keys, err := pii.LoadOptional(cfg.PII)
	if err != nil {
		return err
	}
	n, err := activities.EncryptPII(ctx, pool, keys, "")
	if err != nil {
		return err
	}
	if n.Orders+n.Notifications > 0 {
		fmt.Printf("personal data encrypted under key %q: %d orders, %d notifications\n", keys.Active(), n.Orders, n.Notifications)
	}
	if n.Unreadable > 0 {
		fmt.Fprintf(os.Stderr, "warning: %d stored e-mails are sealed with keys not configured and stay so (%v)\n", n.Unreadable, n.UnreadableErr)
	}
	return nil
}
