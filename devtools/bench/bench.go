// Package bench is orderflow's load harness: an open-loop generator that
// drives the real HTTP API of a running stack, a bare-Temporal baseline
// measured the same way in the same run, and the report (table, JSON, chart).
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	apiclient "github.com/orderflow/orderflow/client"
	"github.com/orderflow/orderflow/internal/auth"
)

// Config is one bench run.
type Config struct {
	APIURL          string
	Temporal        client.Client
	DB              *pgxpool.Pool
	Namespace       string
	Out             io.Writer
	ResultsDir      string
	Baseline        bool
	BaselineEager   bool          // start baseline workflows eagerly, as a gateway with an embedded worker starts sagas
	StepStart       float64       // first offered rate of the step search, per second
	StepFactor      float64       // each step offers this much more
	StepDuration    time.Duration // length of one step
	StepMax         float64       // stop searching here
	Refine          int           // bisection steps between the last pass and the first failure
	SLO             time.Duration // a step passes while completion p99 stays within this
	FixedDuration   time.Duration // the half-rate run that measures latency, CPU and memory
	Lines           int
	DeclineRatio    float64
	ScarceRatio     float64
	MaxInFlight     int
	WorkerOptions   worker.Options // the baseline worker gets the orderflow worker's settings
	EventSamples    int
	PreloadedOrders int64
	ProcessGroups   []procGroup
	GitCommit       string
	// Tokens mints the bearer tokens of the run's customers and of the
	// operator that creates its catalog (the stack's AUTH_HS256_SECRET).
	Tokens *auth.Minter
}

// Step is one rate of the search.
type Step struct {
	Rate      float64        `json:"offered_per_sec"`
	Sent      int            `json:"sent"`
	Accepted  int            `json:"accepted"`
	Completed int            `json:"completed_in_time"`
	Achieved  float64        `json:"completed_per_sec"`
	Accept    percentiles    `json:"accept_ms"`
	Complete  percentiles    `json:"complete_ms"`
	Errors    map[string]int `json:"errors,omitempty"`
	Pass      bool           `json:"pass"`
}

// Result is what a run reports; its JSON form is bench/results/<timestamp>.json.
type Result struct {
	Timestamp      time.Time          `json:"timestamp"`
	GitCommit      string             `json:"git_commit,omitempty"`
	OrdersPerSec   float64            `json:"orders_per_sec"`
	BaselinePerSec float64            `json:"baseline_per_sec"`
	Ratio          float64            `json:"ratio"`
	FixedRate      float64            `json:"fixed_rate_per_sec"`
	FixedOrders    int                `json:"fixed_orders"`
	AcceptMS       percentiles        `json:"accept_ms"`
	CompleteMS     percentiles        `json:"complete_ms"`
	Errors         map[string]int     `json:"errors"`
	Statuses       map[string]int     `json:"statuses"`
	Compensations  int                `json:"compensations"`
	CPUMSPerOrder  map[string]float64 `json:"cpu_ms_per_order"`
	RSSMB          map[string]float64 `json:"rss_mb"`
	EventsPerOrder float64            `json:"events_per_order"`
	BaselineEvents float64            `json:"baseline_events_per_workflow,omitempty"`
	StoredOrders   int64              `json:"stored_orders_at_start"`
	BaselineSteps  []Step             `json:"baseline_steps,omitempty"`
	OrderSteps     []Step             `json:"order_steps"`
	Timeline       []Point            `json:"timeline"`
	Config         map[string]any     `json:"config"`

	// BaselineStandardPerSec is the baseline started without eager start
	// (through the server's task matching), the way the reference figures
	// were taken; RatioStandard compares against it.
	BaselineStandardPerSec float64    `json:"baseline_standard_per_sec,omitempty"`
	RatioStandard          float64    `json:"ratio_standard,omitempty"`
	Baselines              []Baseline `json:"baselines,omitempty"`
	// ServerCPUMSPerOrder is the Temporal server's CPU per order over the
	// whole order search, comparable with Baseline.ServerCPUMS.
	ServerCPUMSPerOrder float64 `json:"server_cpu_ms_per_order_search"`

	eagerOrders bool
}

// Baseline is the outcome of a baseline search; scripts/bench.sh measures
// each baseline on a freshly started stack and hands it to the order phase.
type Baseline struct {
	Eager       bool    `json:"eager_start"`
	PerSec      float64 `json:"per_sec"`
	Steps       []Step  `json:"steps"`
	Events      float64 `json:"events_per_workflow"`
	ServerCPUMS float64 `json:"server_cpu_ms_per_workflow"`
}

// RunBaseline searches the sustained rate of the bare baseline workflow.
func RunBaseline(ctx context.Context, c Config, eager bool) (Baseline, error) {
	c.BaselineEager = eager
	base, stop, err := startBaseline(c, "bench-"+uuid.NewString()[:8])
	if err != nil {
		return Baseline{}, err
	}
	defer stop()
	mode := "standard start"
	if eager {
		mode = "eager start"
	}
	fmt.Fprintf(c.Out, "baseline (%s): bare workflow of 4 no-op local activities\n", mode)
	b := Baseline{Eager: eager}
	var cpu float64
	b.Steps, b.PerSec, cpu = search(ctx, c, base)
	b.ServerCPUMS = cpu
	b.Events = eventsPer(ctx, c, base.lastIDs(c.EventSamples))
	return b, nil
}

func (res *Result) addBaselines(bs []Baseline) {
	res.Baselines = bs
	for _, b := range bs {
		if b.Eager == res.eagerOrders || len(bs) == 1 {
			res.BaselinePerSec, res.BaselineSteps, res.BaselineEvents = b.PerSec, b.Steps, b.Events
		} else {
			res.BaselineStandardPerSec = b.PerSec
		}
	}
	if res.BaselinePerSec > 0 {
		res.Ratio = res.OrdersPerSec / res.BaselinePerSec
	}
	if res.BaselineStandardPerSec > 0 {
		res.RatioStandard = res.OrdersPerSec / res.BaselineStandardPerSec
	}
}

// Point is one second of the fixed-rate run, for the chart.
type Point struct {
	T         float64 `json:"t"`
	Completed int     `json:"completed"`
	P50, P95  float64
	P99       float64
}

// Run measures the order path: the step search, then the half-rate run.
// Baselines measured before (RunBaseline) are reported beside it; with
// c.Baseline set, an eager baseline is also measured first on this stack.
func Run(ctx context.Context, c Config, baselines []Baseline) (*Result, error) {
	res := &Result{Timestamp: time.Now().UTC(), GitCommit: c.GitCommit, Errors: map[string]int{}, Statuses: map[string]int{},
		StoredOrders: c.PreloadedOrders, eagerOrders: c.BaselineEager,
		Config: map[string]any{"step_start": c.StepStart, "step_factor": c.StepFactor, "step_seconds": c.StepDuration.Seconds(),
			"slo_complete_p99_ms": ms(c.SLO), "fixed_seconds": c.FixedDuration.Seconds(), "lines": c.Lines,
			"decline_ratio": c.DeclineRatio, "scarce_ratio": c.ScarceRatio, "eager_start": c.BaselineEager}}
	orders, err := newOrderTarget(ctx, c)
	if err != nil {
		return nil, err
	}
	run := orders.run

	if c.Baseline {
		b, err := RunBaseline(ctx, c, c.BaselineEager)
		if err != nil {
			return nil, err
		}
		baselines = append(baselines, b)
	}
	fmt.Fprintf(c.Out, "orders: the full saga through the HTTP API\n")
	res.OrderSteps, res.OrdersPerSec, res.ServerCPUMSPerOrder = search(ctx, c, orders)
	res.addBaselines(baselines)

	// The half-rate run: latency, CPU per order and memory at a load the
	// stack sustains with room to spare.
	res.FixedRate = max(1, res.OrdersPerSec/2)
	fmt.Fprintf(c.Out, "fixed: %.0f orders/s for %s\n", res.FixedRate, c.FixedDuration)
	before := takeSnapshot(c.ProcessGroups)
	rss := sampleRSS(c.ProcessGroups, 250*time.Millisecond)
	samples := openLoop(ctx, res.FixedRate, c.FixedDuration, c.MaxInFlight, func(s *sample) { orders.fire(ctx, s) })
	drain(ctx, orders, samples, 30*time.Second)
	after := takeSnapshot(c.ProcessGroups)
	peak := rss.finish()

	var accept, complete []time.Duration
	for _, s := range samples {
		if s.errKind != "" {
			res.Errors[s.errKind]++
			continue
		}
		accept = append(accept, s.accepted.Sub(s.sent))
		if !s.done.IsZero() {
			complete = append(complete, s.done.Sub(s.sent))
		} else {
			res.Errors["not_completed"]++
		}
	}
	res.FixedOrders = len(complete)
	res.AcceptMS, res.CompleteMS = pct(accept), pct(complete)
	res.Timeline = timeline(samples)
	res.CPUMSPerOrder, res.RSSMB = map[string]float64{}, map[string]float64{}
	for g, d := range cpuSince(before, after) {
		if res.FixedOrders > 0 {
			res.CPUMSPerOrder[g] = ms(d) / float64(res.FixedOrders)
		}
	}
	for g, b := range peak {
		res.RSSMB[g] = float64(b) / (1 << 20)
	}
	if err := statuses(ctx, c.DB, run, res); err != nil {
		return nil, err
	}
	res.EventsPerOrder = eventsPer(ctx, c, orderWorkflowIDs(samples, c.EventSamples))
	return res, nil
}

// newOrderTarget creates a run's catalog through the API and returns the
// target that places its orders.
func newOrderTarget(ctx context.Context, c Config) (*orderTarget, error) {
	run := "bench-" + uuid.NewString()[:8]
	httpc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConns: 2048, MaxIdleConnsPerHost: 2048, IdleConnTimeout: time.Minute}}
	if c.Tokens == nil {
		return nil, errors.New("bench: no token minter (AUTH_HS256_SECRET)")
	}
	gateway := apiclient.New(c.APIURL, apiclient.WithHTTPClient(httpc))
	skus, scarce, err := setupCatalog(ctx, gateway.With(apiclient.WithToken(c.Tokens.Bearer("bench-operator", auth.RoleOperator))), run)
	if err != nil {
		return nil, err
	}
	return &orderTarget{api: gateway, db: c.DB, skus: skus, scarce: scarce, lines: c.Lines,
		decline: c.DeclineRatio, scarceP: c.ScarceRatio, run: run, tokens: c.Tokens}, nil
}

// setupCatalog creates the run's products through the API as an operator:
// plenty of common SKUs and a few scarce ones, so that some orders run out
// of stock and compensate, as real traffic does.
func setupCatalog(ctx context.Context, operator *apiclient.Client, run string) (skus, scarce []string, err error) {
	put := func(sku string, price, onHand int) error {
		_, _, err := operator.PutProduct(ctx, sku, apiclient.ProductRequest{Name: "bench " + sku, PriceCents: int64(price), OnHand: onHand})
		return err
	}
	for i := range 50 {
		sku := fmt.Sprintf("%s-%02d", run, i)
		if err := put(sku, 500+rand.IntN(5000), 10_000_000); err != nil {
			return nil, nil, err
		}
		skus = append(skus, sku)
	}
	for i := range 3 {
		sku := fmt.Sprintf("%s-scarce-%d", run, i)
		if err := put(sku, 9900, 20); err != nil {
			return nil, nil, err
		}
		scarce = append(scarce, sku)
	}
	return skus, scarce, nil
}

func startBaseline(c Config, run string) (*baselineTarget, func(), error) {
	tq := run + "-baseline"
	acts := &baselineActivities{}
	w := worker.New(c.Temporal, tq, c.WorkerOptions)
	w.RegisterWorkflowWithOptions(BaselineWorkflow, workflow.RegisterOptions{Name: "BenchBaseline"})
	w.RegisterActivity(acts)
	if err := w.Start(); err != nil {
		return nil, nil, fmt.Errorf("start baseline worker: %w", err)
	}
	return &baselineTarget{temporal: c.Temporal, taskQueue: tq, acts: acts, run: run, eager: c.BaselineEager}, w.Stop, nil
}

// search raises the offered rate step by step until a step fails (fewer than
// 95% of its arrivals complete within the step plus the SLO, more than 1%
// errors, or completion p99 above the SLO), then bisects between the last
// pass and the failure. The sustained rate is the best completed rate of a
// passing step.
func search(ctx context.Context, c Config, t target) (steps []Step, best, serverCPUMS float64) {
	before := takeSnapshot(c.ProcessGroups)
	completed := 0
	lastPass, firstFail := 0.0, 0.0
	for rate := c.StepStart; rate <= c.StepMax; rate *= c.StepFactor {
		st := runStep(ctx, c, t, rate)
		steps, completed = append(steps, st), completed+st.Completed
		if !st.Pass {
			firstFail = rate
			break
		}
		lastPass, best = rate, max(best, st.Achieved)
	}
	for i := 0; i < c.Refine && firstFail > 0 && lastPass > 0; i++ {
		rate := (lastPass + firstFail) / 2
		st := runStep(ctx, c, t, rate)
		steps, completed = append(steps, st), completed+st.Completed
		if st.Pass {
			lastPass, best = rate, max(best, st.Achieved)
		} else {
			firstFail = rate
		}
	}
	if completed > 0 {
		serverCPUMS = ms(cpuSince(before, takeSnapshot(c.ProcessGroups))["temporal"]) / float64(completed)
	}
	return steps, best, serverCPUMS
}

func runStep(ctx context.Context, c Config, t target, rate float64) Step {
	start := time.Now()
	samples := openLoop(ctx, rate, c.StepDuration, c.MaxInFlight, func(s *sample) { t.fire(ctx, s) })
	deadline := start.Add(c.StepDuration + c.SLO)
	time.Sleep(time.Until(deadline))
	_ = t.complete(ctx, samples)
	st := Step{Rate: rate, Sent: len(samples), Errors: map[string]int{}}
	var accept, complete []time.Duration
	errs := 0
	for _, s := range samples {
		if s.errKind != "" {
			st.Errors[s.errKind]++
			errs++
			continue
		}
		st.Accepted++
		accept = append(accept, s.accepted.Sub(s.sent))
		if !s.done.IsZero() && !s.done.After(deadline) {
			st.Completed++
			complete = append(complete, s.done.Sub(s.sent))
		}
	}
	st.Achieved = float64(st.Completed) / c.StepDuration.Seconds()
	st.Accept, st.Complete = pct(accept), pct(complete)
	st.Pass = st.Sent > 0 && float64(st.Completed) >= 0.95*float64(st.Sent) &&
		float64(errs) <= 0.01*float64(st.Sent) && st.Complete.P99 <= ms(c.SLO)
	verdict := "pass"
	if !st.Pass {
		verdict = "FAIL"
	}
	fmt.Fprintf(c.Out, "  offered %6.1f/s  completed %6.1f/s  accept p99 %6.1f ms  complete p50 %6.1f p99 %7.1f ms  errors %d  %s\n",
		rate, st.Achieved, st.Accept.P99, st.Complete.P50, st.Complete.P99, errs, verdict)
	// Let the backlog drain so the next step starts from an idle system.
	drain(ctx, t, samples, 60*time.Second)
	return st
}

func drain(ctx context.Context, t target, samples []*sample, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if err := t.complete(ctx, samples); err != nil {
			return
		}
		pending := 0
		for _, s := range samples {
			if s.id != "" && s.done.IsZero() {
				pending++
			}
		}
		if pending == 0 {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func timeline(samples []*sample) []Point {
	if len(samples) == 0 {
		return nil
	}
	t0 := samples[0].sent
	buckets := map[int][]time.Duration{}
	last := 0
	for _, s := range samples {
		if s.done.IsZero() {
			continue
		}
		b := int(s.done.Sub(t0) / time.Second)
		buckets[b] = append(buckets[b], s.done.Sub(s.sent))
		last = max(last, b)
	}
	var out []Point
	for b := 0; b <= last; b++ {
		p := pct(buckets[b])
		out = append(out, Point{T: float64(b), Completed: p.N, P50: p.P50, P95: p.P95, P99: p.P99})
	}
	return out
}

func statuses(ctx context.Context, db *pgxpool.Pool, run string, res *Result) error {
	const q = `SELECT o.status, count(*) FROM orders o
		JOIN idempotency_keys k ON k.order_id = o.order_id AND k.idempotency_key LIKE $1
		GROUP BY o.status`
	rows, err := db.Query(ctx, q, run+"-%")
	if err != nil {
		return fmt.Errorf("count statuses: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return fmt.Errorf("count statuses: %w", err)
		}
		res.Statuses[s] = n
		if s == "FAILED" || s == "CANCELLED" {
			res.Compensations += n
		}
	}
	return rows.Err()
}

func orderWorkflowIDs(samples []*sample, n int) []string {
	var ids []string
	for _, i := range rand.Perm(len(samples)) {
		if samples[i].id != "" {
			ids = append(ids, "order-"+samples[i].id)
		}
		if len(ids) == n {
			break
		}
	}
	return ids
}

// eventsPer averages the history length of the sampled workflows.
func eventsPer(ctx context.Context, c Config, ids []string) float64 {
	total, n := 0, 0
	for _, id := range ids {
		d, err := c.Temporal.DescribeWorkflowExecution(ctx, id, "")
		if err != nil {
			continue
		}
		total += int(d.GetWorkflowExecutionInfo().GetHistoryLength())
		n++
	}
	if n == 0 {
		return 0
	}
	return float64(total) / float64(n)
}

// Write saves the JSON result and the chart under dir and returns their paths.
func Write(res *Result, dir string) (jsonPath, chartPath string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("results dir: %w", err)
	}
	stamp := res.Timestamp.Format("20060102T150405Z")
	jsonPath = filepath.Join(dir, stamp+".json")
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return "", "", fmt.Errorf("encode result: %w", err)
	}
	if err := os.WriteFile(jsonPath, b, 0o644); err != nil {
		return "", "", fmt.Errorf("write result: %w", err)
	}
	chartPath = filepath.Join(dir, stamp+".svg")
	if err := os.WriteFile(chartPath, []byte(chart(res)), 0o644); err != nil {
		return "", "", fmt.Errorf("write chart: %w", err)
	}
	return jsonPath, chartPath, nil
}

// Table renders the human summary.
func Table(res *Result) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "\n%-34s %10.1f\n", "sustained orders/s (full saga)", res.OrdersPerSec)
	for _, bl := range res.Baselines {
		mode := "standard start"
		if bl.Eager {
			mode = "eager start"
		}
		fmt.Fprintf(&b, "%-34s %10.1f   (ratio %.2f; server %.1f ms cpu/workflow, %.0f events)\n", "baseline/s, "+mode, bl.PerSec,
			res.OrdersPerSec/bl.PerSec, bl.ServerCPUMS, bl.Events)
	}
	fmt.Fprintf(&b, "%-34s %10.1f\n", "server cpu ms/order (search)", res.ServerCPUMSPerOrder)
	fmt.Fprintf(&b, "%-34s %10.1f\n", "vs reference app (7.5 orders/s)", res.OrdersPerSec/7.5)
	fmt.Fprintf(&b, "\nat %.1f orders/s for the fixed run (%d orders):\n", res.FixedRate, res.FixedOrders)
	fmt.Fprintf(&b, "  %-22s %8s %8s %8s %8s\n", "", "p50", "p95", "p99", "max")
	fmt.Fprintf(&b, "  %-22s %8.1f %8.1f %8.1f %8.1f  ms\n", "accept", res.AcceptMS.P50, res.AcceptMS.P95, res.AcceptMS.P99, res.AcceptMS.Max)
	fmt.Fprintf(&b, "  %-22s %8.1f %8.1f %8.1f %8.1f  ms\n", "complete", res.CompleteMS.P50, res.CompleteMS.P95, res.CompleteMS.P99, res.CompleteMS.Max)
	fmt.Fprintf(&b, "\n  %-10s %14s %10s\n", "process", "cpu ms/order", "peak MB")
	var groups []string
	for g := range res.RSSMB {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	for _, g := range groups {
		fmt.Fprintf(&b, "  %-10s %14.2f %10.1f\n", g, res.CPUMSPerOrder[g], res.RSSMB[g])
	}
	fmt.Fprintf(&b, "\n  history events per order %.1f", res.EventsPerOrder)
	if res.BaselineEvents > 0 {
		fmt.Fprintf(&b, " (baseline %.1f)", res.BaselineEvents)
	}
	fmt.Fprintf(&b, "\n  statuses %v, compensations %d, errors %v, orders stored at start %d\n", res.Statuses, res.Compensations, res.Errors, res.StoredOrders)
	return b.String()
}

// CountOrders is how many orders the database holds, leaving out the deep
// health check's synthetic ones.
func CountOrders(ctx context.Context, db *pgxpool.Pool) (int64, error) {
	var n int64
	err := db.QueryRow(ctx, `SELECT count(*) FROM orders WHERE NOT synthetic`).Scan(&n)
	return n, err
}
