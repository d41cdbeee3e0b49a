package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/client"

	"github.com/orderflow/orderflow/devtools/chaos"
	"github.com/orderflow/orderflow/devtools/lab"
	"github.com/orderflow/orderflow/devtools/paysim"
	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/boot"
	"github.com/orderflow/orderflow/internal/config"
	"github.com/orderflow/orderflow/internal/db"
	"github.com/orderflow/orderflow/internal/temporal"
	"github.com/orderflow/orderflow/workflows/order"
)

// runChaos drives a running lab stack (--data, default STACK_DATA_DIR, as
// `orderflow-dev lab with --profile chaos` sets it) while it injects faults
// through the lab (nodes killed and restarted in process, on the stack's
// state) and the providers' admin endpoints, then checks the invariants; it
// fails when one does not hold.
func runChaos(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	data := fs.String("data", envOr("STACK_DATA_DIR", ".data/chaos"), "the lab stack under test (its directory)")
	c := chaos.Config{}
	fs.StringVar(&c.APIURL, "api", "", "gateway base URL (default: the stack's)")
	fs.Float64Var(&c.Rate, "rate", 10, "orders placed per second")
	fs.DurationVar(&c.Duration, "duration", 10*time.Minute, "how long load and faults run")
	fs.DurationVar(&c.Quiesce, "quiesce", 3*time.Minute, "bound on the wait for every accepted order to end")
	fs.DurationVar(&c.Hold, "hold", 6*time.Second, "how long each fault lasts")
	faults := fs.String("faults", strings.Join(chaos.FaultKinds, ","), "fault kinds, injected in turn")
	providers := fs.String("providers", envOr("CHAOS_PROVIDERS", ""), "paysim base URLs, primary first (default: the stack's)")
	fs.StringVar(&c.ResultsDir, "results", "chaos/results", "directory for the JSON report")
	fs.Uint64Var(&c.Seed, "seed", 0, "random seed (0: from the clock)")
	fs.Float64Var(&c.HookShare, "hook-share", 0.04, "share of orders whose confirm or notify step fails for good after the charge (needs a worker built with -tags "+chaos.HookTag+")")
	fs.Float64Var(&c.ReturnShare, "return-share", 0.10, "share of orders returned in part once delivered")
	fs.Float64Var(&c.LostRate, "lost-rate", 0.05, "share of parcels the simulated carrier loses")
	fs.BoolVar(&c.Subscribers, "subscribers", true, "register webhook subscribers that fail for windows and recover, and check their deliveries")
	fs.Float64Var(&c.ThreeDSShare, "three-ds-share", 0.05, "share of orders paid with the 3-D Secure card, whose step the run completes after a random wait")
	fs.DurationVar(&c.ThreeDSWait, "three-ds-wait", 45*time.Second, "longest wait before the run completes a 3-D Secure step")
	fs.IntVar(&c.Disputes, "disputes", 3, "how many delivered orders the run disputes at most")
	fs.DurationVar((*time.Duration)(&c.Webhooks.Delay), "webhook-delay", time.Second, "the providers hold every webhook this long (late events)")
	fs.DurationVar((*time.Duration)(&c.Webhooks.Jitter), "webhook-jitter", 3*time.Second, "plus a random wait up to this (events out of order)")
	fs.Float64Var(&c.Webhooks.DuplicateRate, "webhook-duplicate-rate", 0.3, "share of the providers' webhooks sent twice")
	haRun := fs.Bool("ha", false, "the ha profile's hosts lost one at a time instead of --faults (make chaos-ha)")
	var ho haOptions
	fs.IntVar(&ho.rounds, "rounds", 3, "with --ha: every kind of host lost at least this many times (the run outlasts --duration if it must)")
	fs.StringVar(&ho.kinds, "kinds", "", "with --ha: only these kinds of host lost (pg_primary, redis_master, temporal_server, gateway, worker; default all)")
	fs.StringVar(&ho.modes, "modes", chaos.ModeKill+","+chaos.ModeCut, "with --ha: how hosts are lost, in turn per kind (kill, cut)")
	fs.DurationVar(&ho.quiet, "quiet", 5*time.Second, "with --ha: plain load before each fault")
	fs.DurationVar(&ho.maxOutage, "max-outage", 90*time.Second, "with --ha: bound on a host's loss while orders fail")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *haRun {
		// Hosts lost are the faults: the ha stack runs the product build
		// (no hooks) and the plain order mix.
		c.HookShare, c.ReturnShare, c.LostRate, c.Subscribers = 0, 0, 0, false
		c.ThreeDSShare, c.Disputes, c.Webhooks = 0, 0, paysim.Webhooks{}
		return runChaosHA(ctx, *data, c, ho)
	}
	for _, f := range strings.Split(*faults, ",") {
		if f = strings.TrimSpace(f); f != "" {
			c.Faults = append(c.Faults, f)
		}
	}
	d, err := lab.LoadDev(*data)
	if err != nil {
		return fmt.Errorf("chaos: the stack under %s: %w", *data, err)
	}
	c.Stack = d.Stack
	if c.APIURL == "" {
		c.APIURL = d.APIURL()
	}
	if *providers == "" {
		*providers = fmt.Sprintf("http://127.0.0.1:%d,http://127.0.0.1:%d", d.Config.Ports["paysim-a"], d.Config.Ports["paysim-b"])
	}
	c.Providers = strings.Split(*providers, ",")
	c.WorkerURL = fmt.Sprintf("http://127.0.0.1:%d", d.Config.Ports["worker"])
	c.CarrierURL = fmt.Sprintf("http://127.0.0.1:%d", d.Config.Ports["carrier"])
	c.NATSURL = d.Config.Env["NATS_URL"]
	c.WorkerBin = d.Config.Env["ORDERFLOW_BIN"]
	if v := d.Config.Env["PAYMENT_DEADLINE"]; v != "" {
		if c.PaymentDeadline, err = time.ParseDuration(v); err != nil {
			return fmt.Errorf("chaos: PAYMENT_DEADLINE %q: %w", v, err)
		}
	}
	// The payments table names providers as PAYMENT_PROVIDERS does.
	c.PrimaryProvider, _, _ = strings.Cut(d.Config.Env["PAYMENT_PROVIDERS"], "=")
	tokens, pool, tc, err := stackClients(ctx, d.Environ())
	if err != nil {
		return err
	}
	defer pool.Close()
	defer tc.Close()
	c.Tokens = tokens
	rep, err := chaos.New(c, pool, tc, os.Stdout).Run(ctx)
	if err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	return finish("chaos", rep, rep.Passed, c.ResultsDir)
}

// finish prints a run's report, writes it as JSON under dir, and fails
// when an invariant did not hold.
func finish(what string, rep interface {
	Print(io.Writer)
	Write(dir string) (string, error)
}, passed bool, dir string) error {
	rep.Print(os.Stdout)
	path, err := rep.Write(dir)
	if err != nil {
		return err
	}
	fmt.Printf("\nwrote %s\n", path)
	if !passed {
		return errors.New(what + ": an invariant does not hold")
	}
	return nil
}

// stackClients reach a stack as its processes do, from its environment:
// the minter of its development tokens, its database and Temporal (for
// visibility only: no payload to open). The caller closes pool and tc.
func stackClients(ctx context.Context, environ []string) (*auth.Minter, *pgxpool.Pool, client.Client, error) {
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		_ = os.Setenv(k, v)
	}
	v := product()
	dbURL, temporalCfg, authCfg := config.DatabaseURL.Get(v), boot.Temporal(v), boot.Auth(v)
	if err := v.Err(); err != nil {
		return nil, nil, nil, err
	}
	// The load carries tokens minted in process from the stack's
	// development secret.
	tokens, err := auth.NewMinter(authCfg)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("chaos: %w", err)
	}
	pool, err := db.Open(ctx, dbURL)
	if err != nil {
		return nil, nil, nil, err
	}
	tc, err := temporal.Dial(temporalCfg, temporal.Options{OrderIDOf: order.IDOf})
	if err != nil {
		pool.Close()
		return nil, nil, nil, err
	}
	return tokens, pool, tc, nil
}
