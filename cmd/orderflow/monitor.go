package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/orderflow/orderflow/activities/monitor"
)

const monitorUsage = `usage: orderflow monitor findings [--kind KIND] [--all] [--limit N]
       orderflow monitor run [--nightly] [--region REGION] [--wait 5m]`

// runMonitor is `orderflow monitor findings`: it prints the invariant
// monitor's open findings (all of them with --all), oldest first, one a
// line: id, region, kind, subject, first and last seen, resolved, detail. The
// runbook for each kind is in docs/operations.md. It reads DATABASE_URL as
// migrate does. The monitor's Schedules themselves are created by the
// workers at start-up.
func runMonitor(ctx context.Context, out io.Writer, lookup env, args []string) error {
	if len(args) > 0 && args[0] == "run" {
		return runMonitorNow(ctx, out, lookup, args[1:])
	}
	if len(args) == 0 || args[0] != "findings" {
		return fmt.Errorf("%s", monitorUsage)
	}
	fs := flag.NewFlagSet("monitor findings", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	kind := fs.String("kind", "", "only findings of this kind")
	all := fs.Bool("all", false, "resolved findings too")
	limit := fs.Int("limit", 1000, "at most this many findings")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() != 0 {
		return fmt.Errorf("%s", monitorUsage)
	}
	if *kind != "" && !slices.Contains(monitor.Kinds(), *kind) {
		return fmt.Errorf("monitor findings: --kind must be one of %s", strings.Join(monitor.Kinds(), ", "))
	}
	if *limit < 1 {
		return fmt.Errorf("monitor findings: --limit must be at least 1")
	}
	pool, err := openDatabase(ctx, lookup)
	if err != nil {
		return err
	}
	defer pool.Close()
	page, err := monitor.Store{DB: pool}.List(ctx, monitor.Query{Kind: *kind, All: *all, Limit: *limit})
	if err != nil {
		return err
	}
	for _, f := range page.Findings {
		resolved := "open"
		if f.ResolvedAt != nil {
			resolved = "resolved " + f.ResolvedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(out, "%d\t%s\t%s\t%s\tfirst %s\tlast %s\t%s\t%s\n", f.ID, f.Region, f.Kind, f.Subject,
			f.FirstSeen.UTC().Format(time.RFC3339), f.LastSeen.UTC().Format(time.RFC3339), resolved, f.Detail)
	}
	_, err = fmt.Fprintf(out, "%d findings\n", len(page.Findings))
	return err
}
