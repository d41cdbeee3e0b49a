package chaos

import (
	"context"
	"time"
)

// Catalog is the products a run created, with the stock each started
// with: what its load orders and its stock invariant checks.
type Catalog struct{ skus []sku }

// The steps of Run, for a driver that runs its own faults around the
// load (the region drill, devtools/drill): Prepare creates the catalog,
// Load places orders until ctx ends, Settle waits for the accepted orders
// to end and checks the invariants over the final state.

// Prepare creates the run's catalog through the admin API.
func (r *Runner) Prepare(ctx context.Context) (Catalog, error) {
	skus, err := r.setupCatalog(ctx)
	return Catalog{skus: skus}, err
}

// Load places orders at the configured rate until ctx ends, each driven
// as a careful client does (retries with the same Idempotency-Key), and
// returns once every order it placed got its final answer or gave up.
func (r *Runner) Load(ctx context.Context, c Catalog) { r.load(ctx, c.skus) }

// Settle waits, up to the configured Quiesce, for every accepted order and
// saga to end, then returns the report: counts, statuses and invariants.
func (r *Runner) Settle(ctx context.Context, c Catalog) (Report, error) {
	rep := Report{Started: time.Now().UTC(), Seed: r.cfg.Seed, Duration: r.cfg.Duration.String()}
	(&HARunner{Runner: r}).awaitSagas(ctx, time.Now().Add(r.cfg.Quiesce))
	err := r.settle(ctx, &rep, c.skus)
	rep.Passed = err == nil && passed(rep.Invariants)
	return rep, err
}

// AcceptedIDs are the orders accepted (2xx) so far.
func (r *Runner) AcceptedIDs() []string { return r.acceptedIDs() }
