package monitor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"

	"github.com/orderflow/orderflow/activities/payment"
)

// Lister is a payment provider whose ledger can be listed: paysim's client
// and the Stripe adapter.
type Lister interface {
	// Name identifies the provider in payment records.
	Name() string
	// ListCharges lists the charges created in [since, until), each with
	// what of it was refunded.
	ListCharges(ctx context.Context, since, until time.Time) ([]payment.LedgerCharge, error)
}

// Activities run the checks for the monitor workflow (workflows/monitor)
// and record what they find. Each is read-only but for invariant_findings,
// so a retry repeats it harmlessly.
type Activities struct {
	DB       *pgxpool.Pool
	Temporal client.Client
	// Providers are the payment providers whose ledgers are reconciled.
	Providers []Lister
}

// CheckInput is one check's scope.
type CheckInput struct {
	Scope Scope `json:"scope"`
	// All: every SKU (the nightly run), not only those moved since
	// Scope.Since.
	All bool `json:"all,omitempty"`
	// ListUntil ends the window of the providers' charges listed (it
	// starts at Scope.Since).
	ListUntil time.Time `json:"list_until"`
	// Seen is when the run began: the findings' sighting.
	Seen time.Time `json:"seen"`
}

// CheckResult counts what a check looked at and found, by kind.
type CheckResult struct {
	Checked int            `json:"checked"`
	Found   map[string]int `json:"found,omitempty"`
	Opened  int            `json:"opened"`
}

func (a *Activities) record(ctx context.Context, in CheckInput, reps ...Report) (CheckResult, error) {
	var res CheckResult
	var all []Finding
	for _, r := range reps {
		res.Checked += r.Checked
		for _, f := range r.Findings {
			if res.Found == nil {
				res.Found = map[string]int{}
			}
			res.Found[f.Kind]++
			all = append(all, f)
		}
	}
	opened, err := Store{DB: a.DB}.Record(ctx, in.Scope.Region, all, in.Seen)
	if err != nil {
		return CheckResult{}, err
	}
	res.Opened = opened
	if len(all) > 0 {
		activity.GetLogger(ctx).Warn("invariant findings", "found", res.Found, "opened", opened)
	}
	return res, nil
}

// MonitorOrders checks the scope's orders: none lost, none stuck
// (CheckOrders), and every delivered one's stock left once
// (CheckCommittedOnce).
func (a *Activities) MonitorOrders(ctx context.Context, in CheckInput) (CheckResult, error) {
	orders, rep, err := CheckOrders(ctx, a.DB, in.Scope)
	if err != nil {
		return CheckResult{}, err
	}
	once, err := CheckCommittedOnce(ctx, a.DB, orders)
	if err != nil {
		return CheckResult{}, err
	}
	return a.record(ctx, in, rep, once)
}

// MonitorMoney lists every provider's charges of the window and checks the
// scope's settled orders' money against them (CheckCharges,
// CheckRefunds) and them against orderflow's payments (CheckLedger),
// leaving out the orders paid on a provider that cannot list its ledger
// (Listable). A provider that cannot be listed fails the activity, to be
// retried.
func (a *Activities) MonitorMoney(ctx context.Context, in CheckInput) (CheckResult, error) {
	orders, _, err := CheckOrders(ctx, a.DB, in.Scope)
	if err != nil {
		return CheckResult{}, err
	}
	listed := make([]Listed, 0, len(a.Providers))
	for _, p := range a.Providers {
		charges, err := p.ListCharges(ctx, in.Scope.Since, in.ListUntil)
		if err != nil {
			return CheckResult{}, fmt.Errorf("list %s's ledger: %w", p.Name(), err)
		}
		listed = append(listed, Listed{Provider: p.Name(), Charges: charges})
	}
	// An order paid on a provider that was not listed cannot be told.
	if orders, err = Listable(ctx, a.DB, orders, listed); err != nil {
		return CheckResult{}, err
	}
	ledger := Ledgers(listed)
	scoped := map[string]bool{}
	for _, o := range orders {
		scoped[o.ID] = true
	}
	for id := range ledger {
		if !scoped[id] {
			delete(ledger, id) // charged for an order of another window
		}
	}
	rec, err := CheckLedger(ctx, a.DB, orders, listed, in.Scope.Since, in.ListUntil)
	if err != nil {
		return CheckResult{}, err
	}
	return a.record(ctx, in, CheckCharges(orders, ledger), CheckRefunds(ledger), rec)
}

// MonitorStock checks the stock of every SKU (in.All) or of those moved
// since the scope's Since, allowing held stock to orders that have not
// ended (StatusesHolding).
func (a *Activities) MonitorStock(ctx context.Context, in CheckInput) (CheckResult, error) {
	skus, err := SKUsOf(ctx, a.DB, in.Scope, in.All)
	if err != nil {
		return CheckResult{}, err
	}
	rep, err := CheckStock(ctx, a.DB, skus, StatusesHolding())
	if err != nil {
		return CheckResult{}, err
	}
	return a.record(ctx, in, rep)
}

// MonitorSagas lists the region's Order sagas running since before the
// scope's StuckBefore that do not wait on their carrier (CheckSagas).
func (a *Activities) MonitorSagas(ctx context.Context, in CheckInput) (CheckResult, error) {
	rep, err := CheckSagas(ctx, a.Temporal, in.Scope)
	if err != nil {
		return CheckResult{}, err
	}
	return a.record(ctx, in, rep)
}

// FirstOrderInput names the region whose first order to find ("" all).
type FirstOrderInput struct {
	Region string `json:"region,omitempty"`
}

// MonitorFirstOrder returns when the region's first order was placed; zero
// when it has none.
func (a *Activities) MonitorFirstOrder(ctx context.Context, in FirstOrderInput) (time.Time, error) {
	const q = `SELECT min(created_at) FROM orders WHERE $1 = '' OR region = $1`
	var at *time.Time
	if err := a.DB.QueryRow(ctx, q, in.Region).Scan(&at); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, fmt.Errorf("first order: %w", err)
	}
	if at == nil {
		return time.Time{}, nil
	}
	return *at, nil
}

// ResolveInput closes the region's findings a run over everything no
// longer saw.
type ResolveInput struct {
	Region string    `json:"region"`
	Kinds  []string  `json:"kinds"`
	Seen   time.Time `json:"seen"`
}

// MonitorResolve closes the open findings of the kinds given that the run
// begun at Seen did not see again (Store.Resolve).
func (a *Activities) MonitorResolve(ctx context.Context, in ResolveInput) (int64, error) {
	return Store{DB: a.DB}.Resolve(ctx, in.Region, in.Kinds, in.Seen)
}
