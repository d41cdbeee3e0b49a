package monitor

import (
	"context"
	"fmt"
	"maps"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities"
	"github.com/orderflow/orderflow/activities/catalog"
)

// SKU is a SKU to check, with the stock it started with when that is known
// (a chaos run created its catalog).
type SKU struct {
	SKU string `json:"sku"`
	// Initial is the on-hand the SKU was created with; Known says it is.
	Initial int  `json:"initial"`
	Known   bool `json:"known"`
}

// qStock reads a SKU's row with what left it with orders (committed at
// confirmation, or shipped by fulfillment) and did not come back in a
// received return, and what orders of the holding statuses ($2) still hold.
const qStock = `SELECT i.on_hand, i.reserved,
	COALESCE((SELECT sum(CASE WHEN r.status = 'committed' THEN r.quantity ELSE r.shipped END) FROM reservations r WHERE r.sku = i.sku), 0)
	- COALESCE((SELECT sum(ri.quantity) FROM return_items ri JOIN returns rt USING (return_id)
	            WHERE ri.sku = i.sku AND rt.status IN ('received', 'refunded')), 0),
	COALESCE((SELECT sum(r.quantity - r.shipped) FROM reservations r JOIN orders o USING (order_id)
	          WHERE r.sku = i.sku AND r.status = 'held' AND o.status = ANY($2)), 0)
	FROM inventory i WHERE i.sku = $1`

// The SKUs a run over a window checks: those whose row changed since the
// window began (inventory.updated_at moves with every change), or all.
const (
	qSKUsChanged = `SELECT sku FROM inventory WHERE updated_at >= $1 ORDER BY sku`
	qSKUsAll     = `SELECT sku FROM inventory ORDER BY sku`
)

// SKUsOf lists the SKUs a run over the scope checks: every SKU when all
// is set, else those whose stock changed since the scope's Since.
func SKUsOf(ctx context.Context, q activities.Querier, s Scope, all bool) ([]SKU, error) {
	var rows pgx.Rows
	var err error
	if all {
		rows, err = q.Query(ctx, qSKUsAll)
	} else {
		rows, err = q.Query(ctx, qSKUsChanged, s.Since)
	}
	if err != nil {
		return nil, fmt.Errorf("list skus: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list skus: %w", err)
	}
	out := make([]SKU, len(names))
	for i, n := range names {
		out[i] = SKU{SKU: n}
	}
	return out, nil
}

// CheckStock checks each SKU's stock (KindStockDrift): reserved is what
// orders of the holding statuses still hold; the event log replays to the
// row, never negative, and to every warehouse's row; and, when the SKU's
// initial stock is known, on hand now plus what left with orders is what
// it started with. Each SKU is read in one snapshot (a read-only
// repeatable-read transaction), so orders moving stock meanwhile cannot
// make the row and its log disagree.
func CheckStock(ctx context.Context, pool *pgxpool.Pool, skus []SKU, holding []string) (Report, error) {
	rep := Report{Checked: len(skus)}
	for _, s := range skus {
		err := pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
			found, err := checkSKU(ctx, tx, s, holding)
			rep.Findings = append(rep.Findings, found...)
			return err
		})
		if err != nil {
			return Report{}, err
		}
	}
	return rep, nil
}

func checkSKU(ctx context.Context, tx pgx.Tx, s SKU, holding []string) ([]Finding, error) {
	var out []Finding
	var onHand, reserved, left, held int
	if err := tx.QueryRow(ctx, qStock, s.SKU, holding).Scan(&onHand, &reserved, &left, &held); err != nil {
		return nil, fmt.Errorf("read stock of %s: %w", s.SKU, err)
	}
	if s.Known && s.Initial != onHand+left || reserved != held {
		out = append(out, finding(KindStockDrift, s.SKU, "%s: started %s, on hand %d + left %d, reserved %d (held by orders %d)",
			s.SKU, initial(s), onHand, left, reserved, held))
	}
	replay, err := catalog.ReplayInventory(ctx, tx, s.SKU)
	if err != nil {
		return nil, err
	}
	if replay.Violation != "" || replay.OnHand != onHand || replay.Reserved != reserved {
		out = append(out, finding(KindStockDrift, s.SKU, "%s: events replay to %d/%d against row %d/%d %s",
			s.SKU, replay.OnHand, replay.Reserved, onHand, reserved, replay.Violation))
	}
	wh, err := catalog.ReplayWarehouses(ctx, tx, s.SKU)
	if err != nil {
		return nil, err
	}
	sum := 0
	for _, n := range wh.Rows {
		sum += n
	}
	// Stock not yet filed in a warehouse (a SKU whose on-hand never moved
	// since) counts as unfiled.
	if !maps.Equal(wh.Rows, wh.Events) || sum+wh.Unfiled != onHand {
		out = append(out, finding(KindStockDrift, s.SKU, "%s: warehouses %v, their events %v, unfiled %d, on hand %d",
			s.SKU, wh.Rows, wh.Events, wh.Unfiled, onHand))
	}
	return out, nil
}

func initial(s SKU) string {
	if !s.Known {
		return "unknown"
	}
	return fmt.Sprint(s.Initial)
}

// qDelivered finds, among the orders given, the delivered ones whose stock
// did not leave exactly once, line by line: their reservations are
// committed for their full quantity, and the stock log moved each SKU's
// ordered quantity out of on-hand exactly once (commit or ship events, net
// of nothing else).
const qDelivered = `WITH delivered AS (
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

// CheckCommittedOnce checks that every DELIVERED order among orders had
// its stock leave exactly once, line by line (KindStockDrift about the
// order).
func CheckCommittedOnce(ctx context.Context, q activities.Querier, orders []Order) (Report, error) {
	var ids []string
	for _, o := range orders {
		if o.Status == orderflow.StatusDelivered {
			ids = append(ids, o.ID)
		}
	}
	rep := Report{Checked: len(ids)}
	if len(ids) == 0 {
		return rep, nil
	}
	rows, err := q.Query(ctx, qDelivered, ids)
	if err != nil {
		return Report{}, fmt.Errorf("read delivered orders' stock: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, sku string
		var qty, committed, open, left int
		if err := rows.Scan(&id, &sku, &qty, &committed, &open, &left); err != nil {
			return Report{}, fmt.Errorf("read delivered orders' stock: %w", err)
		}
		rep.add(finding(KindStockDrift, id, "%s %s: ordered %d, reservations committed %d (%d not committed), stock log moved %d",
			id, sku, qty, committed, open, left))
	}
	if err := rows.Err(); err != nil {
		return Report{}, fmt.Errorf("read delivered orders' stock: %w", err)
	}
	return rep, nil
}
