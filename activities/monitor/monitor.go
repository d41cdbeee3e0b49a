// Package monitor checks orderflow's invariants over the state it keeps:
// the checks `make chaos` proves under faults (nothing lost, no double
// charge, none stuck, stock exact, refunds within charges, each provider's
// ledger agreeing with payments) run here, in production, as the
// activities of the monitor workflow (workflows/monitor), and the chaos
// runs (devtools/chaos) call the same functions over their own orders.
// Each breach is a Finding, kept in invariant_findings (Store) and counted
// by the orderflow_invariant_findings gauge; docs/operations.md has the
// runbook for each kind.
package monitor

import (
	"fmt"
	"time"

	"github.com/orderflow/orderflow"
)

// The kinds of finding, as invariant_findings.kind stores them and the
// metric's kind label carries them. Never rename one: alerts and the
// runbook name them.
const (
	// KindLostOrder: an order was accepted (its acceptance record answered
	// 2xx) but no order row exists.
	KindLostOrder = "lost_order"
	// KindStuckSaga: an order has not settled (ended, or paid and waiting
	// on its carrier) long after it was placed, or its saga still runs.
	KindStuckSaga = "stuck_saga"
	// KindChargeMismatch: an order's net charges at its providers disagree
	// with its status: a paid order charged twice, not at all or not its
	// total; a failed or cancelled order not refunded in full.
	KindChargeMismatch = "charge_mismatch"
	// KindRefundOverCharge: an order's refunds add up to more than its
	// charges.
	KindRefundOverCharge = "refund_over_charge"
	// KindStockDrift: a SKU's stock row disagrees with its event log, its
	// warehouses or what orders hold, or a delivered order's stock did not
	// leave exactly once.
	KindStockDrift = "stock_drift"
	// KindLedgerMismatch: a provider's ledger and orderflow's payments
	// disagree about a charge or its refunds.
	KindLedgerMismatch = "ledger_mismatch"
)

// Kinds are every kind of finding.
func Kinds() []string {
	return []string{KindLostOrder, KindStuckSaga, KindChargeMismatch, KindRefundOverCharge, KindStockDrift, KindLedgerMismatch}
}

// Finding is one breach of an invariant.
type Finding struct {
	Kind string `json:"kind"`
	// Subject is what the finding is about: an order id, a SKU, or
	// provider:charge.
	Subject string `json:"subject"`
	Detail  string `json:"detail"`
}

func finding(kind, subject, format string, args ...any) Finding {
	return Finding{Kind: kind, Subject: subject, Detail: fmt.Sprintf(format, args...)}
}

// Report is what one check looked at and what it found.
type Report struct {
	Checked  int       `json:"checked"`
	Findings []Finding `json:"findings,omitempty"`
}

func (r *Report) add(f Finding) { r.Findings = append(r.Findings, f) }

// Scope is what a run checks: the orders named (a chaos run's accepted
// orders, none re-sent), or the orders placed in [Since, Until) and the
// SKUs moved since Since.
type Scope struct {
	// OrderIDs, when set, are the orders to check; every one of them was
	// accepted, and each must have settled by now.
	OrderIDs []string  `json:"order_ids"`
	Since    time.Time `json:"since"`
	Until    time.Time `json:"until"`
	// StuckBefore: an order of the window placed before it and still not
	// settled is stuck. Zero with OrderIDs: every unsettled one is.
	StuckBefore time.Time `json:"stuck_before"`
	// Region limits the orders and sagas to one region's ("" all).
	Region string `json:"region,omitempty"`
}

// Window is a run's scope over the recent past, as of now: the orders
// placed in [now-window, now-grace), stuck when placed before
// now-stuckAfter, in the region.
func Window(now time.Time, window, grace, stuckAfter time.Duration, region string) Scope {
	return Scope{Since: now.Add(-window), Until: now.Add(-grace), StuckBefore: now.Add(-stuckAfter), Region: region}
}

// byID reports whether the scope names its orders.
func (s Scope) byID() bool { return s.OrderIDs != nil }

// Order is an order as the checks see it.
type Order struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Total  int64  `json:"total"`
}

// paid reports whether the order's customer should have paid: it is
// CONFIRMED, waits on its carrier, or was delivered.
func (o Order) paid() bool {
	return o.Status == orderflow.StatusConfirmed || orderflow.AwaitingCarrier(o.Status) || o.Status == orderflow.StatusDelivered
}

// settled reports whether nothing inside orderflow is left to do for the
// order (orderflow.Settled): its money and stock no longer move but by a
// carrier's event or a return.
func (o Order) settled() bool { return orderflow.Settled(o.Status) }

// StatusesAwaitingCarrier are the statuses of orders paid for and waiting
// on their warehouses or carrier.
func StatusesAwaitingCarrier() []string {
	return []string{orderflow.StatusFulfilling, orderflow.StatusFulfillmentOverdue, orderflow.StatusPartiallyShipped, orderflow.StatusShipped}
}

// StatusesHolding are the statuses of orders that may hold stock in
// production: every status but those of an order that ended without
// (FAILED, CANCELLED) or with its goods gone (DELIVERED). A chaos run,
// which waits for every order to settle, allows only
// StatusesAwaitingCarrier.
func StatusesHolding() []string {
	var out []string
	for _, s := range orderflow.Statuses() {
		if s != orderflow.StatusFailed && s != orderflow.StatusCancelled && s != orderflow.StatusDelivered {
			out = append(out, s)
		}
	}
	return out
}
