package chaos

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"time"

	"go.temporal.io/api/workflowservice/v1"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/catalog"
)

// check reads the final state from PostgreSQL, the provider ledgers and
// Temporal visibility and checks every invariant.
func (r *Runner) check(ctx context.Context, skus []sku) ([]Invariant, error) {
	ids := r.acceptedIDs()
	var out []Invariant

	// 1. Every accepted order exists and ended.
	orders := map[string]orderRow{}
	rows, err := r.db.Query(ctx, `SELECT order_id::text, status, total_cents FROM orders WHERE order_id = ANY($1::uuid[])`, ids)
	if err != nil {
		return nil, fmt.Errorf("read orders: %w", err)
	}
	for rows.Next() {
		var id string
		var o orderRow
		if err := rows.Scan(&id, &o.status, &o.total); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read orders: %w", err)
		}
		orders[id] = o
	}
	rows.Close()
	inv := Invariant{Name: "every accepted order exists and settled (ended, or paid and waiting on its carrier)", Checked: len(ids)}
	for _, id := range ids {
		o, ok := orders[id]
		switch {
		case !ok:
			inv.Counterexamples = append(inv.Counterexamples, id+": missing")
		case !orderflow.Settled(o.status):
			inv.Counterexamples = append(inv.Counterexamples, id+": still "+o.status)
		}
	}
	out = append(out, done(inv))

	// 2. No saga left running but those waiting on their carrier.
	res, err := r.temporal.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
		Query: `WorkflowType = "Order" AND ExecutionStatus = "Running" AND OrderStatus NOT IN ("` +
			strings.Join([]string{orderflow.StatusFulfilling, orderflow.StatusFulfillmentOverdue, orderflow.StatusPartiallyShipped, orderflow.StatusShipped}, `", "`) + `")`})
	if err != nil {
		return nil, fmt.Errorf("count running sagas: %w", err)
	}
	inv = Invariant{Name: "no Order workflow left running but those waiting on their carrier (visibility)", Checked: 1}
	if res.GetCount() > 0 {
		inv.Counterexamples = append(inv.Counterexamples, fmt.Sprintf("%d running", res.GetCount()))
	}
	out = append(out, done(inv))

	// 3. Money: one net charge per confirmed order, of its total; none for
	// the others, and a refund of the same amount for each charge they got.
	type money struct{ charges, refunds, charged, refunded int64 }
	ledger := map[string]*money{}
	rows, err = r.db.Query(ctx, `SELECT substring(idempotency_key from '^(?:charge|refund)-([0-9a-f-]{36})'), kind, amount_cents
		FROM paysim.ledger WHERE substring(idempotency_key from '^(?:charge|refund)-([0-9a-f-]{36})') = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("read ledgers: %w", err)
	}
	for rows.Next() {
		var id, kind string
		var amount int64
		if err := rows.Scan(&id, &kind, &amount); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read ledgers: %w", err)
		}
		m := ledger[id]
		if m == nil {
			m = &money{}
			ledger[id] = m
		}
		if kind == "charge" {
			m.charges, m.charged = m.charges+1, m.charged+amount
		} else {
			m.refunds, m.refunded = m.refunds+1, m.refunded+amount
		}
	}
	rows.Close()
	inv = Invariant{Name: "one charge of its total per paid order (CONFIRMED, fulfilling, DELIVERED), refunds never above it and only for lost parcels or returns; none net for the others", Checked: len(orders)}
	for id, o := range orders {
		m := ledger[id]
		if m == nil {
			m = &money{}
		}
		switch {
		case o.status == orderflow.StatusConfirmed || orderflow.AwaitingCarrier(o.status) || o.status == orderflow.StatusDelivered:
			// A delivered order may have a lost shipment refunded in part.
			// So may one still on its carrier's way: a lost parcel is
			// refunded before the order ends.
			if m.charges != 1 || m.charged != o.total || m.refunded > m.charged || m.refunded > 0 && o.status == orderflow.StatusConfirmed {
				inv.Counterexamples = append(inv.Counterexamples, fmt.Sprintf("%s %s total %d: %d charges (%d), %d refunds (%d)", id, o.status, o.total, m.charges, m.charged, m.refunds, m.refunded))
			}
		case o.status == orderflow.StatusFailed || o.status == orderflow.StatusCancelled:
			if m.charged != m.refunded {
				inv.Counterexamples = append(inv.Counterexamples, fmt.Sprintf("%s %s: %d charges (%d), %d refunds (%d)", id, o.status, m.charges, m.charged, m.refunds, m.refunded))
			}
		}
	}
	out = append(out, done(inv))

	// 4. Stock: initial on hand = on hand now + what left with orders
	// (committed at confirmation, or shipped by fulfillment) and did not
	// come back in a received return; reserved =
	// what orders waiting on their carrier still hold; the event log
	// replays to the row, never negative, and to every warehouse's row.
	inv = Invariant{Name: "stock conserved per SKU and warehouse; reserved only by orders awaiting their carrier; event log replays, never negative", Checked: len(skus)}
	for _, s := range skus {
		var onHand, reserved, left, held int
		err := r.db.QueryRow(ctx, `SELECT i.on_hand, i.reserved,
			COALESCE((SELECT sum(CASE WHEN r.status = 'committed' THEN r.quantity ELSE r.shipped END) FROM reservations r WHERE r.sku = i.sku), 0)
			- COALESCE((SELECT sum(ri.quantity) FROM return_items ri JOIN returns rt USING (return_id)
			            WHERE ri.sku = i.sku AND rt.status IN ('received', 'refunded')), 0),
			COALESCE((SELECT sum(r.quantity - r.shipped) FROM reservations r JOIN orders o USING (order_id)
			          WHERE r.sku = i.sku AND r.status = 'held' AND o.status = ANY($2)), 0)
			FROM inventory i WHERE i.sku = $1`, s.SKU,
			[]string{orderflow.StatusFulfilling, orderflow.StatusFulfillmentOverdue, orderflow.StatusPartiallyShipped, orderflow.StatusShipped}).
			Scan(&onHand, &reserved, &left, &held)
		if err != nil {
			return nil, fmt.Errorf("read stock of %s: %w", s.SKU, err)
		}
		if s.OnHand != onHand+left || reserved != held {
			inv.Counterexamples = append(inv.Counterexamples, fmt.Sprintf("%s: started %d, on hand %d + left %d, reserved %d (held by orders awaiting their carrier %d)", s.SKU, s.OnHand, onHand, left, reserved, held))
		}
		replay, err := catalog.ReplayInventory(ctx, r.db, s.SKU)
		if err != nil {
			return nil, err
		}
		if replay.Violation != "" || replay.OnHand != onHand || replay.Reserved != reserved {
			inv.Counterexamples = append(inv.Counterexamples, fmt.Sprintf("%s: events replay to %d/%d against row %d/%d %s", s.SKU, replay.OnHand, replay.Reserved, onHand, reserved, replay.Violation))
		}
		wh, err := catalog.ReplayWarehouses(ctx, r.db, s.SKU)
		if err != nil {
			return nil, err
		}
		sum := 0
		for _, n := range wh.Rows {
			sum += n
		}
		// Stock not yet filed in a warehouse (a SKU whose on-hand never
		// moved since) counts as unfiled.
		if !maps.Equal(wh.Rows, wh.Events) || sum+wh.Unfiled != onHand {
			inv.Counterexamples = append(inv.Counterexamples, fmt.Sprintf("%s: warehouses %v, their events %v, unfiled %d, on hand %d", s.SKU, wh.Rows, wh.Events, wh.Unfiled, onHand))
		}
	}
	out = append(out, done(inv))

	// 5. A re-sent request got the first answer.
	r.mu.Lock()
	inv = Invariant{Name: "every re-sent request (same Idempotency-Key) that got an answer got the same order"}
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
	inv = Invariant{Name: "refunds never exceed charges per order (provider ledgers)", Checked: len(ledger)}
	for id, m := range ledger {
		if m.refunded > m.charged {
			inv.Counterexamples = append(inv.Counterexamples, fmt.Sprintf("%s: charged %d, refunded %d", id, m.charged, m.refunded))
		}
	}
	out = append(out, done(inv))

	commit, err := r.checkCommittedOnce(ctx, ids)
	if err != nil {
		return nil, err
	}
	out = append(out, commit)
	if r.events != nil {
		ev, err := r.checkEvents(ctx, ids, orders)
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}

// checkCommittedOnce: every DELIVERED order's stock left once, line by
// line: its reservations are committed for their full quantity, and the
// stock log moved each SKU's ordered quantity out of on-hand exactly once
// (commit or ship events, net of nothing else).
func (r *Runner) checkCommittedOnce(ctx context.Context, ids []string) (Invariant, error) {
	const q = `WITH delivered AS (
		SELECT order_id FROM orders WHERE order_id = ANY($1::uuid[]) AND status = 'DELIVERED'),
	ordered AS (
		SELECT i.order_id, i.sku, sum(i.quantity) AS qty FROM order_items i JOIN delivered USING (order_id) GROUP BY 1, 2),
	reserved AS (
		SELECT r.order_id, r.sku, sum(r.quantity) FILTER (WHERE r.status = 'committed' AND r.shipped = r.quantity) AS committed,
		       count(*) FILTER (WHERE r.status <> 'committed') AS open
		FROM reservations r JOIN delivered USING (order_id) GROUP BY 1, 2),
	left_stock AS (
		SELECT e.order_id, e.sku, -sum(e.delta_on_hand) AS qty, count(*) AS moves
		FROM inventory_events e JOIN delivered USING (order_id)
		WHERE e.reason IN ('commit', 'ship') GROUP BY 1, 2)
	SELECT o.order_id::text, o.sku, o.qty, COALESCE(r.committed, 0), COALESCE(r.open, 0), COALESCE(l.qty, 0)
	FROM ordered o LEFT JOIN reserved r USING (order_id, sku) LEFT JOIN left_stock l USING (order_id, sku)
	WHERE COALESCE(r.committed, 0) <> o.qty OR COALESCE(r.open, 0) > 0 OR COALESCE(l.qty, 0) <> o.qty`
	inv := Invariant{Name: "every delivered order's stock committed once (reservations and stock log, per line)"}
	if err := r.db.QueryRow(ctx, `SELECT count(*) FROM orders WHERE order_id = ANY($1::uuid[]) AND status = 'DELIVERED'`, ids).Scan(&inv.Checked); err != nil {
		return inv, fmt.Errorf("count delivered orders: %w", err)
	}
	rows, err := r.db.Query(ctx, q, ids)
	if err != nil {
		return inv, fmt.Errorf("read delivered orders' stock: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, sku string
		var qty, committed, open, left int
		if err := rows.Scan(&id, &sku, &qty, &committed, &open, &left); err != nil {
			return inv, fmt.Errorf("read delivered orders' stock: %w", err)
		}
		inv.Counterexamples = append(inv.Counterexamples, fmt.Sprintf("%s %s: ordered %d, reservations committed %d (%d not committed), stock log moved %d",
			id, sku, qty, committed, open, left))
	}
	if err := rows.Err(); err != nil {
		return inv, fmt.Errorf("read delivered orders' stock: %w", err)
	}
	return done(inv), nil
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

func done(inv Invariant) Invariant {
	inv.Passed = len(inv.Counterexamples) == 0
	return inv
}
