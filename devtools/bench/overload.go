package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderflow/orderflow"
	apiclient "github.com/orderflow/orderflow/client"
	"github.com/orderflow/orderflow/internal/auth"
)

// OverloadConfig is the overload phase: open-loop load at multiples of the
// capacity the step search measured, with clients that give up at the
// first refusal, clients that honour Retry-After, and the same rates from
// vegeta, an independent generator.
type OverloadConfig struct {
	// Capacity is the sustained orders/s the multiples are taken of.
	Capacity float64
	// Factors are the multiples offered by clients that take a refusal as
	// final (default 0.5, 1, 2, 5).
	Factors []float64
	// RetryFactors are the multiples offered by clients that re-send the
	// same Idempotency-Key after the advised Retry-After (default 2).
	RetryFactors []float64
	// VegetaFactors are the multiples offered by vegeta; none without
	// Vegeta.
	VegetaFactors []float64
	// Step is how long each multiple is offered (default 30 s).
	Step time.Duration
	// RetryBudget is how long a retrying client keeps trying one order
	// (default 5 min).
	RetryBudget time.Duration
	// DrainLimit is how long the phase waits after a step for its accepted
	// orders to end before it counts them lost (default 3 min).
	DrainLimit time.Duration
	// Vegeta is the path of the vegeta binary; "" skips the cross-check.
	Vegeta string
	// WorkDir holds vegeta's targets and results.
	WorkDir string
}

func (oc OverloadConfig) withDefaults() OverloadConfig {
	if oc.Factors == nil {
		oc.Factors = []float64{0.5, 1, 2, 5}
	}
	if oc.RetryFactors == nil {
		oc.RetryFactors = []float64{2}
	}
	if oc.Step <= 0 {
		oc.Step = 30 * time.Second
	}
	if oc.RetryBudget <= 0 {
		oc.RetryBudget = 5 * time.Minute
	}
	if oc.DrainLimit <= 0 {
		oc.DrainLimit = 3 * time.Minute
	}
	return oc
}

// Generators of an overload step.
const (
	// GiveUp clients take a refusal as final.
	GiveUp = "give-up"
	// HonourRetryAfter clients re-send the same Idempotency-Key after the
	// Retry-After the refusal advised (plus up to half of it again, at
	// random, so refused clients do not return in one wave).
	HonourRetryAfter = "retry-after"
	// Vegeta is vegeta's attack, each order sent once.
	Vegeta = "vegeta"
)

// OverloadStep is one multiple of the capacity offered for one step.
type OverloadStep struct {
	Generator string  `json:"generator"`
	Factor    float64 `json:"factor"`
	Offered   float64 `json:"offered_per_sec"`
	Sent      int     `json:"sent"`
	// Accepted orders got a 202 (for retrying clients, at some attempt).
	Accepted int `json:"accepted"`
	// Refused orders got a 503 or 429 as their last answer.
	Refused      int     `json:"refused"`
	RefusedShare float64 `json:"refused_share"`
	// Refusals counts every 503/429 answer, retries included;
	// WithoutRetryAfter those that carried no Retry-After.
	Refusals          int `json:"refusals"`
	WithoutRetryAfter int `json:"refusals_without_retry_after"`
	Attempts          int `json:"attempts"`
	// Goodput is the orders that reached their outcome (CONFIRMED, or
	// FAILED on a declined card or missing stock) inside the step, per
	// second: the step search's measure of capacity. ConfirmedPerSec is
	// the CONFIRMED ones alone.
	Goodput         float64 `json:"goodput_per_sec"`
	GoodputShare    float64 `json:"goodput_share_of_capacity"`
	ConfirmedPerSec float64 `json:"confirmed_per_sec"`
	// Accept is the accepting attempt's send to its 202; Refusal each
	// refusal's send to its answer; Admitted, for retrying clients, the
	// order's first send to its 202.
	Accept   percentiles `json:"accept_ms"`
	Refusal  percentiles `json:"refusal_ms"`
	Admitted percentiles `json:"first_send_to_accept_ms"`
	Complete percentiles `json:"complete_ms"`
	// DrainSeconds is from the end of the step to the last accepted
	// order's outcome; AdmittedAllSeconds, for retrying clients, to the
	// last 202.
	DrainSeconds       float64        `json:"drain_seconds"`
	AdmittedAllSeconds float64        `json:"admitted_all_seconds,omitempty"`
	Errors             map[string]int `json:"errors,omitempty"`
	Invariants
}

// Invariants are what the database says about a step's orders once they
// drained.
type Invariants struct {
	// Lost: accepted, and not ended within the drain limit (or missing).
	Lost int `json:"lost"`
	// DoubleCharged: a CONFIRMED order without exactly one charge (or capture) of its
	// total, or a FAILED/CANCELLED one whose charges were not refunded.
	DoubleCharged int `json:"double_charged"`
	// SplitKeys: one Idempotency-Key answered with two order ids.
	SplitKeys int `json:"split_keys"`
	// Unanswered: orders that exist though their client never got a 202
	// (a timeout after the gateway took them): not lost, reported.
	Unanswered     int      `json:"unanswered"`
	Counterexample []string `json:"counterexamples,omitempty"`
}

// Holds reports whether nothing was lost or doubled and every refusal said
// when to retry.
func (s OverloadStep) Holds() bool {
	return s.Lost == 0 && s.DoubleCharged == 0 && s.SplitKeys == 0 && s.WithoutRetryAfter == 0
}

// OverloadResult is the phase's report, bench/results/<timestamp>-overload.json.
type OverloadResult struct {
	Timestamp time.Time      `json:"timestamp"`
	GitCommit string         `json:"git_commit,omitempty"`
	Backend   string         `json:"temporal_backend,omitempty"`
	Capacity  float64        `json:"capacity_per_sec"`
	StepSecs  float64        `json:"step_seconds"`
	Steps     []OverloadStep `json:"steps"`
}

// Holds reports whether every step kept the invariants.
func (r *OverloadResult) Holds() bool {
	for _, s := range r.Steps {
		if !s.Holds() {
			return false
		}
	}
	return true
}

// offer is one order of an overload step and every answer it got.
type offer struct {
	s        *sample
	key      string
	ids      map[string]bool // order ids the key was answered with
	refusals []time.Duration
	noRA     int
	attempts int
	accept   time.Duration // the accepting attempt
	refused  bool
}

// RunOverload runs the overload phase on a stack whose capacity oc.Capacity
// was measured before (the step search of Run on a stack like it).
func RunOverload(ctx context.Context, c Config, oc OverloadConfig) (*OverloadResult, error) {
	oc = oc.withDefaults()
	if oc.Capacity <= 0 {
		return nil, errors.New("bench: overload needs the capacity (--capacity or --capacity-file)")
	}
	t, err := newOrderTarget(ctx, c)
	if err != nil {
		return nil, err
	}
	res := &OverloadResult{Timestamp: time.Now().UTC(), GitCommit: c.GitCommit, Capacity: oc.Capacity, StepSecs: oc.Step.Seconds()}
	fmt.Fprintf(c.Out, "overload: open loop at multiples of %.1f orders/s, %s each\n", oc.Capacity, oc.Step)
	type plan struct {
		gen     string
		factors []float64
	}
	plans := []plan{{GiveUp, oc.Factors}, {HonourRetryAfter, oc.RetryFactors}}
	if oc.Vegeta != "" {
		plans = append(plans, plan{Vegeta, oc.VegetaFactors})
	}
	for _, p := range plans {
		for _, f := range p.factors {
			st, err := overloadStep(ctx, c, oc, t, p.gen, f, fmt.Sprintf("%s-%s-%g-", t.run, p.gen, f))
			if err != nil {
				return nil, err
			}
			fmt.Fprintln(c.Out, "  "+st.line())
			res.Steps = append(res.Steps, st)
		}
	}
	return res, nil
}

func overloadStep(ctx context.Context, c Config, oc OverloadConfig, t *orderTarget, gen string, factor float64, prefix string) (OverloadStep, error) {
	rate := factor * oc.Capacity
	st := OverloadStep{Generator: gen, Factor: factor, Offered: rate, Errors: map[string]int{}}
	start := time.Now()
	var offers []*offer
	var err error
	if gen == Vegeta {
		offers, err = vegetaAttack(ctx, oc, t, rate, prefix)
		if err != nil {
			return st, err
		}
	} else {
		var mu sync.Mutex
		// A retrying client waits its Retry-After without a request in
		// flight; the client-side cap is only the whole step's arrivals.
		openLoop(ctx, rate, oc.Step, int(rate*oc.Step.Seconds())+1, func(s *sample) {
			o := &offer{s: s, key: prefix + uuid.NewString(), ids: map[string]bool{}}
			mu.Lock()
			offers = append(offers, o)
			mu.Unlock()
			t.offer(ctx, o, gen == HonourRetryAfter, oc.RetryBudget)
		})
	}
	end := start.Add(oc.Step)
	samples := make([]*sample, len(offers))
	for i, o := range offers {
		samples[i] = o.s
	}
	drain(ctx, t, samples, oc.DrainLimit)
	if err := t.complete(ctx, samples); err != nil {
		return st, err
	}
	inv, statuses, err := checkOrders(ctx, t.db, prefix, offers)
	if err != nil {
		return st, err
	}
	st.Invariants = inv
	st.summarise(offers, statuses, end, oc)
	return st, nil
}

// offer places one order: once, or for a retrying client until it is
// accepted, refused for another reason, or its budget is spent.
func (t *orderTarget) offer(ctx context.Context, o *offer, retry bool, budget time.Duration) {
	customer, req := t.newOrder(o.s)
	as := t.api.With(apiclient.WithToken(t.tokens.Bearer(customer, auth.RoleCustomer)))
	giveUp := o.s.sent.Add(budget)
	for {
		o.attempts++
		at := time.Now()
		acc, status, err := as.PlaceOrder(ctx, req, o.key)
		took := time.Since(at)
		switch {
		case status == http.StatusAccepted && err == nil && acc.OrderID != "":
			o.s.accepted, o.s.id, o.accept, o.refused = time.Now(), acc.OrderID, took, false
			o.ids[acc.OrderID] = true
			return
		case status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests:
			o.refusals, o.refused = append(o.refusals, took), true
			o.s.errKind = fmt.Sprintf("http_%d", status)
			var e *apiclient.Error
			wait := time.Duration(0)
			if errors.As(err, &e) {
				wait = e.RetryAfter
			}
			if wait <= 0 {
				o.noRA++
				wait = time.Second
			}
			wait += time.Duration(rand.Int64N(int64(wait)/2 + 1))
			if !retry || time.Now().Add(wait).After(giveUp) {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			o.s.errKind = ""
		case status == 0:
			o.s.errKind = "transport"
			return
		default:
			o.s.errKind = fmt.Sprintf("http_%d", status)
			return
		}
	}
}

func (st *OverloadStep) summarise(offers []*offer, statuses map[string]string, end time.Time, oc OverloadConfig) {
	var accept, refusal, admitted, complete []time.Duration
	var lastDone, lastAccept time.Time
	inStep, confirmed := 0, 0
	st.Sent = len(offers)
	for _, o := range offers {
		st.Attempts += o.attempts
		st.Refusals += len(o.refusals)
		st.WithoutRetryAfter += o.noRA
		refusal = append(refusal, o.refusals...)
		switch {
		case !o.s.accepted.IsZero():
			st.Accepted++
			accept = append(accept, o.accept)
			admitted = append(admitted, o.s.accepted.Sub(o.s.sent))
			lastAccept = later(lastAccept, o.s.accepted)
		case o.refused:
			st.Refused++
		default:
			st.Errors[o.s.errKind]++
		}
		if o.s.done.IsZero() {
			continue
		}
		complete = append(complete, o.s.done.Sub(o.s.sent))
		lastDone = later(lastDone, o.s.done)
		if !o.s.done.After(end) {
			inStep++
			if statuses[o.s.id] == orderflow.StatusConfirmed {
				confirmed++
			}
		}
	}
	secs := oc.Step.Seconds()
	st.RefusedShare = float64(st.Refused) / float64(max(1, st.Sent))
	st.Goodput, st.ConfirmedPerSec = float64(inStep)/secs, float64(confirmed)/secs
	st.GoodputShare = st.Goodput / oc.Capacity
	st.Accept, st.Refusal, st.Complete = pct(accept), pct(refusal), pct(complete)
	if st.Generator == HonourRetryAfter {
		st.Admitted = pct(admitted)
		st.AdmittedAllSeconds = max(0, lastAccept.Sub(end).Seconds())
	}
	st.DrainSeconds = max(0, lastDone.Sub(end).Seconds())
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// checkOrders reads the step's orders from PostgreSQL (those whose
// Idempotency-Key starts with prefix) and the provider's ledger, as the
// chaos run's invariants do: every accepted order ended, with exactly one
// charge of its total when CONFIRMED and its charges refunded otherwise,
// and one order per key.
func checkOrders(ctx context.Context, db *pgxpool.Pool, prefix string, offers []*offer) (Invariants, map[string]string, error) {
	var inv Invariants
	bad := func(format string, a ...any) {
		if len(inv.Counterexample) < 10 {
			inv.Counterexample = append(inv.Counterexample, fmt.Sprintf(format, a...))
		}
	}
	type stored struct {
		status   string
		total    int64
		charges  int
		charged  int64
		refunded int64
	}
	orders := map[string]*stored{}
	rows, err := db.Query(ctx, `SELECT o.order_id::text, o.status, o.total_cents
		FROM idempotency_keys k JOIN orders o ON o.order_id = k.order_id WHERE k.idempotency_key LIKE $1`, prefix+"%")
	if err != nil {
		return inv, nil, fmt.Errorf("read the step's orders: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		o := &stored{}
		if err := rows.Scan(&id, &o.status, &o.total); err != nil {
			rows.Close()
			return inv, nil, fmt.Errorf("read the step's orders: %w", err)
		}
		orders[id], ids = o, append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return inv, nil, fmt.Errorf("read the step's orders: %w", err)
	}
	// Money taken is a charge, or a capture of an authorization (authorize,
	// then capture); authorizations and voids move none.
	rows, err = db.Query(ctx, `SELECT substring(idempotency_key from '^(?:charge|capture|refund(?:-auth)?)-([0-9a-f-]{36})'), kind, amount_cents
		FROM paysim.ledger WHERE substring(idempotency_key from '^(?:charge|capture|refund(?:-auth)?)-([0-9a-f-]{36})') = ANY($1)`, ids)
	if err != nil {
		return inv, nil, fmt.Errorf("read the ledger: %w", err)
	}
	for rows.Next() {
		var id, kind string
		var amount int64
		if err := rows.Scan(&id, &kind, &amount); err != nil {
			rows.Close()
			return inv, nil, fmt.Errorf("read the ledger: %w", err)
		}
		o := orders[id]
		switch kind {
		case "charge", "capture":
			o.charges, o.charged = o.charges+1, o.charged+amount
		case "refund":
			o.refunded += amount
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return inv, nil, fmt.Errorf("read the ledger: %w", err)
	}
	statuses := map[string]string{}
	for id, o := range orders {
		statuses[id] = o.status
	}
	answered := map[string]bool{}
	for _, o := range offers {
		if len(o.ids) > 1 {
			inv.SplitKeys++
			bad("key %s answered with %d order ids", o.key, len(o.ids))
		}
		if o.s.id == "" {
			continue
		}
		answered[o.s.id] = true
		so, ok := orders[o.s.id]
		switch {
		case !ok:
			inv.Lost++
			bad("%s: accepted, not stored", o.s.id)
		case !terminal(so.status):
			inv.Lost++
			bad("%s: accepted, still %s after the drain", o.s.id, so.status)
		}
	}
	for id, o := range orders {
		if !answered[id] {
			inv.Unanswered++
		}
		switch {
		case o.status == orderflow.StatusConfirmed && (o.charges != 1 || o.charged != o.total):
			inv.DoubleCharged++
			bad("%s CONFIRMED total %d: %d charges (%d)", id, o.total, o.charges, o.charged)
		case o.status != orderflow.StatusConfirmed && o.charged != o.refunded:
			inv.DoubleCharged++
			bad("%s %s: charged %d, refunded %d", id, o.status, o.charged, o.refunded)
		}
	}
	return inv, statuses, nil
}

func terminal(status string) bool {
	return status == orderflow.StatusConfirmed || status == orderflow.StatusFailed || status == orderflow.StatusCancelled
}

func (st OverloadStep) line() string {
	ra := "all with Retry-After"
	if st.WithoutRetryAfter > 0 {
		ra = fmt.Sprintf("%d WITHOUT Retry-After", st.WithoutRetryAfter)
	}
	s := fmt.Sprintf("%-11s %3gx %6.1f/s  sent %5d  accepted %5d  refused %4.1f%%  goodput %5.1f/s (%3.0f%%)  accept p50 %6.1f p99 %7.1f ms  refusal p99 %6.1f ms (%s)  drain %4.1f s",
		st.Generator, st.Factor, st.Offered, st.Sent, st.Accepted, 100*st.RefusedShare, st.Goodput, 100*st.GoodputShare,
		st.Accept.P50, st.Accept.P99, st.Refusal.P99, ra, st.DrainSeconds)
	if st.Generator == HonourRetryAfter {
		s += fmt.Sprintf("  all admitted %.1f s after the step (first send to 202 p99 %.0f ms, %d attempts)", st.AdmittedAllSeconds, st.Admitted.P99, st.Attempts)
	}
	if len(st.Errors) > 0 {
		s += fmt.Sprintf("  errors %v", st.Errors)
	}
	s += fmt.Sprintf("  lost %d, charged twice %d, split keys %d, unanswered %d", st.Lost, st.DoubleCharged, st.SplitKeys, st.Unanswered)
	return s
}

// OverloadTable renders the phase's summary as a Markdown table.
func OverloadTable(r *OverloadResult) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "\ncapacity %.1f orders/s, %g s per step\n\n", r.Capacity, r.StepSecs)
	fmt.Fprintln(&b, "| generator | × capacity | offered/s | sent | refused | goodput/s (share) | accept p50 / p99 ms | refusal p99 ms | Retry-After on every refusal | drain s | lost / charged twice |")
	fmt.Fprintln(&b, "|---|---|---|---|---|---|---|---|---|---|---|")
	for _, s := range r.Steps {
		ra := "yes"
		if s.WithoutRetryAfter > 0 {
			ra = fmt.Sprintf("**no** (%d)", s.WithoutRetryAfter)
		}
		if s.Refusals == 0 {
			ra = "(none refused)"
		}
		gen := s.Generator
		if s.Generator == HonourRetryAfter {
			gen = fmt.Sprintf("retry-after (all admitted %.0f s after the step, %d attempts)", s.AdmittedAllSeconds, s.Attempts)
		}
		fmt.Fprintf(&b, "| %s | %g | %.1f | %d | %.1f %% | %.1f (%.0f %%) | %.1f / %.1f | %.1f | %s | %.1f | %d / %d |\n",
			gen, s.Factor, s.Offered, s.Sent, 100*s.RefusedShare, s.Goodput, 100*s.GoodputShare, s.Accept.P50, s.Accept.P99,
			s.Refusal.P99, ra, s.DrainSeconds, s.Lost, s.DoubleCharged)
	}
	return b.String()
}

// WriteOverload saves the phase's JSON under dir and returns its path.
func WriteOverload(r *OverloadResult, dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("results dir: %w", err)
	}
	p := filepath.Join(dir, r.Timestamp.Format("20060102T150405Z")+"-overload.json")
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode overload result: %w", err)
	}
	return p, os.WriteFile(p, raw, 0o644)
}

// vegetaAttack offers rate orders/s for oc.Step with vegeta, each order a
// target of its own (its own Idempotency-Key and customer token), and reads
// its results back as offers.
func vegetaAttack(ctx context.Context, oc OverloadConfig, t *orderTarget, rate float64, prefix string) ([]*offer, error) {
	if err := os.MkdirAll(oc.WorkDir, 0o755); err != nil {
		return nil, fmt.Errorf("vegeta: %w", err)
	}
	n := int(rate*oc.Step.Seconds()) + 1
	targets := filepath.Join(oc.WorkDir, "targets.jsonl")
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for range n {
		key := prefix + uuid.NewString()
		customer, req := t.newOrder(&sample{})
		body, err := json.Marshal(req)
		if err != nil {
			return nil, fmt.Errorf("vegeta: %w", err)
		}
		if err := enc.Encode(map[string]any{"method": http.MethodPost, "url": t.api.BaseURL() + "/v1/orders", "body": body,
			"header": http.Header{"Authorization": {t.tokens.Bearer(customer, auth.RoleCustomer)},
				apiclient.HeaderIdempotencyKey: {key}, "Content-Type": {"application/json"}}}); err != nil {
			return nil, fmt.Errorf("vegeta: %w", err)
		}
	}
	if err := os.WriteFile(targets, buf.Bytes(), 0o644); err != nil {
		return nil, fmt.Errorf("vegeta: %w", err)
	}
	bin, out := filepath.Join(oc.WorkDir, "results.bin"), filepath.Join(oc.WorkDir, "results.json")
	attack := exec.CommandContext(ctx, oc.Vegeta, "attack", "-format=json", "-targets="+targets, fmt.Sprintf("-rate=%d/10s", int(10*rate+0.5)),
		"-duration="+oc.Step.String(), "-timeout=10s", "-http2=false", "-output="+bin)
	attack.Stderr = os.Stderr
	if err := attack.Run(); err != nil {
		return nil, fmt.Errorf("vegeta attack: %w", err)
	}
	encode := exec.CommandContext(ctx, oc.Vegeta, "encode", "-to=json", "-output="+out, bin)
	encode.Stderr = os.Stderr
	if err := encode.Run(); err != nil {
		return nil, fmt.Errorf("vegeta encode: %w", err)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("vegeta: %w", err)
	}
	var offers []*offer
	dec := json.NewDecoder(bytes.NewReader(raw))
	for dec.More() {
		var r struct {
			Code      int           `json:"code"`
			Timestamp time.Time     `json:"timestamp"`
			Latency   time.Duration `json:"latency"`
			Error     string        `json:"error"`
			Body      []byte        `json:"body"`
			Headers   http.Header   `json:"headers"`
		}
		if err := dec.Decode(&r); err != nil {
			return nil, fmt.Errorf("vegeta results: %w", err)
		}
		offers = append(offers, vegetaOffer(r.Code, r.Timestamp, r.Latency, r.Body, r.Headers))
	}
	return offers, nil
}

// vegetaOffer is one vegeta result as an offer. Vegeta's results do not
// carry the request's Idempotency-Key, so the key checks rest on the
// database (one order per key) and the order id of each 202.
func vegetaOffer(code int, at time.Time, took time.Duration, body []byte, h http.Header) *offer {
	o := &offer{s: &sample{sent: at}, ids: map[string]bool{}, attempts: 1}
	switch {
	case code == http.StatusAccepted:
		var acc struct {
			OrderID string `json:"order_id"`
		}
		if json.Unmarshal(body, &acc) != nil || acc.OrderID == "" {
			o.s.errKind = "bad_response"
			return o
		}
		o.s.accepted, o.s.id, o.accept = at.Add(took), acc.OrderID, took
		o.ids[acc.OrderID] = true
	case code == http.StatusServiceUnavailable || code == http.StatusTooManyRequests:
		o.refused, o.refusals, o.s.errKind = true, []time.Duration{took}, fmt.Sprintf("http_%d", code)
		if h.Get("Retry-After") == "" {
			o.noRA++
		}
	case code == 0:
		o.s.errKind = "transport"
	default:
		o.s.errKind = fmt.Sprintf("http_%d", code)
	}
	return o
}
