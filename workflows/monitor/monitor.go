// Package monitor is the invariant monitor's workflow: two Temporal
// Schedules per region start it on the region's admin task queue, every 5
// minutes over the recent orders and nightly over all of them, and its
// activities (activities/monitor) run the checks `make chaos` proves and
// record each breach as a finding (docs/operations.md, "Invariant
// monitor").
package monitor

import (
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	checks "github.com/orderflow/orderflow/activities/monitor"
)

// Workflow is the registered type of the monitor workflow.
const Workflow = "InvariantMonitor"

// The monitor's windows (docs/operations.md). A run every RecentEvery
// checks the orders placed in [now-RecentWindow, now-Grace) and the SKUs
// whose stock moved since now-RecentWindow; the nightly run checks every
// order, a day at a time, and every SKU.
const (
	RecentEvery  = 5 * time.Minute
	RecentWindow = 2 * time.Hour
	// Grace leaves out the orders placed in the last minutes: the saga
	// writes an order's row and charges it within seconds of the 2xx,
	// longer while a dependency is down.
	Grace = 10 * time.Minute
	// StuckAfter: an order not settled this long after it was placed is
	// stuck (an order may wait PAYMENT_DEADLINE, 30 minutes by default, in
	// PAYMENT_PENDING, then its compensation runs).
	StuckAfter = time.Hour
	// LedgerLookback bounds the nightly run's money checks: the orders
	// placed within it are reconciled with their providers' ledgers (older
	// ones are past the return window, their money settled, and listing a
	// provider's whole history every night would cost an API page per 100
	// charges).
	LedgerLookback = 35 * 24 * time.Hour
	// Chunk is the nightly run's step through the orders.
	Chunk = 24 * time.Hour
	// NightlyCron starts the nightly run (UTC).
	NightlyCron = "30 3 * * *"
)

// ScheduleID is the ID of the Schedule of a region's runs, recent or
// nightly; operators pause, trigger or inspect it with `temporal schedule`.
func ScheduleID(region string, nightly bool) string {
	if nightly {
		return "monitor-nightly-" + region
	}
	return "monitor-recent-" + region
}

// Input is a run: the region's recent orders, or all of them (Nightly).
type Input struct {
	Region  string `json:"region"`
	Nightly bool   `json:"nightly,omitempty"`
}

// Result counts what a run checked and found, by kind; Opened findings
// are new, Resolved ones (nightly only) are no longer seen.
type Result struct {
	Checked  int            `json:"checked"`
	Found    map[string]int `json:"found,omitempty"`
	Opened   int            `json:"opened"`
	Resolved int64          `json:"resolved"`
}

func (r *Result) add(c checks.CheckResult) {
	r.Checked += c.Checked
	r.Opened += c.Opened
	// By the kinds' list, not over the map: a workflow never ranges over a
	// map (workflowcheck), even where the order cannot matter.
	for _, k := range checks.Kinds() {
		if n := c.Found[k]; n > 0 {
			if r.Found == nil {
				r.Found = map[string]int{}
			}
			r.Found[k] += n
		}
	}
}

// run is one run's state.
type run struct {
	in     Input
	now    time.Time
	result Result
	failed []error
}

// Run checks the invariants and records the findings. A check that fails
// after its retries does not stop the others; the run then fails naming
// it, and resolves nothing.
func Run(ctx workflow.Context, in Input) (Result, error) {
	r := &run{in: in, now: workflow.Now(ctx).UTC()}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 5 * time.Second, MaximumAttempts: 3},
	})
	var a *checks.Activities
	window := checks.Window(r.now, RecentWindow, Grace, StuckAfter, in.Region)
	if in.Nightly {
		r.nightly(ctx)
	} else {
		r.check(ctx, a.MonitorOrders, checks.CheckInput{Scope: window, Seen: r.now})
		r.check(ctx, a.MonitorMoney, checks.CheckInput{Scope: window, ListUntil: r.now, Seen: r.now})
	}
	r.check(ctx, a.MonitorStock, checks.CheckInput{Scope: window, All: in.Nightly, Seen: r.now})
	r.check(ctx, a.MonitorSagas, checks.CheckInput{Scope: checks.Scope{Region: in.Region, StuckBefore: window.StuckBefore}, Seen: r.now})
	if len(r.failed) > 0 {
		return r.result, errors.Join(r.failed...)
	}
	if in.Nightly {
		err := workflow.ExecuteActivity(ctx, a.MonitorResolve, checks.ResolveInput{Region: in.Region, Kinds: checks.Kinds(), Seen: r.now}).Get(ctx, &r.result.Resolved)
		if err != nil {
			return r.result, err
		}
	}
	workflow.GetLogger(ctx).Info("invariant monitor run", "region", in.Region, "nightly", in.Nightly,
		"checked", r.result.Checked, "found", r.result.Found, "opened", r.result.Opened, "resolved", r.result.Resolved)
	return r.result, nil
}

// nightly checks every order of the region a Chunk at a time, from the
// first, and reconciles the money of those within LedgerLookback.
func (r *run) nightly(ctx workflow.Context) {
	var a *checks.Activities
	var first time.Time
	if err := workflow.ExecuteActivity(ctx, a.MonitorFirstOrder, checks.FirstOrderInput{Region: r.in.Region}).Get(ctx, &first); err != nil {
		r.failed = append(r.failed, err)
		return
	}
	if first.IsZero() {
		return
	}
	until, stuck := r.now.Add(-Grace), r.now.Add(-StuckAfter)
	ledgerFrom := r.now.Add(-LedgerLookback)
	for since := first.UTC().Truncate(Chunk); since.Before(until); since = since.Add(Chunk) {
		s := checks.Scope{Since: since, Until: since.Add(Chunk), StuckBefore: stuck, Region: r.in.Region}
		if s.Until.After(until) {
			s.Until = until
		}
		r.check(ctx, a.MonitorOrders, checks.CheckInput{Scope: s, Seen: r.now})
		if !s.Until.Before(ledgerFrom) {
			// A day's orders are charged within hours, but for an
			// operator's re-run: a day more of the ledger holds them.
			list := s.Until.Add(Chunk)
			if list.After(r.now) {
				list = r.now
			}
			r.check(ctx, a.MonitorMoney, checks.CheckInput{Scope: s, ListUntil: list, Seen: r.now})
		}
	}
}

// check runs one check activity (a method of checks.Activities).
func (r *run) check(ctx workflow.Context, activity any, in checks.CheckInput) {
	var res checks.CheckResult
	if err := workflow.ExecuteActivity(ctx, activity, in).Get(ctx, &res); err != nil {
		r.failed = append(r.failed, err)
		return
	}
	r.result.add(res)
}
