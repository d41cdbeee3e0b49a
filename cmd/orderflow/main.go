// Command orderflow is the single orderflow binary: the HTTP gateway, the
// workers, migrations and the operator tools are its subcommands.
package main

import (
	"context"
	"fmt"
	_ "net/http/pprof" // #nosec G108 -- on http.DefaultServeMux, which only PPROF_ADDR (off by default) serves
	"os"

	"go.uber.org/zap"

	"github.com/orderflow/orderflow/activities/fulfillment"
	"github.com/orderflow/orderflow/activities/notify"
	"github.com/orderflow/orderflow/activities/orders"
	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/api"
	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/boot"
	"github.com/orderflow/orderflow/internal/breaker"
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
  api       run the HTTP gateway
  worker    run a worker for a region (--region overrides ORDERFLOW_REGION)
  migrate   apply the database migrations
  replay    replay exported workflow histories against this build: orderflow replay <history.json>...
            (a check before deploying workflow changes; see docs/operations.md)
  token     mint a development token: orderflow token --sub <customer> --role customer|operator|admin [--ttl 1h]
            (HS256 with AUTH_HS256_SECRET; make run prints a customer and an operator token)
  audit     check the audit log's hash chain: orderflow audit verify (prints the first broken
            link and fails; reads DATABASE_URL as migrate does; see docs/security.md)
  monitor   list the invariant monitor's findings: orderflow monitor findings [--kind KIND] [--all] [--limit N]
            (open ones unless --all; reads DATABASE_URL; runbook in docs/operations.md)
            run it now and print its report: orderflow monitor run [--nightly] [--region R] [--wait 5m]
            (triggers the region's Schedule; reads the Temporal settings too)
  redrive   start the sagas of accepted orders that did not replicate to this region's cluster:
            orderflow redrive [--namespace orders-east] [--since 15m] (docs/regions.md)
  failover  fail a lost region over to this one, step by step, timed (JSON): orderflow failover
            --region east [--watch] [--out FILE]; --failback hands it back gracefully (docs/operations.md)
  config    print the effective configuration, secrets masked: orderflow config [api|worker|migrate|replay|token|failover]
            (--markdown prints the configuration reference)

Every setting comes from the environment; a bad value stops the command,
naming it. The settings, their defaults and who reads them:
orderflow config, and docs/configuration.md.
`

func main() { boot.Main("orderflow", usage, run) }

func run(ctx context.Context, cmd string, args []string) error {
	switch cmd {
	case "api":
		if len(args) != 0 {
			return fmt.Errorf("api: unexpected arguments %q", args)
		}
		cfg, v := loadGateway(os.LookupEnv)
		if err := v.Err(); err != nil {
			return err
		}
		return runAPI(ctx, cfg, v)
	case "worker":
		cfg, v := loadWorker(os.LookupEnv)
		if len(args) == 2 && args[0] == "--region" {
			region, err := config.Region.Parse(args[1])
			if err != nil {
				return fmt.Errorf("worker: --region: %w", err)
			}
			cfg.Pool.Region = region
		} else if len(args) != 0 {
			return fmt.Errorf("worker: unexpected arguments %q", args)
		}
		if err := v.Err(); err != nil {
			return err
		}
		return runWorker(ctx, cfg, v)
	case "migrate":
		cfg, v := loadMigrate(os.LookupEnv)
		if err := v.Err(); err != nil {
			return err
		}
		return runMigrate(ctx, cfg)
	case "replay":
		return runReplay(os.Stdout, os.LookupEnv, args)
	case "token":
		return runToken(os.Stdout, os.LookupEnv, args)
	case "config":
		return runConfig(os.Stdout, os.LookupEnv, args)
	case "audit":
		return runAudit(ctx, os.Stdout, os.LookupEnv, args)
	case "monitor":
		return runMonitor(ctx, os.Stdout, os.LookupEnv, args)
	case "redrive":
		return runRedrive(ctx, os.Stdout, os.LookupEnv, args)
	case "failover":
		return runFailover(ctx, os.Stdout, os.LookupEnv, args)
	case "help", "-h", "--help":
		fmt.Print(usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

func runAPI(ctx context.Context, cfg gatewayConfig, v *config.Values) error {
	tlsCfg, err := tlsconf.Server(cfg.TLS)
	if err != nil {
		return err
	}
	p, err := boot.Start(ctx, cfg.Boot, "api", order.IDOf)
	if err != nil {
		return err
	}
	defer p.Close()
	log, cl, tp, metrics := p.Log, p.Clients, p.Tracer, p.Metrics
	log.Info("starting gateway", zap.String("addr", cfg.Addr), zap.Strings("config", v.FromEnv()),
		zap.Bool("embedded_worker", cfg.Embed), zap.Bool("tls", cfg.TLS.Enabled()))
	authn, err := auth.New(ctx, cfg.Auth, auth.WithRedis(cl.Cache), auth.WithLogger(log))
	if err != nil {
		return err
	}

	srv := &api.Server{Config: cfg.API, DB: cl.DB, Cache: cl.Cache, Temporal: cl.Temporal, Log: log, Metrics: metrics,
		TracerProvider: tp, Codec: pii.NewCodec(cl.PII), PII: cl.PII, Auth: authn}
	if cfg.Embed {
		w, checks, err := embeddedWorker(cl, cfg.Worker, log)
		if err != nil {
			return err
		}
		if err := w.Start(); err != nil {
			return fmt.Errorf("start embedded worker: %w", err)
		}
		defer w.Stop()
		srv.HealthChecks = append(srv.HealthChecks, checks...)
		log.Info("embedded order worker started; sagas start eagerly", zap.String("region", cfg.API.Region))
	}
	srv.ProviderChecks = providerChecks(cfg.Worker.Payment.Providers)
	// The backlog watcher feeds the admission the handlers build; the
	// starter starts the sagas of placements accepted with a deferred start.
	if cfg.OperatorAddr == "" {
		h := srv.Handler()
		go srv.WatchBacklog(ctx)
		go srv.RunDeferredStarts(ctx)
		return srv.Serve(ctx, api.HTTPServer(cfg.Addr, h, tlsCfg), nil, cfg.DrainDelay)
	}
	customer, operator := srv.Handlers()
	go srv.WatchBacklog(ctx)
	go srv.RunDeferredStarts(ctx)
	log.Info("operator endpoints (/metrics, /codec) on their own listener", zap.String("operator_addr", cfg.OperatorAddr))
	return srv.Serve(ctx, api.HTTPServer(cfg.Addr, customer, tlsCfg), api.HTTPServer(cfg.OperatorAddr, operator, tlsCfg), cfg.DrainDelay)
}

func runWorker(ctx context.Context, cfg workerConfig, v *config.Values) error {
	p, err := boot.Start(ctx, cfg.Boot, "worker", order.IDOf)
	if err != nil {
		return err
	}
	defer p.Close()
	log, cl, metrics := p.Log, p.Clients, p.Metrics
	log.Info("starting worker", zap.String("region", cfg.Pool.Region), zap.Strings("config", v.FromEnv()))
	var w *runningWorker
	var breakers []health.Check
	if len(cfg.Namespaces) == 0 {
		pool, checks, err := newWorker(cl, cfg, log, true)
		if err != nil {
			return err
		}
		w, breakers = &runningWorker{Runner: pool}, checks
	} else {
		set, err := namespaceWorkers(cl, cfg, log, true)
		if err != nil {
			return err
		}
		defer set.close()
		w = &runningWorker{Runner: set}
	}
	checks := workerHealth(cl, cfg.Health, w)
	checks.Add(breakers...)
	if _, err := health.Listen(ctx, cfg.HealthAddr, checks, metrics, log); err != nil {
		return err
	}
	err = workers.Run(ctx, w)
	log.Info("worker stopped")
	return err
}

// embeddedWorker builds the gateway's embedded worker: its pools, or with
// WORKER_NAMESPACES the same watchers a worker process runs, so that a
// gateway in a region where a namespace is standby does not poll it
// (its activities would write to a database that is a standby there).
func embeddedWorker(cl *boot.Clients, cfg workerConfig, log *zap.Logger) (workers.Runner, []health.Check, error) {
	if len(cfg.Namespaces) == 0 {
		return newWorker(cl, cfg, log, false)
	}
	set, err := namespaceWorkers(cl, cfg, log, false)
	if err != nil {
		return nil, nil, err
	}
	return closing{set}, nil, nil
}

// closing is a namespace set whose Stop also closes its clients.
type closing struct{ *namespaceSet }

func (c closing) Stop() {
	c.namespaceSet.Stop()
	c.close()
}

// newWorker builds a worker process's pools; standalone adds the
// notification and admin pools, which the gateway's embedded worker leaves
// to the worker processes.
func newWorker(cl *boot.Clients, cfg workerConfig, log *zap.Logger, standalone bool) (*workers.Pool, []health.Check, error) {
	providers, err := buildProviders(cfg.Payment, cl.Tracer)
	if err != nil {
		return nil, nil, err
	}
	if cl.PII == nil {
		return nil, nil, pii.ErrNoKeys
	}
	deps := workers.Deps{DB: cl.DB, Cache: cl.Cache, Log: log, PII: cl.PII,
		Payments:      payment.NewRouter(cfg.Payment.Breaker, providers...),
		FailoverQuiet: cfg.Payment.FailoverQuiet,
		Mailer:        notify.LogMailer{Log: log, Latency: cfg.MailLatency}}
	// Every remote dependency but the payment providers (the router has
	// their breakers) gets a breaker with the design's numbers, shown by
	// the process's health report.
	var guards []*breaker.Breaker
	if cfg.CarrierURL != "" {
		b := breaker.New("carrier", breaker.Settings{}, breaker.Options{})
		deps.Carrier = &fulfillment.Carrier{URL: cfg.CarrierURL, Breaker: b}
		guards = append(guards, b)
	}
	if standalone {
		// The outbox pool's mail server and event stream (SMTP_*, NATS_URL).
		mailer, stream, err := workers.Messaging(cfg.Messaging)
		if err != nil {
			return nil, nil, err
		}
		if mailer != nil {
			b := notify.NewSMTPBreaker()
			deps.Mailer = notify.Guarded(mailer, b)
			guards = append(guards, b)
		}
		if stream != nil {
			stream.Breaker = breaker.New("nats", breaker.Settings{}, breaker.Options{})
			guards = append(guards, stream.Breaker)
		}
		deps.Events = stream
	}
	pool := cfg.Pool
	pool.Outbox, pool.Admin = standalone, standalone
	w := workers.New(cl.Temporal, deps, pool)
	checks := breakerChecks(w.Payments)
	for _, b := range guards {
		checks = append(checks, b.Check())
	}
	return w, checks, nil
}

func runMigrate(ctx context.Context, cfg boot.Config) error {
	pool, err := db.Open(ctx, cfg.DatabaseURL, db.WithTLSMinVersion(cfg.TLSMinVersion))
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
