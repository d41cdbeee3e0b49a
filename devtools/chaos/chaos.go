// Package chaos drives orders through a running orderflow stack while it
// injects real faults (processes killed, servers restarted, payment provider
// outages), then checks the invariants every order must keep over the final
// state: nothing lost, nothing charged twice, stock conserved.
package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/client"

	"github.com/orderflow/orderflow/devtools/lab"
	"github.com/orderflow/orderflow/devtools/paysim"
	"github.com/orderflow/orderflow/internal/auth"
)

// Config is one chaos run.
type Config struct {
	APIURL   string        // the gateway
	Rate     float64       // orders placed per second
	Duration time.Duration // how long load runs; faults run inside it
	// Quiesce bounds the wait for every accepted order to end after load stops.
	Quiesce time.Duration
	// Faults are the fault kinds to inject, in turn; Hold is how long each lasts.
	Faults []string
	Hold   time.Duration
	// Stack is the lab stack under test, whose nodes (worker, temporal,
	// redis, postgres) the process faults kill and start; Providers are the
	// paysim instances' base URLs.
	Stack     *lab.Stack
	Providers []string
	// ResultsDir receives the JSON report.
	ResultsDir string
	Seed       uint64
	// Tokens mints the bearer tokens of the run's customers and of the
	// operator that creates its catalog (the stack's AUTH_HS256_SECRET).
	Tokens *auth.Minter

	// The fields below reach the rest of the recovery paths; each left
	// zero leaves its part out of the run (and out of the paths it must
	// reach).

	// WorkerURL is the worker's health listener (its /metrics: payment
	// breakers); the gateway's /metrics is read at APIURL.
	WorkerURL string
	// PrimaryProvider names the first provider of PAYMENT_PROVIDERS, as
	// the payments table records it: charges elsewhere are failovers.
	PrimaryProvider string
	// NATSURL is the stack's NATS: a consumer of the run's own records
	// every event the outbox relay publishes (events.go).
	NATSURL string
	// CarrierURL is the simulated carrier, told to lose LostRate of the
	// parcels it takes.
	CarrierURL string
	LostRate   float64
	// HookShare of the orders have a step after their charge fail for
	// good through the worker's chaos hooks (a binary built with -tags
	// chaoshooks; WorkerBin, when set, is checked to carry them).
	HookShare float64
	WorkerBin string
	// ReturnShare of the orders are returned in part once delivered: one
	// unit of a line, received by the operator and refunded.
	ReturnShare float64
	// Subscribers registers the run's webhook subscribers, which fail for
	// windows and recover (subscribers.go); the stack must allow loopback
	// endpoints (WEBHOOKS_ALLOW_PRIVATE).
	Subscribers bool
	// Transport, when set, carries the load's requests (the region drill's
	// names each customer's home region on them); nil: the default one.
	Transport http.RoundTripper
	// Ledger is the database holding the payment simulators' ledger when
	// it is not the orders' (the regions profile keeps it apart, so that
	// losing a region does not lose the provider); nil: the orders'.
	Ledger *pgxpool.Pool
	// Webhooks are the delivery faults of the providers' webhooks (late,
	// out of order, twice), set on each provider (payments.go); zero
	// leaves them as the stack started them.
	Webhooks paysim.Webhooks
	// ThreeDSShare of the orders pay with the 3-D Secure card; the run
	// completes each step after a random wait up to ThreeDSWait, some past
	// PaymentDeadline (the stack's PAYMENT_DEADLINE).
	ThreeDSShare    float64
	ThreeDSWait     time.Duration
	PaymentDeadline time.Duration
	// Disputes is how many delivered orders the run disputes at most.
	Disputes int
}

// FaultKinds are every kind of fault a run can inject.
var FaultKinds = []string{
	"worker_kill", "temporal_kill", "redis_restart", "postgres_restart",
	"provider_outage", "provider_latency", "provider_errors",
	"provider_primary_outage", "smtp_restart", "nats_restart", "temporal_outage",
}

// Runner holds a run's clients and what it observed.
type Runner struct {
	cfg      Config
	db       *pgxpool.Pool
	temporal client.Client
	out      io.Writer
	http     *http.Client // the load's (the HA run records placements through it)
	rnd      *rand.Rand
	rndMu    sync.Mutex

	mu       sync.Mutex
	api      *http.Client
	metrics  *scraper
	events   *eventWatch
	refusals []refusal
	placed   []*placed
	windows  []*window
	sent     int
	clientEr map[string]int // error kind -> count, outside fault windows
	subs     []*chaosSubscriber
	subRep   []SubscriberReport
	pay      payRun
	payRep   *PaymentReport
}

// New returns a runner; db and temporal reach the stack's PostgreSQL and
// Temporal for the checks.
func New(cfg Config, db *pgxpool.Pool, tc client.Client, out io.Writer) *Runner {
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	r := &Runner{cfg: cfg, db: db, temporal: tc, out: out, http: httpClient, rnd: rand.New(rand.NewPCG(cfg.Seed, 42)),
		clientEr: map[string]int{}, pay: payRun{threeDS: map[string]*threeDSOrder{}}}
	if cfg.Transport != nil {
		r.http = &http.Client{Timeout: httpClient.Timeout, Transport: cfg.Transport}
	}
	return r
}

func (r *Runner) float() float64 {
	r.rndMu.Lock()
	defer r.rndMu.Unlock()
	return r.rnd.Float64()
}

func (r *Runner) intn(n int) int {
	r.rndMu.Lock()
	defer r.rndMu.Unlock()
	return r.rnd.IntN(n)
}

// Report is what a run prints and writes.
type Report struct {
	Started    time.Time      `json:"started"`
	Seed       uint64         `json:"seed"`
	Duration   string         `json:"duration"`
	Sent       int            `json:"orders_sent"`
	Accepted   int            `json:"orders_accepted"`
	Statuses   map[string]int `json:"statuses"`
	Faults     map[string]int `json:"faults"`
	Windows    []*window      `json:"fault_windows"`
	Errors     map[string]int `json:"client_errors_outside_faults"`
	Invariants []Invariant    `json:"invariants"`
	// Paths counts how often each recovery path ran; a required one that
	// never ran fails the run.
	Paths []Path `json:"recovery_paths"`
	// Breaker is the breaker chaos case (temporal_outage), when it ran.
	Breaker *BreakerCase      `json:"breaker_case,omitempty"`
	Passed  bool              `json:"passed"`
	Extra   map[string]string `json:"extra,omitempty"`

	// Subscribers are the webhook subscribers' counts, when they ran.
	Subscribers []SubscriberReport `json:"webhook_subscribers,omitempty"`
	// Payments counts the provider webhooks, 3-D Secure steps and
	// disputes, when they ran.
	Payments *PaymentReport `json:"provider_webhooks,omitempty"`
}

// Invariant is one check over the final state.
type Invariant struct {
	Name            string   `json:"name"`
	Passed          bool     `json:"passed"`
	Checked         int      `json:"checked"`
	Counterexamples []string `json:"counterexamples,omitempty"`
}

// Run places orders for the configured duration while injecting faults,
// waits for the orders to end, and checks the invariants.
func (r *Runner) Run(ctx context.Context) (Report, error) {
	rep := Report{Started: time.Now().UTC(), Seed: r.cfg.Seed, Duration: r.cfg.Duration.String()}
	if err := r.checkHooks(); err != nil {
		return rep, err
	}
	skus, err := r.setupCatalog(ctx)
	if err != nil {
		return rep, err
	}
	if err := r.setLostRate(ctx); err != nil {
		return rep, err
	}
	if err := r.setWebhookFaults(ctx); err != nil {
		return rep, err
	}
	if r.cfg.Subscribers {
		defer r.closeSubscribers()
		if err := r.startSubscribers(ctx); err != nil {
			return rep, err
		}
	}
	wctx, stopWatching := context.WithCancel(ctx)
	defer stopWatching()
	var watchers sync.WaitGroup
	r.metrics = newScraper(r.metricsURLs())
	watchers.Add(1)
	go func() { defer watchers.Done(); r.metrics.run(wctx, time.Second) }()
	if r.cfg.NATSURL != "" {
		if r.events, err = watchEvents(wctx, r.cfg.NATSURL, r.cfg.Seed, r.out); err != nil {
			return rep, err
		}
		defer r.events.close()
	}
	fmt.Fprintf(r.out, "chaos: %s of load at %.0f orders/s, faults %s every %s, seed %d\n",
		r.cfg.Duration, r.cfg.Rate, strings.Join(r.cfg.Faults, ","), r.faultEvery(), r.cfg.Seed)

	lctx, stop := context.WithTimeout(ctx, r.cfg.Duration)
	defer stop()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); r.injectFaults(lctx) }()
	wg.Add(1)
	go func() { defer wg.Done(); r.failSubscribers(lctx) }()
	r.load(lctx, skus)
	wg.Wait()
	fmt.Fprintf(r.out, "chaos: load stopped after %d orders; waiting up to %s for every order to end\n", r.sent, r.cfg.Quiesce)

	if err := r.settle(ctx, &rep, skus); err != nil {
		return rep, err
	}
	// The last scrape sees the breakers' final counts.
	r.metrics.scrape()
	stopWatching()
	watchers.Wait()
	if rep.Paths, err = r.paths(ctx); err != nil {
		return rep, err
	}
	rep.Breaker = r.breakerCase()
	rep.Subscribers = r.subRep
	rep.Payments = r.payRep
	rep.Extra = map[string]string{"order task queue backlog age": r.metrics.backlog(), "gateway 503s to placements": r.refusalCodes()}
	rep.Passed = passed(rep.Invariants)
	for _, p := range rep.Paths {
		rep.Passed = rep.Passed && (!p.Required || p.Count > 0)
	}
	if rep.Breaker != nil {
		rep.Passed = rep.Passed && rep.Breaker.Passed
	}
	return rep, nil
}

// settle waits for the orders to settle once load stopped, then fills in
// what the run observed and the invariants over the final state.
func (r *Runner) settle(ctx context.Context, rep *Report, skus []sku) error {
	statuses, err := r.quiesce(ctx)
	if err != nil {
		return err
	}
	rep.Sent, rep.Statuses = r.sent, statuses
	for _, p := range r.placed {
		if p.orderID != "" {
			rep.Accepted++
		}
	}
	rep.Faults = map[string]int{}
	for _, w := range r.windows {
		rep.Faults[w.Kind]++
	}
	rep.Windows, rep.Errors = r.windows, r.clientEr
	rep.Invariants, err = r.check(ctx, skus)
	return err
}

// passed says whether every invariant held.
func passed(invs []Invariant) bool {
	for _, inv := range invs {
		if !inv.Passed {
			return false
		}
	}
	return true
}

// faultEvery spaces the faults so that every kind runs as often as the
// duration allows, with load in between.
func (r *Runner) faultEvery() time.Duration {
	if len(r.cfg.Faults) == 0 {
		return r.cfg.Duration
	}
	// n faults of about their hold each, with at least 8 s of plain load
	// around each; the wait between them leaves room for the faults
	// themselves. The kinds hold for different times: take their mean.
	var total time.Duration
	for _, k := range r.cfg.Faults {
		total += r.holdOf(k)
	}
	hold := total / time.Duration(len(r.cfg.Faults))
	n := int(r.cfg.Duration / (hold + 8*time.Second))
	n = max(n, len(r.cfg.Faults))
	return max((r.cfg.Duration-time.Duration(n)*hold)/time.Duration(n+1), time.Second)
}

// Print writes the report as a table.
func (rep Report) Print(w io.Writer) {
	fmt.Fprintf(w, "\n%-28s %d\n%-28s %d\n", "orders sent", rep.Sent, "orders accepted (2xx)", rep.Accepted)
	keys := make([]string, 0, len(rep.Statuses))
	for k := range rep.Statuses {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %-26s %d\n", strings.ToLower(k), rep.Statuses[k])
	}
	fmt.Fprintf(w, "\n%-20s %6s %10s %10s %8s\n", "fault", "times", "5xx", "timeouts", "other")
	kinds := make([]string, 0, len(rep.Faults))
	for k := range rep.Faults {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		var e5, to, other int
		for _, win := range rep.Windows {
			if win.Kind == k {
				e5, to, other = e5+win.Errors["5xx"], to+win.Errors["timeout"], other+win.Errors["other"]
			}
		}
		fmt.Fprintf(w, "%-20s %6d %10d %10d %8d\n", k, rep.Faults[k], e5, to, other)
	}
	fmt.Fprintf(w, "%-20s %6s %10d %10d %8d\n", "(no fault)", "", rep.Errors["5xx"], rep.Errors["timeout"], rep.Errors["other"])
	if len(rep.Paths) > 0 {
		fmt.Fprintf(w, "\n%-4s  %-66s %6s\n", "", "recovery path", "times")
		for _, p := range rep.Paths {
			verdict := "ok"
			if p.Required && p.Count == 0 {
				verdict = "FAIL"
			} else if !p.Required {
				verdict = "-"
			}
			note := ""
			if p.Note != "" {
				note = "  (" + p.Note + ")"
			}
			fmt.Fprintf(w, "%-4s  %-66s %6d%s\n", verdict, p.Name, p.Count, note)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(rep.Extra)) {
		fmt.Fprintf(w, "%-30s %s\n", k, rep.Extra[k])
	}
	if b := rep.Breaker; b != nil {
		verdict := "PASS"
		if !b.Passed {
			verdict = "FAIL"
		}
		fmt.Fprintf(w, "\n%-4s  breaker case (Temporal frontend down %d times): breaker opened %d times; %d placements accepted with a deferred start; %d fast 503s, %d without Retry-After;\n"+
			"      first refusal %.1f s after the frontend went down; refusal latency p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
			verdict, b.Outages, b.Opened, b.Deferred, b.Refusals, b.NoRetryAfter, b.FirstAfterSec, b.P50Ms, b.P99Ms, b.MaxMs)
	}
	printSubscribers(w, rep.Subscribers)
	printPayments(w, rep.Payments)
	fmt.Fprintln(w)
	PrintInvariants(w, rep.Invariants)
}

// PrintInvariants writes each invariant's verdict and its first ten
// counterexamples.
func PrintInvariants(w io.Writer, invs []Invariant) {
	for _, inv := range invs {
		verdict := "PASS"
		if !inv.Passed {
			verdict = "FAIL"
		}
		fmt.Fprintf(w, "%-4s  %-66s (%d checked)\n", verdict, inv.Name, inv.Checked)
		for i, c := range inv.Counterexamples {
			if i == 10 {
				fmt.Fprintf(w, "        ... %d more\n", len(inv.Counterexamples)-10)
				break
			}
			fmt.Fprintf(w, "        %s\n", c)
		}
	}
}

// Write stores the report as JSON under dir and returns the file's path.
func (rep Report) Write(dir string) (string, error) {
	return writeJSON(dir, rep.Started.Format("20060102T150405Z")+".json", rep)
}

// writeJSON stores v as indented JSON in dir/name and returns the path.
func writeJSON(dir, name string, v any) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("results dir: %w", err)
	}
	path := filepath.Join(dir, name)
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return "", err
	}
	return path, os.WriteFile(path, b, 0o644)
}
