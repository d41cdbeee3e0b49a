// Command orderflow-dev holds the tools that build, run and break an
// orderflow stack, which the product binary does not ship: the simulated
// payment provider, the demo catalog, the load generator and the chaos run.
package main

import (
	"context"
	"fmt"

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
`

func main() { boot.Main("orderflow-dev", usage, run) }

func run(ctx context.Context, cmd string, args []string) error {
	switch cmd {
	case "paysim":
		return runPaysim(ctx, args)
	case "carrier":
		return runCarrier(ctx, args)
	case "seed":
		return runSeed(ctx, config.LoadCommon())
	case "bench":
		return runBench(ctx, args)
	case "chaos":
		return runChaos(ctx, args)
	case "help", "-h", "--help":
		fmt.Print(usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}
