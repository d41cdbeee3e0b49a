// Command orderflow-dev holds the tools that build, run and break an
// orderflow stack, which the product binary does not ship: the simulated
// payment provider, the demo catalog, the load generator and the chaos run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/orderflow/orderflow/internal/boot"
	"github.com/orderflow/orderflow/internal/config"
)

const usage = `usage: orderflow-dev <command>

commands:
  paysim    run a simulated payment provider (PAYSIM_ADDR, default :8090; PAYSIM_NAME, default paysim-a)
  carrier   run a simulated carrier that takes shipments and posts signed events (CARRIER_ADDR, default :8095)
  seed      load the demo catalog (idempotent)
  bench     load-test a running stack (make bench; docs/performance.md)
  chaos     drive orders while killing and restarting the stack's processes, then check the invariants (make chaos)
  lab       run a stack from its typed topology: up, run, down, status, kill/start/restart NODE, with (make run/up/down)
  backup    back up the stack's PostgreSQL with pgBackRest (make backup; docs/operations.md)
  restore   restore the stack's PostgreSQL to a point in time (make restore TARGET_TIME=...)
  restore-drill
            the restore drill: orders, backups, a loss, a restore to a time T, the restored stack checked
            (make restore-drill, and make test; --ha: on the ha profile, make restore-drill-ha)
  webhooks  a local webhook subscriber: orderflow-dev webhooks listen --secret whsec_... [--addr 127.0.0.1:9009]
            verifies each delivery's signature and prints the event (README walk-through)
  drill     the region-loss drill on the regions profile: a region cut off under load, failed over and back,
            RTO measured and the invariants checked in both regions (make drill; docs/regions.md)
  smoke     a fresh stack as make run starts it, an order to CONFIRMED and the stack's promises checked (make test)
`

func main() { boot.Main("orderflow-dev", usage, run) }

func run(ctx context.Context, cmd string, args []string) error {
	switch cmd {
	case "paysim":
		return runPaysim(ctx, args)
	case "carrier":
		return runCarrier(ctx, args)
	case "seed":
		return runSeed(ctx)
	case "bench":
		return runBench(ctx, args)
	case "chaos":
		return runChaos(ctx, args)
	case "lab":
		return runLab(ctx, args)
	case "smoke":
		return runSmoke(ctx, args)
	case "webhooks":
		return runWebhooks(ctx, args)
	case "drill":
		return runDrill(ctx, args)
	case "restore-drill":
		return runRestoreDrill(ctx, args)
	case "backup":
		return runBackup(ctx, args)
	case "restore":
		return runRestore(ctx, args)
	case "help", "-h", "--help":
		fmt.Print(usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

// product returns the product's settings the dev tools share with it
// (DATABASE_URL, TEMPORAL_ADDRESS, AUTH_HS256_SECRET ...), each read and
// checked as the product does when it is first asked for; v.Err() then
// names every bad one.
func product() *config.Values { return config.Load(os.LookupEnv, 0) }

// envOr is a dev tool's own variable, or def when it is unset or blank.
func envOr(key, def string) string {
	if v := strings.TrimSpace(os.Getenv(key)); v != "" {
		return v
	}
	return def
}

// flagsFromEnv sets each of fs's flags from its variable first (prefix and
// the flag's name in upper case, - as _), parsed as the flag is: a bad value
// is an error naming the variable. Flags on the command line then override.
func flagsFromEnv(fs *flag.FlagSet, prefix string) error {
	var bad []string
	fs.VisitAll(func(f *flag.Flag) {
		key := prefix + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := envOr(key, ""); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				bad = append(bad, fmt.Sprintf("%s=%q: %v", key, v, err))
			}
		}
	})
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "; "))
	}
	return nil
}
