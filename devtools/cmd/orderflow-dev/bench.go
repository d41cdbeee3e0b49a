package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderflow/orderflow/devtools/bench"
	"github.com/orderflow/orderflow/devtools/lab"
	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/boot"
	"github.com/orderflow/orderflow/internal/config"
	"github.com/orderflow/orderflow/workers"
	"github.com/orderflow/orderflow/workflows/order"
)

// runBench drives a running stack (API_URL, DATABASE_URL, TEMPORAL_ADDRESS)
// and writes bench/results/<timestamp>.json and .svg.
func runBench(ctx context.Context, args []string) error {
	v := product()
	common, authCfg := boot.Common(v, nil), boot.Auth(v)
	pool := workers.Config{Region: config.Region.Get(v), MaxConcurrentActivities: config.WorkerMaxActivities.Get(v),
		MaxConcurrentLocalActivities: config.WorkerMaxLocalActivities.Get(v), MaxConcurrentWorkflowTasks: config.WorkerMaxWorkflowTasks.Get(v)}
	if err := v.Err(); err != nil {
		return err
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	api := fs.String("api", envOr("API_URL", ""), "gateway base URL (default: the stack's)")
	data := fs.String("data", envOr("STACK_DATA_DIR", ".data"), "the lab stack whose processes are measured (its directory)")
	results := fs.String("results", "bench/results", "directory for the JSON result and the chart")
	c := bench.Config{}
	fs.Float64Var(&c.StepStart, "rate-start", 20, "first offered rate of the step search (per second)")
	fs.Float64Var(&c.StepFactor, "step-factor", 1.25, "each step offers this much more")
	fs.DurationVar(&c.StepDuration, "step", 10*time.Second, "length of one step")
	fs.Float64Var(&c.StepMax, "rate-max", 1000, "highest rate the search offers")
	fs.IntVar(&c.Refine, "refine", 2, "bisection steps after the first failing step")
	fs.DurationVar(&c.SLO, "slo", 2*time.Second, "a step passes while completion p99 stays within this (the design's 2 s for payment)")
	fs.DurationVar(&c.FixedDuration, "fixed", 60*time.Second, "length of the half-rate run")
	fs.IntVar(&c.Lines, "lines", 2, "lines per order")
	fs.Float64Var(&c.DeclineRatio, "decline", 0.05, "share of orders paid with tok_chargeDeclined")
	fs.Float64Var(&c.ScarceRatio, "scarce", 0.01, "chance that a line names a scarce SKU (some run out and compensate)")
	fs.IntVar(&c.MaxInFlight, "max-in-flight", 4096, "client-side cap on requests in flight")
	fs.IntVar(&c.EventSamples, "event-samples", 20, "workflows sampled for history length")
	fs.BoolVar(&c.BaselineEager, "baseline-eager", envOr("API_EMBED_WORKER", "false") == "true",
		"start baseline workflows eagerly (default: as the gateway does, from API_EMBED_WORKER)")
	noBaseline := fs.Bool("no-baseline", false, "skip the bare-Temporal baseline")
	phase := fs.String("phase", "all", "all: baseline then orders on this stack; baseline: only the baseline, saved to --save-baseline; orders: only the orders, reporting --baselines")
	saveBaseline := fs.String("save-baseline", "", "with --phase baseline: where to save the baseline")
	baselineFiles := fs.String("baselines", "", "with --phase orders: comma-separated baselines saved by earlier phases")
	preload := fs.Int("preload", 0, "insert this many stored orders before the run (growth check)")
	saveCapacity := fs.String("save-capacity", "", "with --phase orders: where to save the sustained orders/s the step search found")
	var oc bench.OverloadConfig
	fs.Float64Var(&oc.Capacity, "capacity", 0, "with --phase overload: the orders/s the multiples are taken of (default: --capacity-file)")
	capacityFile := fs.String("capacity-file", "", "with --phase overload: a file saved by --save-capacity")
	factors := fs.String("factors", "0.5,1,2,5", "with --phase overload: multiples of the capacity offered by clients that take a refusal as final")
	retryFactors := fs.String("retry-factors", "2", "with --phase overload: multiples offered by clients that honour Retry-After")
	vegetaFactors := fs.String("vegeta-factors", "", "with --phase overload: multiples offered by vegeta (the pinned build), the independent cross-check")
	fs.DurationVar(&oc.Step, "overload-step", 30*time.Second, "with --phase overload: how long each multiple is offered")
	fs.DurationVar(&oc.DrainLimit, "drain-limit", 3*time.Minute, "with --phase overload: how long accepted orders may take to end after a step before they count as lost")
	check := fs.Bool("check", false, "with --phase overload: fail unless every accepted order ended, none was charged twice and every refusal carried Retry-After")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c.Baseline = !*noBaseline
	// CPU and memory are read from the stack's processes, found by the
	// lab's state.
	d, err := lab.LoadDev(*data)
	if err != nil {
		return fmt.Errorf("bench: the stack under %s: %w", *data, err)
	}
	c.ProcessGroups = bench.Groups(d.Stack)
	if *api == "" {
		*api = d.APIURL()
	}
	c.APIURL = strings.TrimRight(*api, "/")
	c.Out = os.Stdout
	c.ResultsDir = *results
	c.WorkerOptions = pool.WorkerOptions()
	if *phase != "baseline" {
		// The load carries customer tokens minted in process from the
		// stack's development secret.
		m, err := auth.NewMinter(authCfg)
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		c.Tokens = m
	}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		c.GitCommit = strings.TrimSpace(string(out))
		// A run on uncommitted changes measured code that commit does not hold.
		if exec.Command("git", "diff", "--quiet", "HEAD").Run() != nil {
			c.GitCommit += "-dirty"
		}
	}

	log, err := boot.Logger(common, "bench")
	if err != nil {
		return err
	}
	cl, err := boot.Open(ctx, common, log, boot.ClientOptions{OrderIDOf: order.IDOf})
	if err != nil {
		return err
	}
	defer cl.Close()
	c.DB, c.Temporal = cl.DB, cl.Temporal
	if *preload > 0 {
		fmt.Printf("preloading %d stored orders\n", *preload)
		if err := preloadOrders(ctx, cl.DB, *preload); err != nil {
			return err
		}
	}
	if c.PreloadedOrders, err = bench.CountOrders(ctx, cl.DB); err != nil {
		return fmt.Errorf("count orders: %w", err)
	}
	var baselines []bench.Baseline
	switch *phase {
	case "overload":
		return runOverload(ctx, c, oc, *capacityFile, *factors, *retryFactors, *vegetaFactors, *data, *check)
	case "baseline":
		b, err := bench.RunBaseline(ctx, c, c.BaselineEager)
		if err != nil {
			return err
		}
		raw, _ := json.MarshalIndent(b, "", "  ")
		if *saveBaseline == "" {
			fmt.Println(string(raw))
			return nil
		}
		return os.WriteFile(*saveBaseline, raw, 0o644)
	case "orders":
		c.Baseline = false
		for _, f := range strings.Split(*baselineFiles, ",") {
			if f == "" {
				continue
			}
			raw, err := os.ReadFile(f)
			if err != nil {
				return fmt.Errorf("read baseline: %w", err)
			}
			var b bench.Baseline
			if err := json.Unmarshal(raw, &b); err != nil {
				return fmt.Errorf("read baseline %s: %w", f, err)
			}
			baselines = append(baselines, b)
		}
	case "all":
	default:
		return fmt.Errorf("bench: unknown --phase %q", *phase)
	}
	res, err := bench.Run(ctx, c, baselines)
	if err != nil {
		return err
	}
	fmt.Print(bench.Table(res))
	jsonPath, chartPath, err := bench.Write(res, c.ResultsDir)
	if err != nil {
		return err
	}
	fmt.Printf("\nwrote %s and %s\n", jsonPath, chartPath)
	if *saveCapacity != "" {
		// On a machine too busy for any step to pass, the overload phase
		// still needs a capacity: the most any step completed.
		capacity := res.OrdersPerSec
		if capacity == 0 {
			for _, st := range res.OrderSteps {
				capacity = max(capacity, st.Achieved)
			}
			fmt.Printf("no step passed: the overload phase takes the best completed rate, %.1f orders/s, as the capacity\n", capacity)
		}
		return os.WriteFile(*saveCapacity, []byte(strconv.FormatFloat(capacity, 'f', 1, 64)+"\n"), 0o644)
	}
	return nil
}

// runOverload runs the overload phase and writes its JSON beside the
// bench's other results; with check, a lost or doubled order or a refusal
// without Retry-After fails it (timings are reported, never asserted).
func runOverload(ctx context.Context, c bench.Config, oc bench.OverloadConfig, capacityFile, factors, retryFactors, vegetaFactors, data string, check bool) error {
	if oc.Capacity <= 0 && capacityFile != "" {
		raw, err := os.ReadFile(capacityFile)
		if err != nil {
			return fmt.Errorf("bench: capacity: %w", err)
		}
		if oc.Capacity, err = strconv.ParseFloat(strings.TrimSpace(string(raw)), 64); err != nil {
			return fmt.Errorf("bench: capacity in %s: %w", capacityFile, err)
		}
	}
	var err error
	if oc.Factors, err = floats(factors); err != nil {
		return err
	}
	if oc.RetryFactors, err = floats(retryFactors); err != nil {
		return err
	}
	if oc.VegetaFactors, err = floats(vegetaFactors); err != nil {
		return err
	}
	if len(oc.VegetaFactors) > 0 {
		root, err := checkout()
		if err != nil {
			return err
		}
		if oc.Vegeta, err = lab.GoTool(root, "vegeta"); err != nil {
			return err
		}
		oc.WorkDir = filepath.Join(data, "vegeta")
	}
	res, err := bench.RunOverload(ctx, c, oc)
	if err != nil {
		return err
	}
	res.Backend = envOr("TEMPORAL_BACKEND", "dev")
	fmt.Print(bench.OverloadTable(res))
	path, err := bench.WriteOverload(res, c.ResultsDir)
	if err != nil {
		return err
	}
	fmt.Printf("\nwrote %s\n", path)
	if check && !res.Holds() {
		return errors.New("bench: overload: an accepted order was lost or charged twice, a key split, or a refusal came without Retry-After (see above)")
	}
	return nil
}

// floats parses a comma-separated list of numbers; "" is none.
func floats(list string) ([]float64, error) {
	out := []float64{}
	for _, f := range strings.Split(list, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("bench: %q is not a positive number", f)
		}
		out = append(out, v)
	}
	return out, nil
}

// preloadOrders stores n finished orders, with their lines, history,
// payments and idempotency keys, as months of traffic would have left them.
func preloadOrders(ctx context.Context, pool *pgxpool.Pool, n int) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	const q = `
WITH sku AS (SELECT sku, price_cents FROM products ORDER BY sku LIMIT 1),
o AS (
  INSERT INTO orders (order_id, customer_id, region, status, total_cents, currency, created_at, updated_at)
  SELECT gen_random_uuid(), 'preload-' || (g % 50000), 'local',
         CASE WHEN g % 20 = 0 THEN 'FAILED' ELSE 'CONFIRMED' END, (SELECT price_cents FROM sku), 'USD',
         now() - make_interval(secs => g), now() - make_interval(secs => g)
  FROM generate_series(1, $1) g
  RETURNING order_id, customer_id, status, total_cents, created_at
), i AS (
  INSERT INTO order_items (order_id, line, sku, quantity, unit_price_cents)
  SELECT order_id, 1, (SELECT sku FROM sku), 1, total_cents FROM o
), h AS (
  INSERT INTO order_status_history (order_id, status, at) SELECT order_id, status, created_at FROM o
), p AS (
  INSERT INTO payments (idempotency_key, order_id, provider, charge_id, amount_cents, currency, status)
  SELECT 'charge-' || order_id, order_id, 'paysim', 'ch_' || order_id, total_cents, 'USD', 'charged' FROM o WHERE status = 'CONFIRMED'
)
INSERT INTO idempotency_keys (customer_id, operation, idempotency_key, request_hash, order_id, response_status, response_body, created_at, expires_at)
SELECT customer_id, 'create_order', 'preload-' || order_id, '\x00', order_id, 202, '{}', created_at, created_at + interval '24 hours' FROM o`
	tag, err := pool.Exec(ctx, q, n)
	if err != nil {
		return fmt.Errorf("preload orders: %w", err)
	}
	_, err = pool.Exec(ctx, `ANALYZE`)
	fmt.Printf("preloaded %d orders\n", tag.RowsAffected())
	return err
}
