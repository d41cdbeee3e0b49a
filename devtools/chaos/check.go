package chaos

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/monitor"
	"github.com/orderflow/orderflow/devtools/paysim"
)

// check reads the final state from PostgreSQL, the provider ledgers and
// Temporal visibility and checks every invariant. The checks over the
// stored state are the invariant monitor's (activities/monitor), which
// runs them in production; those over what the run itself saw (re-sent
// requests, the event stream) are the run's own.
func (r *Runner) check(ctx context.Context, skus []sku) ([]Invariant, error) {
	ids := r.acceptedIDs()
	if ids == nil {
		ids = []string{}
	}
	var out []Invariant

	// 1. Every accepted order exists and ended.
	orders, rep, err := monitor.CheckOrders(ctx, r.db, monitor.Scope{OrderIDs: ids})
	if err != nil {
		return nil, err
	}
	out = append(out, invariant("every accepted order exists and settled (ended, or paid and waiting on its carrier)", rep))

	// 2. No saga left running but those waiting on their carrier.
	if rep, err = monitor.CheckSagas(ctx, r.temporal, monitor.Scope{}); err != nil {
		return nil, err
	}
	out = append(out, invariant("no Order workflow left running but those waiting on their carrier (visibility)", rep))

	// 3. Money: one net charge per confirmed order, of its total; none for
	// the others, and a refund of the same amount for each charge they got.
	// The providers' late webhooks settle first (late 3-D Secure
	// successes voided or refunded, disputes recorded).
	r.waitProviderEvents(ctx)
	listed, err := r.ledgers(ctx)
	if err != nil {
		return nil, err
	}
	ledger := monitor.Ledgers(listed)
	run := map[string]bool{}
	for _, id := range ids {
		run[id] = true
	}
	for id := range ledger {
		if !run[id] {
			delete(ledger, id)
		}
	}
	out = append(out, invariant("one charge of its total per paid order (CONFIRMED, fulfilling, DELIVERED), refunds never above it and only for lost parcels or returns; none net for the others",
		monitor.CheckCharges(orders, ledger)))

	// 4. Stock: initial on hand = on hand now + what left with orders
	// (committed at confirmation, or shipped by fulfillment) and did not
	// come back in a received return; reserved = what orders waiting on
	// their carrier still hold; the event log replays to the row, never
	// negative, and to every warehouse's row.
	stock := make([]monitor.SKU, len(skus))
	for i, s := range skus {
		stock[i] = monitor.SKU{SKU: s.SKU, Initial: s.OnHand, Known: true}
	}
	if rep, err = monitor.CheckStock(ctx, r.db, stock, monitor.StatusesAwaitingCarrier()); err != nil {
		return nil, err
	}
	out = append(out, invariant("stock conserved per SKU and warehouse; reserved only by orders awaiting their carrier; event log replays, never negative", rep))

	// 5. A re-sent request got the first answer.
	r.mu.Lock()
	inv := Invariant{Name: "every re-sent request (same Idempotency-Key) that got an answer got the same order"}
	for _, p := range r.placed {
		if p.resend && p.orderID != "" && p.resentAnswered {
			inv.Checked++
			if p.resent != p.orderID {
				inv.Counterexamples = append(inv.Counterexamples, fmt.Sprintf("key %s: first %s, re-sent %q", p.key, p.orderID, p.resent))
			}
		}
	}
	r.mu.Unlock()
	out = append(out, done(inv))

	// 6. Refunds never exceed charges, whatever the mix of lost parcels,
	// returns and compensations.
	out = append(out, invariant("refunds never exceed charges per order (provider ledgers)", monitor.CheckRefunds(ledger)))

	// 7. Each provider's ledger agrees with orderflow's payment log.
	if rep, err = monitor.CheckLedger(ctx, r.db, orders, listed, time.Time{}, time.Time{}); err != nil {
		return nil, err
	}
	out = append(out, invariant("each provider's ledger agrees with payments (every charge recorded, of its amount; refunds per order)", rep))

	// 8. Authorize, then capture: captures within their authorizations,
	// and each for a shipment that left.
	for _, check := range []func(context.Context, *pgxpool.Pool, *pgxpool.Pool, []string) (Invariant, error){
		checkCapturesWithinAuthorizations, checkNoCaptureWithoutShipment,
	} {
		inv, err := check(ctx, r.ledgerDB(), r.db, ids)
		if err != nil {
			return nil, err
		}
		out = append(out, inv)
	}

	if rep, err = monitor.CheckCommittedOnce(ctx, r.db, orders); err != nil {
		return nil, err
	}
	out = append(out, invariant("every delivered order's stock committed once (reservations and stock log, per line)", rep))
	if r.events != nil {
		final := map[string]orderRow{}
		for _, o := range orders {
			final[o.ID] = orderRow{status: o.Status, total: o.Total}
		}
		ev, err := r.checkEvents(ctx, ids, final)
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	// Their queries join the simulators' ledger with orderflow's tables:
	// a stack whose ledger is kept apart (Config.Ledger) runs without them.
	if r.cfg.Ledger == nil && (r.cfg.ThreeDSShare > 0 || r.cfg.Disputes > 0 || r.cfg.Webhooks != (paysim.Webhooks{})) {
		pays, rep, err := r.checkPayments(ctx, ids)
		if err != nil {
			return nil, err
		}
		out, r.payRep = append(out, pays...), rep
	}
	if len(r.subs) > 0 {
		subs, reps, err := r.checkSubscribers(ctx, ids)
		if err != nil {
			return nil, err
		}
		out, r.subRep = append(out, subs...), reps
	}
	return out, nil
}

// ledgers lists every paysim instance's charges, with their refunds, from
// the simulator's own ledger (the stack's providers are paysim instances).
func (r *Runner) ledgers(ctx context.Context) ([]monitor.Listed, error) {
	return ListLedgers(ctx, r.ledgerDB())
}

// ledgerDB is the database of the simulators' ledger: the stack's, unless
// they keep theirs apart (Config.Ledger).
func (r *Runner) ledgerDB() *pgxpool.Pool {
	if r.cfg.Ledger != nil {
		return r.cfg.Ledger
	}
	return r.db
}

// ListLedgers lists every paysim instance's charges, with their refunds,
// from the simulators' ledger in db, per instance.
func ListLedgers(ctx context.Context, db *pgxpool.Pool) ([]monitor.Listed, error) {
	all := &paysim.Ledger{DB: db}
	var listed []monitor.Listed
	at := map[string]int{}
	for after := ""; ; {
		page, err := all.List(ctx, time.Unix(0, 0), time.Unix(1<<40, 0), after, 1000)
		if err != nil {
			return nil, fmt.Errorf("read ledgers: %w", err)
		}
		for _, e := range page {
			i, ok := at[e.Instance]
			if !ok {
				i = len(listed)
				at[e.Instance] = i
				listed = append(listed, monitor.Listed{Provider: e.Instance})
			}
			listed[i].Charges = append(listed[i].Charges, e.LedgerCharge)
		}
		if len(page) < 1000 {
			return listed, nil
		}
		after = page[len(page)-1].ID
	}
}

// invariant is a monitor check's report as an invariant of the run.
func invariant(name string, rep monitor.Report) Invariant {
	inv := Invariant{Name: name, Checked: rep.Checked}
	for _, f := range rep.Findings {
		inv.Counterexamples = append(inv.Counterexamples, f.Detail)
	}
	return done(inv)
}

// checkEvents waits until the relay published every outbox event of the
// run's orders and the run's consumer saw each, then checks exactly once
// per state change: each outbox row was stored once (one stream sequence:
// a second one is a duplicate JetStream did not drop), nothing the
// consumer saw is missing from the outbox, redeliveries carried their
// first id, and each order has one order.created event and one event of
// its final status.
func (r *Runner) checkEvents(ctx context.Context, ids []string, orders map[string]orderRow) (Invariant, error) {
	inv := Invariant{Name: "every event published exactly once per state change (outbox vs a deduping JetStream consumer)"}
	type row struct {
		id, typ, order string
	}
	var outbox []row
	deadline := time.Now().Add(2 * time.Minute)
	for {
		outbox = outbox[:0]
		pending := 0
		rows, err := r.db.Query(ctx, `SELECT id::text, type, order_id::text, status FROM event_outbox WHERE order_id = ANY($1::uuid[])`, ids)
		if err != nil {
			return inv, fmt.Errorf("read event outbox: %w", err)
		}
		for rows.Next() {
			var e row
			var status string
			if err := rows.Scan(&e.id, &e.typ, &e.order, &status); err != nil {
				rows.Close()
				return inv, fmt.Errorf("read event outbox: %w", err)
			}
			if status == "pending" {
				pending++
			}
			outbox = append(outbox, e)
		}
		rows.Close()
		unseen := 0
		for _, e := range outbox {
			if r.events.seen(e.id) == 0 {
				unseen++
			}
		}
		if pending == 0 && unseen == 0 || time.Now().After(deadline) {
			if pending > 0 {
				inv.Counterexamples = append(inv.Counterexamples, fmt.Sprintf("%d outbox events still pending", pending))
			}
			break
		}
		select {
		case <-ctx.Done():
			return inv, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	inv.Checked = len(outbox)
	inOutbox := map[string]bool{}
	for _, e := range outbox {
		inOutbox[e.id] = true
		switch n := r.events.seen(e.id); {
		case n == 0:
			inv.Counterexamples = append(inv.Counterexamples, fmt.Sprintf("%s %s of %s: never seen", e.id, e.typ, e.order))
		case n > 1:
			inv.Counterexamples = append(inv.Counterexamples, fmt.Sprintf("%s %s of %s: stored %d times", e.id, e.typ, e.order, n))
		}
	}
	w := r.events
	w.mu.Lock()
	defer w.mu.Unlock()
	inv.Counterexamples = append(inv.Counterexamples, w.mismatched...)
	final := map[string]string{orderflow.StatusFailed: "order.failed", orderflow.StatusCancelled: "order.cancelled",
		orderflow.StatusDelivered: "order.delivered", orderflow.StatusConfirmed: "order.confirmed"}
	for _, id := range ids {
		byType := w.orders[id]
		for typ, evs := range byType {
			for ev := range evs {
				if !inOutbox[ev] {
					inv.Counterexamples = append(inv.Counterexamples, fmt.Sprintf("%s %s of %s: seen, but not in the outbox", ev, typ, id))
				}
			}
		}
		if n := len(byType["order.created"]); n != 1 {
			inv.Counterexamples = append(inv.Counterexamples, fmt.Sprintf("%s: %d order.created events", id, n))
		}
		if typ, ok := final[orders[id].status]; ok {
			if n := len(byType[typ]); n != 1 {
				inv.Counterexamples = append(inv.Counterexamples, fmt.Sprintf("%s %s: %d %s events", id, orders[id].status, n, typ))
			}
		}
	}
	return done(inv), nil
}

// orderRow is an order's final state.
type orderRow struct {
	status string
	total  int64
}

// runningSagas finds, in visibility, the Order workflows still running but
// those waiting on their carrier.
var runningSagas = monitor.SagaQuery("", time.Time{})

func done(inv Invariant) Invariant {
	inv.Passed = len(inv.Counterexamples) == 0
	return inv
}
