package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/orderflow/orderflow/devtools/chaos"
	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/boot"
	"github.com/orderflow/orderflow/internal/config"
	"github.com/orderflow/orderflow/internal/db"
	"github.com/orderflow/orderflow/internal/temporal"
	"github.com/orderflow/orderflow/workflows/order"
)

// runChaos drives a running stack (API_URL, DATABASE_URL, TEMPORAL_ADDRESS)
// while it injects faults through scripts/stack.sh and the providers' admin
// endpoints, then checks the invariants; it fails when one does not hold.
func runChaos(ctx context.Context, args []string) error {
	v := product()
	dbURL, temporalCfg, authCfg := config.DatabaseURL.Get(v), boot.Temporal(v), boot.Auth(v)
	if err := v.Err(); err != nil {
		return err
	}
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	c := chaos.Config{}
	fs.StringVar(&c.APIURL, "api", envOr("API_URL", "http://127.0.0.1:8080"), "gateway base URL")
	fs.Float64Var(&c.Rate, "rate", 10, "orders placed per second")
	fs.DurationVar(&c.Duration, "duration", 10*time.Minute, "how long load and faults run")
	fs.DurationVar(&c.Quiesce, "quiesce", 3*time.Minute, "bound on the wait for every accepted order to end")
	fs.DurationVar(&c.Hold, "hold", 6*time.Second, "how long each fault lasts")
	faults := fs.String("faults", strings.Join(chaos.FaultKinds, ","), "fault kinds, injected in turn")
	fs.StringVar(&c.StackScript, "stack-script", "scripts/stack.sh", "the script that kills and starts the stack's processes")
	providers := fs.String("providers", envOr("CHAOS_PROVIDERS", "http://127.0.0.1:8090,http://127.0.0.1:8093"), "paysim base URLs, primary first")
	fs.StringVar(&c.ResultsDir, "results", "chaos/results", "directory for the JSON report")
	fs.Uint64Var(&c.Seed, "seed", 0, "random seed (0: from the clock)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, f := range strings.Split(*faults, ",") {
		if f = strings.TrimSpace(f); f != "" {
			c.Faults = append(c.Faults, f)
		}
	}
	c.Providers = strings.Split(*providers, ",")
	// The load carries tokens minted in process from the stack's
	// development secret.
	tokens, err := auth.NewMinter(authCfg)
	if err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	c.Tokens = tokens

	pool, err := db.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	tc, err := temporal.Dial(temporalCfg, temporal.Options{OrderIDOf: order.IDOf}) // visibility only: no payload to open
	if err != nil {
		return err
	}
	defer tc.Close()
	rep, err := chaos.New(c, pool, tc, os.Stdout).Run(ctx)
	if err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	rep.Print(os.Stdout)
	path, err := rep.Write(c.ResultsDir)
	if err != nil {
		return err
	}
	fmt.Printf("\nwrote %s\n", path)
	if !rep.Passed {
		return errors.New("chaos: an invariant does not hold")
	}
	return nil
}
