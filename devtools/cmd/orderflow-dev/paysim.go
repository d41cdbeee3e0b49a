package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/orderflow/orderflow/devtools/paysim"
	"github.com/orderflow/orderflow/internal/boot"
	"github.com/orderflow/orderflow/internal/config"
	"github.com/orderflow/orderflow/internal/db"
	"github.com/orderflow/orderflow/internal/telemetry"
)

// runPaysim serves one simulated payment provider instance until ctx ends
// (SIGTERM, Ctrl-C), then shuts down gracefully: it stops accepting, drops the
// requests it holds unanswered (timeout faults) and lets the others finish.
// Flags override the environment. It applies no migrations: `orderflow
// migrate` does.
func runPaysim(ctx context.Context, args []string) error {
	var cfg paysimConfig
	fs := flag.NewFlagSet("paysim", flag.ContinueOnError)
	fs.StringVar(&cfg.Addr, "addr", ":8090", "listen address (PAYSIM_ADDR)")
	fs.StringVar(&cfg.Name, "name", "paysim-a", "instance name, which scopes its ledger (PAYSIM_NAME)")
	fs.DurationVar(&cfg.Latency, "latency", 0, "added latency (PAYSIM_LATENCY)")
	fs.Float64Var(&cfg.ErrorRate, "error-rate", 0, "fraction of requests answered 500 (PAYSIM_ERROR_RATE)")
	fs.BoolVar(&cfg.Outage, "outage", false, "answer every request 503 (PAYSIM_OUTAGE)")
	fs.Float64Var(&cfg.TimeoutRate, "timeout-rate", 0, "fraction of requests never answered (PAYSIM_TIMEOUT_RATE)")
	fs.Float64Var(&cfg.LostAnswerRate, "lost-answer-rate", 0, "fraction of charges made then answered 500 (PAYSIM_LOST_ANSWER_RATE)")
	fs.DurationVar(&cfg.AuthorizationTTL, "authorization-ttl", paysim.DefaultAuthorizationTTL, "how long an authorization holds (PAYSIM_AUTHORIZATION_TTL)")
	if err := flagsFromEnv(fs, "PAYSIM_"); err != nil {
		return fmt.Errorf("paysim: %w", err)
	}
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("paysim: %w", err)
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("paysim: unexpected arguments %q", fs.Args())
	}
	v := product()
	common := boot.Config{LogFormat: config.LogFormat.Get(v), LogLevel: config.LogLevel.Get(v), DatabaseURL: config.DatabaseURL.Get(v)}
	if err := v.Err(); err != nil {
		return err
	}
	log, err := boot.Logger(common, "paysim")
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck
	log.Info("starting simulated payment provider", zap.Stringer("config", cfg))

	tp, stopTracing, err := telemetry.Tracing(ctx, "orderflow-paysim")
	if err != nil {
		return err
	}
	defer stopTracing(context.Background()) //nolint:errcheck
	pool, err := db.Open(ctx, common.DatabaseURL, db.WithTracing(tp))
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := paysim.Migrate(ctx, pool); err != nil {
		return err
	}
	faults := paysim.Faults{Latency: paysim.Duration(cfg.Latency), ErrorRate: cfg.ErrorRate, Outage: cfg.Outage,
		TimeoutRate: cfg.TimeoutRate, LostAnswerRate: cfg.LostAnswerRate}
	srv, err := paysim.NewServer(pool, cfg.Name, faults, log)
	if err != nil {
		return err
	}
	if cfg.AuthorizationTTL <= 0 {
		return fmt.Errorf("paysim: authorization-ttl %s is not positive", cfg.AuthorizationTTL)
	}
	srv.Ledger().SetAuthorizationTTL(cfg.AuthorizationTTL)
	hs := &http.Server{Addr: cfg.Addr, Handler: telemetry.HTTPHandler(tp, srv.Handler(), "paysim"), ReadHeaderTimeout: 5 * time.Second}
	hs.RegisterOnShutdown(srv.Close)
	return boot.Serve(ctx, hs, log, "simulated payment provider")
}

// paysimConfig is one simulated provider: where it listens, its instance
// name and the faults it injects from the start.
type paysimConfig struct {
	Addr           string
	Name           string
	Latency        time.Duration
	ErrorRate      float64
	Outage         bool
	TimeoutRate    float64
	LostAnswerRate float64
	// AuthorizationTTL is how long an authorization holds before it expires.
	AuthorizationTTL time.Duration
}

// String renders the settings for the start-up log line.
func (p paysimConfig) String() string {
	return fmt.Sprintf("name=%s addr=%s latency=%s error_rate=%g outage=%t timeout_rate=%g lost_answer_rate=%g authorization_ttl=%s",
		p.Name, p.Addr, p.Latency, p.ErrorRate, p.Outage, p.TimeoutRate, p.LostAnswerRate, p.AuthorizationTTL)
}
