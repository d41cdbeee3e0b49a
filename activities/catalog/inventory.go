package catalog

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/activity"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities"
)

// Inventory reserves and releases stock.
//
// What an order holds of a SKU is a row in reservations whose status moves
// held -> released or held -> committed (and back, for a revert or an
// operator's re-run). Stock moves only when that status actually changes, so
// a retried step moves nothing. The stock change itself is a conditional
// UPDATE that bumps inventory.version and applies only while
// 0 <= reserved <= on_hand holds afterwards, so concurrent orders can never
// oversell; every change is appended to inventory_events.
type Inventory struct {
	DB    *pgxpool.Pool
	Cache *redis.Client
	// SetStatus records the order's RESERVED status inside the transaction that
	// holds its stock, so the two never disagree. The orders area owns that
	// write (orders.RecordStatus); catalog, below it, cannot import it.
	SetStatus func(ctx context.Context, tx pgx.Tx, orderID, status, reason string) error
}

// ReserveInput is the order whose lines to reserve.
type ReserveInput struct {
	OrderID string           `json:"order_id"`
	Lines   []orderflow.Line `json:"lines"`
}

// Reserve holds stock for every line of the order and marks it RESERVED, all
// or nothing. A SKU without enough available stock is a non-retryable
// OutOfStock error whose details name the SKU.
func (i *Inventory) Reserve(ctx context.Context, in ReserveInput) error {
	items := perSKU(in.Lines)
	_, err := activities.Commit(ctx, i.DB, i.Cache, in.OrderID, func(tx pgx.Tx) ([]orderflow.Item, error) {
		var moved []orderflow.Item
		for _, it := range items {
			// A new reservation, or one an earlier run released; held and
			// committed ones stay as they are.
			const q = `INSERT INTO reservations (order_id, sku, quantity, status) VALUES ($1, $2, $3, 'held')
				ON CONFLICT (order_id, sku) DO UPDATE SET status = 'held', quantity = EXCLUDED.quantity, updated_at = now()
					WHERE reservations.status = 'released'
				RETURNING sku`
			var sku string
			err := tx.QueryRow(ctx, q, in.OrderID, it.SKU, it.Quantity).Scan(&sku)
			if errors.Is(err, pgx.ErrNoRows) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("hold %s: %w", it.SKU, err)
			}
			if err := moveStock(ctx, tx, in.OrderID, it.SKU, "reserve", 0, it.Quantity); err != nil {
				if errors.Is(err, errInsufficient) {
					return nil, activities.Business(orderflow.OutOfStock, "out of stock: "+it.SKU, it.SKU)
				}
				return nil, err
			}
			moved = append(moved, it)
		}
		return moved, i.SetStatus(ctx, tx, in.OrderID, orderflow.StatusReserved, "")
	})
	if err != nil {
		return activities.Wrap(err, "reserve %s", in.OrderID)
	}
	return nil
}

// Release returns to the shelf whatever the order still holds. Releasing an
// order that holds nothing is a no-op, so the saga may run it whether or not
// Reserve got as far as the database.
func (i *Inventory) Release(ctx context.Context, in orderflow.OrderRef) error {
	moved, err := activities.Commit(ctx, i.DB, i.Cache, "", func(tx pgx.Tx) ([]orderflow.Item, error) {
		return Transition(ctx, tx, in.OrderID, "held", "released", "release", 0, -1)
	})
	if err != nil {
		return activities.Wrap(err, "release %s", in.OrderID)
	}
	if len(moved) > 0 {
		activity.GetLogger(ctx).Info("stock released", "order_id", in.OrderID, "skus", len(moved))
	}
	return nil
}

var errInsufficient = errors.New("insufficient stock")

// Transition moves every reservation of an order from one status to another
// and applies sign*quantity to on-hand (when onHandSign is set) and reserved,
// in SKU order, counting only what has not shipped. It returns what moved; reservations already moved are left
// alone, which is what makes a retried step a no-op.
func Transition(ctx context.Context, tx pgx.Tx, orderID, from, to, reason string, onHandSign, reservedSign int) ([]orderflow.Item, error) {
	const q = `UPDATE reservations SET status = $3, updated_at = now()
		WHERE order_id = $1 AND status = $2 RETURNING sku, quantity - shipped`
	rows, err := tx.Query(ctx, q, orderID, from, to)
	if err != nil {
		return nil, fmt.Errorf("%s reservations: %w", reason, err)
	}
	items, err := pgx.CollectRows(rows, pgx.RowToStructByPos[orderflow.Item])
	if err != nil {
		return nil, fmt.Errorf("%s reservations: %w", reason, err)
	}
	sort.Slice(items, func(a, b int) bool { return items[a].SKU < items[b].SKU })
	for _, it := range items {
		if it.Quantity == 0 {
			continue // all of it shipped: nothing here to move
		}
		if err := moveStock(ctx, tx, orderID, it.SKU, reason, onHandSign*it.Quantity, reservedSign*it.Quantity); err != nil {
			return nil, err
		}
	}
	return items, nil
}

// moveStock applies deltas to a SKU's row and appends the matching event;
// a change of on-hand goes through the SKU's warehouses (adjust). It
// returns errInsufficient, changing nothing, when the row would break
// 0 <= reserved <= on_hand.
func moveStock(ctx context.Context, tx pgx.Tx, orderID, sku, reason string, dOnHand, dReserved int) error {
	if dOnHand != 0 {
		return adjust(ctx, tx, orderID, sku, "", reason, dOnHand, dReserved)
	}
	// One round trip: the event is appended only if the row took the change.
	const q = `WITH u AS (
			UPDATE inventory
			SET reserved = reserved + $2, version = version + 1, updated_at = now()
			WHERE sku = $1 AND reserved + $2 >= 0 AND reserved + $2 <= on_hand
			RETURNING sku)
		INSERT INTO inventory_events (sku, delta_on_hand, delta_reserved, reason, order_id)
		SELECT sku, 0, $2, $3, $4 FROM u`
	tag, err := tx.Exec(ctx, q, sku, dReserved, reason, orderID)
	if err != nil {
		return fmt.Errorf("apply %s to %s: %w", reason, sku, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s %s: %w", reason, sku, errInsufficient)
	}
	return nil
}

// InventoryReplay is what a SKU's inventory_events add up to.
type InventoryReplay struct {
	OnHand, Reserved int
	// Violation describes the first event after which stock was negative
	// or reserved exceeded on hand; "" when the log never did.
	Violation string
}

// ReplayInventory sums a SKU's inventory_events in order, the audit that the
// event log explains the inventory row and never went below zero. q is a
// pool, or a transaction whose snapshot the caller reads the row in too.
func ReplayInventory(ctx context.Context, q activities.Querier, sku string) (InventoryReplay, error) {
	rows, err := q.Query(ctx, `SELECT delta_on_hand, delta_reserved FROM inventory_events WHERE sku = $1 ORDER BY id`, sku)
	if err != nil {
		return InventoryReplay{}, fmt.Errorf("events of %s: %w", sku, err)
	}
	defer rows.Close()
	var r InventoryReplay
	for n := 1; rows.Next(); n++ {
		var dh, dr int
		if err := rows.Scan(&dh, &dr); err != nil {
			return InventoryReplay{}, fmt.Errorf("events of %s: %w", sku, err)
		}
		r.OnHand, r.Reserved = r.OnHand+dh, r.Reserved+dr
		if r.Violation == "" && (r.OnHand < 0 || r.Reserved < 0 || r.Reserved > r.OnHand) {
			r.Violation = fmt.Sprintf("after event %d: on_hand %d reserved %d", n, r.OnHand, r.Reserved)
		}
	}
	if err := rows.Err(); err != nil {
		return InventoryReplay{}, fmt.Errorf("events of %s: %w", sku, err)
	}
	return r, nil
}

// perSKU sums quantities by SKU in SKU order, the lock order every inventory
// transaction uses so that two orders never deadlock on each other's rows.
func perSKU(lines []orderflow.Line) []orderflow.Item {
	sum := map[string]int{}
	for _, l := range lines {
		sum[l.SKU] += l.Quantity
	}
	out := make([]orderflow.Item, 0, len(sum))
	for sku, q := range sum {
		out = append(out, orderflow.Item{SKU: sku, Quantity: q})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SKU < out[j].SKU })
	return out
}
