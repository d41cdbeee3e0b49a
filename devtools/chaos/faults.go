package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orderflow/orderflow/devtools/lab"
)

// window is one injected fault and the client errors seen while it lasted.
type window struct {
	Kind   string         `json:"kind"`
	Detail string         `json:"detail,omitempty"`
	Start  time.Time      `json:"start"`
	End    time.Time      `json:"end"`
	Errors map[string]int `json:"client_errors"`
	Err    string         `json:"error,omitempty"`
}

// injectFaults runs the configured fault kinds in turn, one at a time, until
// ctx ends; each is undone before the next starts.
func (r *Runner) injectFaults(ctx context.Context) {
	if len(r.cfg.Faults) == 0 {
		return
	}
	every := r.faultEvery()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		// Faults land at random moments: ±30% around the even spacing.
		case <-time.After(every*7/10 + time.Duration(r.intn(int(every*6/10/time.Millisecond)+1))*time.Millisecond):
		}
		kind := r.cfg.Faults[i%len(r.cfg.Faults)]
		w := &window{Kind: kind, Start: time.Now(), Errors: map[string]int{}}
		r.mu.Lock()
		r.windows = append(r.windows, w)
		r.mu.Unlock()
		err := r.fault(kind, w)
		r.mu.Lock()
		w.End = time.Now()
		if err != nil {
			w.Err = err.Error()
		}
		r.mu.Unlock()
		if err != nil {
			fmt.Fprintf(r.out, "chaos: %s failed: %v\n", kind, err)
		} else {
			fmt.Fprintf(r.out, "chaos: %-17s %s %s\n", kind, w.End.Sub(w.Start).Round(100*time.Millisecond), w.Detail)
		}
	}
}

// fault injects one fault and undoes it. Faults run to the end even when the
// load has stopped, so the stack is always whole afterwards. Process faults
// are the lab's, on the stack's own state: a node killed with SIGKILL and
// started again as the stack started it, or restarted cleanly.
func (r *Runner) fault(kind string, w *window) error {
	hold := r.cfg.Hold
	switch kind {
	case "worker_kill":
		// SIGKILL mid-activity, restarted after a delay.
		return r.killFor("worker", hold/2)
	case "temporal_kill":
		return r.killFor("temporal", time.Second)
	case "redis_restart":
		return r.killFor("redis", r.holdOf(kind))
	case "postgres_restart":
		return r.inject(lab.RestartNode{Stack: r.cfg.Stack, Name: "postgres"}, 0)
	case "provider_outage":
		w.Detail = "every provider"
		// Held until an order parked (or 30 s): on a loaded stack few
		// orders may reach their charge in the hold.
		return r.providerFaultsUntil(`{"outage":true}`, r.holdOf(kind), true, func(ctx context.Context, since time.Time) pgx.Row {
			return r.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM order_status_history WHERE status = 'PAYMENT_PENDING' AND at >= $1)`, since)
		}, w)
	case "provider_latency":
		lat := 200*time.Millisecond + time.Duration(r.intn(1800))*time.Millisecond
		w.Detail = "primary +" + lat.String()
		return r.providerFaults(fmt.Sprintf(`{"latency":%q}`, lat.String()), hold, false)
	case "provider_errors":
		w.Detail = "primary answers 30% 500"
		return r.providerFaults(`{"error_rate":0.3}`, hold, false)
	case "provider_primary_outage":
		// The secondary stays up: the router fails over to it once the
		// primary's breaker opens, and back when the primary answers.
		w.Detail = "primary only"
		// Held until a charge failed over (or 30 s).
		return r.providerFaultsUntil(`{"outage":true}`, r.holdOf(kind), false, func(ctx context.Context, since time.Time) pgx.Row {
			return r.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM payments WHERE provider <> $2 AND created_at >= $1)`, since, r.primary())
		}, w)
	case "smtp_restart":
		// Mails wait in the outbox and are delivered once, after.
		return r.killFor("mailpit", r.holdOf(kind))
	case "nats_restart":
		// Events wait in the outbox; the relay and the consumers
		// reconnect, and JetStream drops what the relay publishes twice.
		return r.killFor("nats", r.holdOf(kind))
	case "temporal_outage":
		// The breaker case: the gateway's Temporal breaker opens and
		// placements are accepted with a deferred start, or refused at
		// once with Retry-After (BreakerCase).
		w.Detail = "frontend down " + r.holdOf(kind).String()
		return r.killFor("temporal", r.holdOf(kind))
	}
	return fmt.Errorf("unknown fault %q", kind)
}

// holdOf is how long a fault kind keeps its dependency down.
func (r *Runner) holdOf(kind string) time.Duration {
	switch kind {
	case "temporal_kill":
		return time.Second
	case "worker_kill":
		return r.cfg.Hold / 2
	case "redis_restart", "smtp_restart", "nats_restart":
		// A breaker opens at half of a rolling 10 s window's calls
		// failed: down for less than half the window, it never does.
		return max(r.cfg.Hold, 8*time.Second)
	case "postgres_restart":
		return 0
	case "provider_outage":
		// Long enough for orders reaching their charge to park.
		return max(r.cfg.Hold, 8*time.Second)
	case "provider_primary_outage":
		// Long enough for the primary's breaker to open and charges to
		// go to the secondary for a while.
		return max(r.cfg.Hold, 8*time.Second)
	case "temporal_outage":
		// Long enough for the breaker to open and refuse.
		return max(r.cfg.Hold, 10*time.Second)
	}
	return r.cfg.Hold
}

// killFor kills a node of the stack and starts it again after down.
func (r *Runner) killFor(node string, down time.Duration) error {
	return r.inject(lab.KillNode{Stack: r.cfg.Stack, Name: node}, down)
}

// inject injects f, waits for d and heals it.
func (r *Runner) inject(f lab.Fault, d time.Duration) error {
	if r.cfg.Stack == nil {
		return fmt.Errorf("%s: no lab stack to break", f)
	}
	ctx := context.Background()
	if err := f.Inject(ctx); err != nil {
		return fmt.Errorf("%s: %w", f, err)
	}
	time.Sleep(d)
	if err := f.Heal(ctx); err != nil {
		return fmt.Errorf("heal %s: %w", f, err)
	}
	return nil
}

// providerFaultsUntil is providerFaults held at least hold and then until
// the query (given the fault's start) says its recovery path ran, for at
// most 30 s in all: the path a fault stands for must be reached, however
// few orders a loaded stack lets through.
func (r *Runner) providerFaultsUntil(faults string, hold time.Duration, all bool, reached func(context.Context, time.Time) pgx.Row, w *window) error {
	if r.db == nil {
		return r.providerFaults(faults, hold, all)
	}
	return r.providerFaultsWhile(faults, all, func() {
		time.Sleep(hold)
		for deadline := w.Start.Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
			var ok bool
			if err := reached(context.Background(), w.Start).Scan(&ok); err == nil && ok {
				return
			}
		}
	})
}

// primary is the primary provider's name.
func (r *Runner) primary() string {
	if r.cfg.PrimaryProvider == "" {
		return "paysim-a"
	}
	return r.cfg.PrimaryProvider
}

// providerFaults sets faults on the primary provider, or on every provider,
// for hold, then clears them.
func (r *Runner) providerFaults(faults string, hold time.Duration, all bool) error {
	return r.providerFaultsWhile(faults, all, func() { time.Sleep(hold) })
}

// providerFaultsWhile sets faults while hold runs, then clears them.
func (r *Runner) providerFaultsWhile(faults string, all bool, hold func()) error {
	targets := r.cfg.Providers
	if !all && len(targets) > 1 {
		targets = targets[:1]
	}
	set := func(body string) error {
		for _, base := range targets {
			if err := adminJSON(context.Background(), http.MethodPut, base+"/admin/faults", json.RawMessage(body), nil); err != nil {
				return fmt.Errorf("set faults: %w", err)
			}
		}
		return nil
	}
	if err := set(faults); err != nil {
		return err
	}
	hold()
	return set(`{}`)
}
