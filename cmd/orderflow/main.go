// Command orderflow is the single orderflow binary: the HTTP gateway, the
// workers, migrations and the operator tools are its subcommands.
package main

import (
	"context"
	"fmt"
	_ "net/http/pprof" // served only on PPROF_ADDR
	"os"

	"go.uber.org/zap"

	"github.com/orderflow/orderflow/activities/notify"
	"github.com/orderflow/orderflow/activities/orders"
	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/api"
	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/boot"
	"github.com/orderflow/orderflow/internal/config"
	"github.com/orderflow/orderflow/internal/db"
	"github.com/orderflow/orderflow/internal/health"
	"github.com/orderflow/orderflow/internal/pii"
	"github.com/orderflow/orderflow/internal/tlsconf"
	"github.com/orderflow/orderflow/schema"
	"github.com/orderflow/orderflow/workers"
	"github.com/orderflow/orderflow/workflows/order"
)

const usage = `usage: orderflow <command>

commands (the dev tools, such as the payment simulator, bench and chaos, are
orderflow-dev, built from devtools/cmd/orderflow-dev):
  api       run the HTTP gateway (API_ADDR, default :8080)
  worker    run a worker for a region (--region, or ORDERFLOW_REGION; default local),
            with GET /health on WORKER_HEALTH_ADDR (default :8081)
  migrate   apply the database migrations
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

func main() { boot.Main("orderflow", usage, run) }

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

func runAPI(ctx context.Context, cfg config.API) error {
	if err := cfg.TrustedProxies.Validate(); err != nil {
		return err
	}
	tlsCfg, err := tlsconf.Server(cfg.TLS)
	if err != nil {
		return err
	}
	p, err := boot.Start(ctx, cfg.Common, "api", config.Env("API_PPROF_ADDR", ""), order.IDOf)
	if err != nil {
		return err
	}
	defer p.Close()
	log, cl, tp, metrics := p.Log, p.Clients, p.Tracer, p.Metrics
	log.Info("starting gateway", zap.String("addr", cfg.Addr), zap.Stringer("config", cfg.Common), zap.Stringer("auth", cfg.Auth),
		zap.Bool("embedded_worker", cfg.EmbedWorker), zap.Bool("tls", cfg.TLS.Enabled()))
	authn, err := auth.New(ctx, cfg.Auth, auth.WithRedis(cl.Cache), auth.WithLogger(log))
	if err != nil {
		return err
	}

	srv := &api.Server{TrustedProxies: cfg.TrustedProxies.Prefixes, DB: cl.DB, Cache: cl.Cache, Temporal: cl.Temporal, Log: log, Region: cfg.Region, Metrics: metrics,
		BodyLimit: cfg.BodyLimitBytes, IdempotencyTTL: cfg.IdempotencyTTL, EagerStart: cfg.EmbedWorker, Payment: cfg.Resilience.Payment,
		RateLimit: cfg.Resilience.RateLimit, Bulkhead: cfg.Resilience.Bulkhead, Tiers: cfg.Resilience.Cache,
		Health: cfg.Resilience.Health, TracerProvider: tp,
		Codec: pii.NewCodec(cl.PII), CodecOrigins: cfg.CodecOrigins}
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
	return boot.Serve(ctx, hs, log, "gateway")
}

func runWorker(ctx context.Context, cfg config.Worker) error {
	p, err := boot.Start(ctx, cfg.Common, "worker", config.Env("WORKER_PPROF_ADDR", ""), order.IDOf)
	if err != nil {
		return err
	}
	defer p.Close()
	log, cl, metrics := p.Log, p.Clients, p.Metrics
	log.Info("starting worker", zap.Stringer("config", cfg.Common))
	pool, err := newWorker(cl, cfg, log, true)
	if err != nil {
		return err
	}
	w := &runningWorker{Runner: pool}
	checks := workerHealth(cl, cfg.Resilience.Health, w)
	checks.Add(breakerChecks(pool.Payments)...)
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
func newWorker(cl *boot.Clients, cfg config.Worker, log *zap.Logger, standalone bool) (*workers.Pool, error) {
	providers, err := buildProviders(cfg.Resilience.Payment, cl.Tracer)
	if err != nil {
		return nil, err
	}
	if cl.PII == nil {
		return nil, pii.ErrNoKeys
	}
	deps := workers.Deps{DB: cl.DB, Cache: cl.Cache, Log: log, PII: cl.PII,
		Payments:      payment.NewRouter(payment.Settings(cfg.Resilience.Payment), providers...),
		FailoverQuiet: cfg.Resilience.Payment.FailoverQuiet,
		Mailer:        notify.LogMailer{Log: log, Latency: cfg.MailLatency}}
	if standalone {
		// The outbox pool's mail server and event stream (SMTP_*, NATS_URL).
		mailer, stream, err := workers.Messaging(cfg.Messaging)
		if err != nil {
			return nil, err
		}
		if mailer != nil {
			deps.Mailer = mailer
		}
		deps.Events = stream
		log.Info("messaging", zap.Stringer("config", cfg.Messaging))
	}
	return workers.New(cl.Temporal, deps, workers.Options{Region: cfg.Region, MaxConcurrentActivities: cfg.MaxConcurrentActivities,
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
	n, err := orders.EncryptPII(ctx, pool, keys, "")
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
