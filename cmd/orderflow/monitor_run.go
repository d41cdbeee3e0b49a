package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/orderflow/orderflow/activities/monitor"
	"github.com/orderflow/orderflow/internal/config"
	monitorflow "github.com/orderflow/orderflow/workflows/monitor"
)

// runMonitorNow is `orderflow monitor run`: it triggers the region's
// monitor Schedule now (as `temporal schedule trigger` does; a run still
// going is waited for, then this one runs), waits for the run it started,
// and prints what it checked and found and the findings left open. It fails
// when the run failed or found a breach. It reads the Temporal and database
// settings as `orderflow failover` does; --region defaults to
// ORDERFLOW_REGION. The run checks what the Schedule's runs check: the
// recent orders but those of the last minutes (workflows/monitor Grace),
// or with --nightly every order.
func runMonitorNow(ctx context.Context, out io.Writer, lookup env, args []string) error {
	fs := flag.NewFlagSet("monitor run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	nightly := fs.Bool("nightly", false, "")
	regionName := fs.String("region", "", "")
	wait := fs.Duration("wait", 5*time.Minute, "")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 || *wait <= 0 {
		return fmt.Errorf("monitor run: bad arguments %q\n%s", args, monitorUsage)
	}
	if *regionName == "" {
		raw, _ := lookup(config.Region.Setting().Name)
		*regionName = strings.TrimSpace(raw)
		if *regionName == "" {
			*regionName = config.Region.Default()
		}
	}
	if _, err := config.Region.Parse(*regionName); err != nil {
		return fmt.Errorf("monitor run: --region: %w", err)
	}
	cfg, v := loadFailover(lookup)
	if err := v.Err(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *wait)
	defer cancel()
	return withRegion(ctx, cfg.Boot, "monitor", func(r *region, _ *zap.Logger) error {
		return r.monitorRun(ctx, out, *regionName, *nightly)
	})
}

// monitorRun triggers the region's recent (or nightly) Schedule and prints
// the report of the run it started.
func (r *region) monitorRun(ctx context.Context, out io.Writer, region string, nightly bool) error {
	id := monitorflow.ScheduleID(region, nightly)
	run, err := triggerSchedule(ctx, r.temporal, id)
	if err != nil {
		return fmt.Errorf("monitor run: %w", err)
	}
	scope := "the recent orders (placed " + monitorflow.RecentWindow.String() + " to " + monitorflow.Grace.String() + " ago), stock moved since, stuck sagas"
	if nightly {
		scope = "every order, every SKU, stuck sagas"
	}
	fmt.Fprintf(out, "invariant monitor run %s (schedule %s, region %s): %s\n", run.WorkflowID, id, region, scope)
	var res monitorflow.Result
	if err := r.temporal.GetWorkflow(ctx, run.WorkflowID, run.FirstExecutionRunID).Get(ctx, &res); err != nil {
		return fmt.Errorf("monitor run %s: %w", run.WorkflowID, err)
	}
	found := 0
	for _, k := range monitor.Kinds() {
		found += res.Found[k]
	}
	fmt.Fprintf(out, "checked %d, found %d, opened %d, resolved %d\n", res.Checked, found, res.Opened, res.Resolved)
	for _, k := range monitor.Kinds() {
		if n := res.Found[k]; n > 0 {
			fmt.Fprintf(out, "  %-20s %d\n", k, n)
		}
	}
	page, err := monitor.Store{DB: r.db}.List(ctx, monitor.Query{Limit: 1000})
	if err != nil {
		return err
	}
	open := 0
	for _, f := range page.Findings {
		if f.Region == region {
			open++
		}
	}
	fmt.Fprintf(out, "open findings in %s: %d (orderflow monitor findings lists them; runbook in docs/operations.md)\n", region, open)
	if found > 0 {
		return fmt.Errorf("monitor run: %d breaches found", found)
	}
	fmt.Fprintln(out, "clean: every invariant held")
	return nil
}

// triggerSchedule starts the Schedule's action now and returns the
// workflow it started. A run of the Schedule still going is waited for
// (BUFFER_ONE), never overlapped.
func triggerSchedule(ctx context.Context, tc client.Client, id string) (client.ScheduleWorkflowExecution, error) {
	h := tc.ScheduleClient().GetHandle(ctx, id)
	before, err := h.Describe(ctx)
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return client.ScheduleWorkflowExecution{}, fmt.Errorf("no schedule %s: a worker of the region creates it when it starts", id)
		}
		return client.ScheduleWorkflowExecution{}, fmt.Errorf("schedule %s: %w", id, err)
	}
	var known []string
	for _, a := range before.Info.RecentActions {
		if a.StartWorkflowResult != nil {
			known = append(known, a.StartWorkflowResult.FirstExecutionRunID)
		}
	}
	if err := h.Trigger(ctx, client.ScheduleTriggerOptions{Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_BUFFER_ONE}); err != nil {
		return client.ScheduleWorkflowExecution{}, fmt.Errorf("trigger schedule %s: %w", id, err)
	}
	for {
		d, err := h.Describe(ctx)
		if err != nil {
			return client.ScheduleWorkflowExecution{}, fmt.Errorf("schedule %s: %w", id, err)
		}
		for _, a := range d.Info.RecentActions {
			if w := a.StartWorkflowResult; w != nil && !slices.Contains(known, w.FirstExecutionRunID) {
				return *w, nil
			}
		}
		select {
		case <-ctx.Done():
			return client.ScheduleWorkflowExecution{}, fmt.Errorf("schedule %s: the triggered run did not start: %w", id, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
