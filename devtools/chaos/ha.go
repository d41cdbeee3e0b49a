package chaos

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/orderflow/orderflow/devtools/lab"
)

// Host faults of the HA run: a host killed (SIGKILL of everything on it,
// started again to heal) or cut off (its link down, so it runs on,
// unreachable, until its link comes up again).
const (
	ModeKill = "kill"
	ModeCut  = "cut"
)

// Hosts are the HA topology's hosts as the run breaks them, by node name.
type Hosts interface {
	// Kill ends every process of the host with SIGKILL; Start starts them
	// again and returns once the node is ready.
	Kill(ctx context.Context, node string) error
	Start(ctx context.Context, node string) error
	// Cut takes the host's link down; Heal brings it up again and returns
	// once the node answers.
	Cut(ctx context.Context, node string) error
	Heal(ctx context.Context, node string) error
}

// A Tier is one kind of host the run loses, one at a time: the PostgreSQL
// primary, the Redis master, one Temporal server, one gateway, one worker.
type Tier struct {
	Kind  string   // the fault's kind in the report: pg_primary, redis_master...
	Nodes []string // the tier's hosts
	// Target names the host to lose now (the primary, as Patroni says; the
	// master, as a Sentinel says); nil takes Nodes in turn.
	Target func(ctx context.Context) (string, error)
	// Objective is the recovery time the design promises for this loss,
	// reported beside the measure; never asserted.
	Objective time.Duration
	// MinOutage is how long the host stays lost at least, even when orders
	// never failed (a worker's loss is felt by sagas, not by placements).
	MinOutage time.Duration
	// Whole passes once the tier is whole again after the heal: a primary
	// with its synchronous standby, a master with its replica in sync, the
	// host back in the balancer's rotation.
	Whole lab.Check
}

// SelectTiers keeps the tiers whose kind is in kinds (comma-separated, in
// the tiers' order; empty keeps every tier), so a run can lose one kind of
// host only (a fault's timeline measured on its own); an unknown kind is an
// error naming the known ones.
func SelectTiers(tiers []Tier, kinds string) ([]Tier, error) {
	want := map[string]bool{}
	for _, k := range strings.Split(kinds, ",") {
		if k = strings.TrimSpace(k); k != "" {
			want[k] = true
		}
	}
	if len(want) == 0 {
		return tiers, nil
	}
	var out []Tier
	known := make([]string, 0, len(tiers))
	for _, t := range tiers {
		known = append(known, t.Kind)
		if want[t.Kind] {
			out = append(out, t)
			delete(want, t.Kind)
		}
	}
	for k := range want {
		return nil, fmt.Errorf("unknown host kind %q (known: %s)", k, strings.Join(known, ", "))
	}
	return out, nil
}

// HAConfig is the HA part of a run; Config says the rest (rate, duration,
// quiescence, results).
type HAConfig struct {
	Hosts Hosts
	Tiers []Tier
	// Modes are how hosts are lost, in turn per tier (default kill, cut).
	Modes []string
	// Rounds: every tier is lost at least this many times; the run outlasts
	// Config.Duration when it must.
	Rounds int
	// Quiet is plain load before each fault (default 5 s).
	Quiet time.Duration
	// Settle: an outage is over once orders have succeeded, and none
	// failed, for this long (default 5 s); the host stays lost until then,
	// or until MaxOutage (default 90 s).
	Settle    time.Duration
	MaxOutage time.Duration
	// WholeTimeout bounds the wait for a healed tier to be whole (default 3 min).
	WholeTimeout time.Duration
}

func (c *HAConfig) defaults() {
	if len(c.Modes) == 0 {
		c.Modes = []string{ModeKill, ModeCut}
	}
	if c.Rounds == 0 {
		c.Rounds = 3
	}
	if c.Quiet == 0 {
		c.Quiet = 5 * time.Second
	}
	if c.Settle == 0 {
		c.Settle = 5 * time.Second
	}
	if c.MaxOutage == 0 {
		c.MaxOutage = 90 * time.Second
	}
	if c.WholeTimeout == 0 {
		c.WholeTimeout = 3 * time.Minute
	}
}

// HARunner is a chaos run on the HA topology: the load, the final checks
// and the five invariants of Runner, with host faults instead of process
// and provider faults, and every placement recorded to measure recovery.
type HARunner struct {
	*Runner
	ha     HAConfig
	rec    *placementLog
	faults []*hostFault
}

// NewHA returns an HA run; cfg.Faults, Hold, Stack and Providers are not
// used (the faults are ha's).
func NewHA(cfg Config, ha HAConfig, db *pgxpool.Pool, tc client.Client, out io.Writer) *HARunner {
	ha.defaults()
	r := New(cfg, db, tc, out)
	rec := &placementLog{next: http.DefaultTransport}
	r.http = &http.Client{Timeout: httpClient.Timeout, Transport: rec}
	return &HARunner{Runner: r, ha: ha, rec: rec}
}

// hostFault is one host lost and what the run saw around it.
type hostFault struct {
	w         *window // the client errors counted while it lasted
	Kind      string
	Mode      string
	Node      string
	Objective time.Duration
	Injected  time.Time // the fault
	Healed    time.Time // the host started again, or its link up
	Whole     time.Time // the tier whole again; the window ends 10 s later
	// Recovered: orders succeeded again, with none failing for Settle,
	// while the host was still lost.
	Recovered bool
	// Calm: the service was steady again after the heal (the window
	// closed then), before MaxOutage.
	Calm bool
	// Promoted: when the tier's Target first named another host (the
	// standby promoted, the replica made master); zero when it has none.
	Promoted time.Time
	Err      string
}

// Run places orders while hosts are lost one at a time, each healed and its
// tier whole again before the next; then it waits for the orders to settle
// and checks the invariants and every fault's recovery.
func (h *HARunner) Run(ctx context.Context) (HAReport, error) {
	rep := HAReport{Report: Report{Started: time.Now().UTC(), Seed: h.cfg.Seed}, Rounds: h.ha.Rounds}
	skus, err := h.setupCatalog(ctx)
	if err != nil {
		return rep, err
	}
	var kinds []string
	for _, t := range h.ha.Tiers {
		kinds = append(kinds, t.Kind)
	}
	fmt.Fprintf(h.out, "chaos-ha: at least %s of load at %.0f orders/s; hosts lost one at a time (%v, %d rounds at least, modes %v), seed %d\n",
		h.cfg.Duration, h.cfg.Rate, kinds, h.ha.Rounds, h.ha.Modes, h.cfg.Seed)

	start := time.Now()
	lctx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	injected := make(chan struct{})
	go func() {
		defer close(injected)
		h.injectHostFaults(ctx, start)
	}()
	// Load runs for the duration and until the last fault's window closed.
	go func() {
		select {
		case <-injected:
		case <-ctx.Done():
		}
		select {
		case <-time.After(time.Until(start.Add(h.cfg.Duration))):
		case <-ctx.Done():
		}
		stopLoad()
	}()
	h.load(lctx, skus)
	<-injected
	rep.Duration = time.Since(start).Round(time.Second).String()
	fmt.Fprintf(h.out, "chaos-ha: load stopped after %d orders (%s); waiting up to %s for every order to settle\n", h.sent, rep.Duration, h.cfg.Quiesce)

	// An order's row may say it ended while its saga still finishes its
	// compensations (a release retried after the worker that ran it was
	// lost): the checks wait for the sagas too, within the same bound.
	h.awaitSagas(ctx, time.Now().Add(h.cfg.Quiesce))
	if err := h.settle(ctx, &rep.Report, skus); err != nil {
		return rep, err
	}
	rep.HostFaults = measure(h.faults, h.rec.snapshot())
	rep.Kinds = summarize(h.ha.Tiers, rep.HostFaults)
	rep.Invariants = append(rep.Invariants, h.haInvariants(rep)...)
	rep.Passed = passed(rep.Invariants)
	return rep, nil
}

// awaitSagas waits, until deadline, for no Order workflow to be running but
// those waiting on their carrier (the invariant checks it again after).
func (h *HARunner) awaitSagas(ctx context.Context, deadline time.Time) {
	for time.Now().Before(deadline) && ctx.Err() == nil {
		res, err := h.temporal.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: runningSagas})
		if err == nil && res.GetCount() == 0 {
			return
		}
		time.Sleep(time.Second)
	}
}

// injectHostFaults loses one host after another, tier after tier, until
// every tier was lost Rounds times and the duration has passed. A fault
// under way always runs to its heal, even when ctx ends.
func (h *HARunner) injectHostFaults(ctx context.Context, start time.Time) {
	turns := map[string]int{}
	for round := 0; ; round++ {
		for i, t := range h.ha.Tiers {
			if round >= h.ha.Rounds && time.Since(start)+h.ha.Quiet >= h.cfg.Duration {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(h.ha.Quiet):
			}
			// Each fault starts from a steady service, so that what it
			// measures is its own (a backlog left by the last one drains
			// first).
			if !h.awaitCalm(ctx, time.Time{}, h.ha.MaxOutage) {
				fmt.Fprintf(h.out, "chaos-ha: placements still failing %s after the last fault; losing the next host anyway\n", h.ha.MaxOutage)
			}
			n := turns[t.Kind]
			turns[t.Kind]++
			// Modes alternate along the sequence, so that a single round
			// kills some hosts and cuts others, and each tier gets both.
			h.loseHost(ctx, t, n, h.ha.Modes[(n+i)%len(h.ha.Modes)])
		}
	}
}

// loseHost loses one host of tier t (its n-th loss) as mode says, keeps
// it lost until orders flow again or MaxOutage, heals it and waits for the
// tier to be whole again.
//
// When run ends (an interrupt) it stops waiting, but the host is healed.
func (h *HARunner) loseHost(run context.Context, t Tier, n int, mode string) {
	ctx := context.Background()
	f := &hostFault{Kind: t.Kind, Mode: mode, Objective: t.Objective}
	node, err := h.target(ctx, t, n)
	f.Node = node
	f.w = &window{Kind: t.Kind, Detail: mode + " " + node, Start: time.Now(), Errors: map[string]int{}}
	f.Injected = f.w.Start
	h.mu.Lock()
	h.windows = append(h.windows, f.w)
	h.faults = append(h.faults, f)
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		f.w.End = time.Now()
		if f.Err != "" {
			f.w.Err = f.Err
		}
		h.mu.Unlock()
		if f.Err != "" {
			fmt.Fprintf(h.out, "chaos-ha: %-15s %s %s: %s\n", t.Kind, mode, node, f.Err)
			return
		}
		fmt.Fprintf(h.out, "chaos-ha: %-15s %-4s %-12s lost %5.1fs, whole %5.1fs after the heal, window %5.1fs; service back while lost: %t, steady after: %t\n",
			t.Kind, mode, node, f.Healed.Sub(f.Injected).Seconds(), f.Whole.Sub(f.Healed).Seconds(), f.w.End.Sub(f.Injected).Seconds(), f.Recovered, f.Calm)
	}()
	if err != nil {
		f.Err = err.Error()
		return
	}
	if err := h.breakHost(ctx, mode, node); err != nil {
		// Whatever half happened is undone.
		f.Err = err.Error()
		if herr := h.healHost(ctx, mode, node); herr != nil {
			f.Err += "; heal: " + herr.Error()
		}
		return
	}
	f.Recovered, f.Promoted = h.awaitService(run, t, node, f.Injected)
	f.Healed = time.Now()
	if err := h.healHost(ctx, mode, node); err != nil {
		f.Err = "heal: " + err.Error()
		return
	}
	if t.Whole != nil {
		if err := lab.Wait(ctx, t.Whole, h.ha.WholeTimeout, nil); err != nil {
			f.Err = "not whole after the heal: " + err.Error()
			return
		}
	}
	f.Whole = time.Now()
	// The window closes once the service is steady again with the host
	// back: a backlog the loss left (placements refused while it drains),
	// or a healed gateway refusing while its breaker is still open, is the
	// loss's too.
	f.Calm = h.awaitCalm(run, f.Whole, h.ha.MaxOutage)
}

// target is the host of tier t to lose the n-th time.
func (h *HARunner) target(ctx context.Context, t Tier, n int) (string, error) {
	if t.Target != nil {
		// The engine may be between two leaders still: ask again a while.
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(500 * time.Millisecond) {
			node, err := t.Target(ctx)
			if err == nil || time.Now().After(deadline) {
				return node, err
			}
		}
	}
	if len(t.Nodes) == 0 {
		return "", fmt.Errorf("%s: no hosts", t.Kind)
	}
	return t.Nodes[n%len(t.Nodes)], nil
}

func (h *HARunner) breakHost(ctx context.Context, mode, node string) error {
	switch mode {
	case ModeKill:
		return h.ha.Hosts.Kill(ctx, node)
	case ModeCut:
		return h.ha.Hosts.Cut(ctx, node)
	}
	return fmt.Errorf("unknown mode %q", mode)
}

func (h *HARunner) healHost(ctx context.Context, mode, node string) error {
	if mode == ModeCut {
		return h.ha.Hosts.Heal(ctx, node)
	}
	return h.ha.Hosts.Start(ctx, node)
}

// awaitService waits, at least t.MinOutage and at most MaxOutage from
// since, until placements have succeeded and none failed for Settle and,
// for a tier with a Target, until it names another host than lost (the
// engine failed over). It says whether service came back, and when the
// failover was seen.
func (h *HARunner) awaitService(ctx context.Context, t Tier, lost string, since time.Time) (bool, time.Time) {
	var promoted time.Time
	for {
		now := time.Now()
		if t.Target != nil && promoted.IsZero() {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			if node, err := t.Target(cctx); err == nil && node != lost {
				promoted = time.Now()
			}
			cancel()
		}
		failedOver := t.Target == nil || !promoted.IsZero()
		steady := h.rec.steady(since, now, h.ha.Settle)
		if steady && failedOver && now.Sub(since) >= t.MinOutage {
			return true, promoted
		}
		if now.Sub(since) >= h.ha.MaxOutage || ctx.Err() != nil {
			return steady && failedOver, promoted
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// awaitCalm waits, at most bound, until placements have succeeded and none
// failed for Settle: since a moment (the tier whole again, so that the
// healed host takes its share of the traffic before the service counts as
// steady), or zero for the last Settle. It says whether they did.
func (h *HARunner) awaitCalm(ctx context.Context, since time.Time, bound time.Duration) bool {
	for deadline := time.Now().Add(bound); ; {
		now := time.Now()
		from := since
		if from.IsZero() {
			from = now.Add(-h.ha.Settle)
		}
		if h.rec.steady(from, now, h.ha.Settle) {
			return true
		}
		if now.After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// attempt is one placement sent (POST /v1/orders) and its answer.
type attempt struct {
	key        string
	start, end time.Time
	status     int // 0: no answer
}

// failed: no answer, or a 5xx (a 429 is the limiter's, never a fault's).
func (a attempt) failed() bool { return a.status == 0 || a.status >= 500 }

// answered: the order was decided, accepted or refused for good.
func (a attempt) answered() bool {
	return a.status >= 200 && a.status < 500 && a.status != http.StatusTooManyRequests && a.status != http.StatusRequestTimeout
}

// placementLog is the HA load's transport: it records every placement's start,
// end and status, to measure recovery.
type placementLog struct {
	next     http.RoundTripper
	mu       sync.Mutex
	attempts []attempt
}

// RoundTrip implements http.RoundTripper.
func (rec *placementLog) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodPost || req.URL.Path != "/v1/orders" {
		return rec.next.RoundTrip(req)
	}
	a := attempt{key: req.Header.Get("Idempotency-Key"), start: time.Now()}
	res, err := rec.next.RoundTrip(req)
	a.end = time.Now()
	if err == nil {
		a.status = res.StatusCode
	}
	rec.mu.Lock()
	rec.attempts = append(rec.attempts, a)
	rec.mu.Unlock()
	return res, err
}

// steady says whether, between since and now, placements succeeded and none
// failed for the last settle: the last failure (if any) ended at least
// settle ago and a success ended after it.
func (rec *placementLog) steady(since, now time.Time, settle time.Duration) bool {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	lastFail, lastOK := since, time.Time{}
	for _, a := range rec.attempts {
		if a.start.Before(since) {
			continue
		}
		switch {
		case a.failed() && a.end.After(lastFail):
			lastFail = a.end
		case a.answered() && a.end.After(lastOK):
			lastOK = a.end
		}
	}
	return lastOK.After(lastFail) && now.Sub(lastFail) >= settle
}

func (rec *placementLog) snapshot() []attempt {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]attempt(nil), rec.attempts...)
}
