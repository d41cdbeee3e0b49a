package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/orderflow/orderflow/devtools/drill"
	"github.com/orderflow/orderflow/devtools/regions"
	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/boot"
)

// runDrill is the region-loss drill (make drill) on the regions profile
// running under --data (`orderflow-dev lab with --profile regions` sets
// STACK_DATA_DIR): orders to both regions, one region cut off, failed over
// and back, measured and checked (devtools/drill). It prints the table,
// writes the JSON report under --results and fails when an objective was
// not met.
func runDrill(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("drill", flag.ContinueOnError)
	data := fs.String("data", envOr("STACK_DATA_DIR", ".data/regions"), "the regions profile under test (its directory)")
	c := drill.Config{}
	fs.StringVar(&c.Lost, "lose", regions.Names[0], "the region cut off")
	fs.Float64Var(&c.Rate, "rate", 3, "orders placed per second to each region")
	fs.DurationVar(&c.Before, "before", 15*time.Second, "load before the cut")
	fs.DurationVar(&c.Hold, "hold", 10*time.Second, "how long the region stays lost once the failover is done")
	fs.DurationVar(&c.After, "after", 10*time.Second, "load after the failback")
	fs.DurationVar(&c.Quiesce, "quiesce", 2*time.Minute, "bound on the wait for every accepted order to end")
	fs.StringVar(&c.ResultsDir, "results", "drill/results", "directory for the JSON report")
	fs.Uint64Var(&c.Seed, "seed", 0, "random seed (0: from the clock)")
	if err := flagsFromEnv(fs, "DRILL_"); err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	p, err := regions.LoadProfile(*data)
	if err != nil {
		return fmt.Errorf("drill: the regions profile under %s: %w", *data, err)
	}
	if c.Bin = p.Config.Env["ORDERFLOW_BIN"]; !filepath.IsAbs(c.Bin) {
		c.Bin = filepath.Join(p.Config.Root, c.Bin)
	}
	// The load carries tokens minted from the stack's development secret.
	for _, kv := range p.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		_ = os.Setenv(k, v)
	}
	v := product()
	authCfg := boot.Auth(v)
	if err := v.Err(); err != nil {
		return err
	}
	if c.Tokens, err = auth.NewMinter(authCfg); err != nil {
		return fmt.Errorf("drill: %w", err)
	}
	d, err := drill.New(ctx, c, p, os.Stdout)
	if err != nil {
		return err
	}
	defer d.Close()
	rep, runErr := d.Run(ctx)
	if runErr != nil {
		rep.Error = runErr.Error()
	}
	rep.Print(os.Stdout)
	path, err := rep.Write(c.ResultsDir)
	if err != nil {
		return err
	}
	fmt.Printf("\nwrote %s\n", path)
	switch {
	case runErr != nil:
		return fmt.Errorf("drill: %w", runErr)
	case !rep.Passed:
		return errors.New("drill: an objective was not met")
	}
	return nil
}
