package chaos

import (
	"context"
	"fmt"
	"maps"
	"strings"

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
	type order struct {
		status string
		total  int64
	}
	orders := map[string]order{}
	rows, err := r.db.Query(ctx, `SELECT order_id::text, status, total_cents FROM orders WHERE order_id = ANY($1::uuid[])`, ids)
	if err != nil {
		return nil, fmt.Errorf("read orders: %w", err)
	}
	for rows.Next() {
		var id string
		var o order
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
	res, err := r.temporal.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: runningSagas})
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
	inv = Invariant{Name: "one charge of its total per paid order (CONFIRMED, fulfilling, DELIVERED), refunds never above it and only for lost parcels; none net for the others", Checked: len(orders)}
	for id, o := range orders {
		m := ledger[id]
		if m == nil {
			m = &money{}
		}
		switch {
		case o.status == orderflow.StatusConfirmed || orderflow.AwaitingCarrier(o.status) || o.status == orderflow.StatusDelivered:
			// A delivered order may have a lost shipment refunded in part.
			if m.charges != 1 || m.charged != o.total || m.refunded > m.charged || m.refunded > 0 && o.status != orderflow.StatusDelivered {
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
	inv = Invariant{Name: "every re-sent request (same Idempotency-Key) got the same order"}
	for _, p := range r.placed {
		if p.resend && p.orderID != "" {
			inv.Checked++
			if p.resent != p.orderID {
				inv.Counterexamples = append(inv.Counterexamples, fmt.Sprintf("key %s: first %s, re-sent %q", p.key, p.orderID, p.resent))
			}
		}
	}
	r.mu.Unlock()
	out = append(out, done(inv))
	return out, nil
}

// runningSagas finds, in visibility, the Order workflows still running but
// those waiting on their carrier.
var runningSagas = `WorkflowType = "Order" AND ExecutionStatus = "Running" AND OrderStatus NOT IN ("` +
	strings.Join([]string{orderflow.StatusFulfilling, orderflow.StatusFulfillmentOverdue, orderflow.StatusPartiallyShipped, orderflow.StatusShipped}, `", "`) + `")`

func done(inv Invariant) Invariant {
	inv.Passed = len(inv.Counterexamples) == 0
	return inv
}
