package chaos

import (
	"context"
	"fmt"

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
	inv := Invariant{Name: "every accepted order exists and ended (CONFIRMED, FAILED, CANCELLED)", Checked: len(ids)}
	for _, id := range ids {
		o, ok := orders[id]
		switch {
		case !ok:
			inv.Counterexamples = append(inv.Counterexamples, id+": missing")
		case !orderflow.Terminal(o.status):
			inv.Counterexamples = append(inv.Counterexamples, id+": still "+o.status)
		}
	}
	out = append(out, done(inv))

	// 2. No saga left running.
	res, err := r.temporal.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
		Query: `WorkflowType = "Order" AND ExecutionStatus = "Running"`})
	if err != nil {
		return nil, fmt.Errorf("count running sagas: %w", err)
	}
	inv = Invariant{Name: "no Order workflow left running (visibility)", Checked: 1}
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
	inv = Invariant{Name: "one net charge per CONFIRMED order, of its total; none net for the others", Checked: len(orders)}
	for id, o := range orders {
		m := ledger[id]
		if m == nil {
			m = &money{}
		}
		net, netAmount := m.charges-m.refunds, m.charged-m.refunded
		switch o.status {
		case "CONFIRMED":
			if net != 1 || netAmount != o.total {
				inv.Counterexamples = append(inv.Counterexamples, fmt.Sprintf("%s CONFIRMED total %d: %d charges (%d), %d refunds (%d)", id, o.total, m.charges, m.charged, m.refunds, m.refunded))
			}
		case "FAILED", "CANCELLED":
			if net != 0 || netAmount != 0 {
				inv.Counterexamples = append(inv.Counterexamples, fmt.Sprintf("%s %s: %d charges (%d), %d refunds (%d)", id, o.status, m.charges, m.charged, m.refunds, m.refunded))
			}
		}
	}
	out = append(out, done(inv))

	// 4. Stock: initial on hand = on hand now + what confirmed orders took;
	// nothing reserved; the event log replays to the row, never negative.
	inv = Invariant{Name: "stock conserved per SKU; reserved 0; event log replays, never negative", Checked: len(skus)}
	for _, s := range skus {
		var onHand, reserved, sold int
		err := r.db.QueryRow(ctx, `SELECT i.on_hand, i.reserved,
			COALESCE((SELECT sum(oi.quantity) FROM order_items oi JOIN orders o USING (order_id)
			          WHERE oi.sku = i.sku AND o.status = 'CONFIRMED'), 0)
			FROM inventory i WHERE i.sku = $1`, s.SKU).Scan(&onHand, &reserved, &sold)
		if err != nil {
			return nil, fmt.Errorf("read stock of %s: %w", s.SKU, err)
		}
		if s.OnHand != onHand+sold || reserved != 0 {
			inv.Counterexamples = append(inv.Counterexamples, fmt.Sprintf("%s: started %d, on hand %d + sold %d, reserved %d", s.SKU, s.OnHand, onHand, sold, reserved))
		}
		replay, err := catalog.ReplayInventory(ctx, r.db, s.SKU)
		if err != nil {
			return nil, err
		}
		if replay.Violation != "" || replay.OnHand != onHand || replay.Reserved != reserved {
			inv.Counterexamples = append(inv.Counterexamples, fmt.Sprintf("%s: events replay to %d/%d against row %d/%d %s", s.SKU, replay.OnHand, replay.Reserved, onHand, reserved, replay.Violation))
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

func done(inv Invariant) Invariant {
	inv.Passed = len(inv.Counterexamples) == 0
	return inv
}
