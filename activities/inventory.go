package activities

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/activity"

	"github.com/orderflow/orderflow/internal/cache"
	"github.com/orderflow/orderflow/internal/db"
)

// Inventory reserves and releases stock.
//
// Every change is a conditional UPDATE that bumps inventory.version and only
// applies when the row still satisfies reserved <= on_hand after it, so
// concurrent orders can never oversell; each change is appended to
// inventory_events, whose unique (order_id, sku, reason) makes a retried
// reserve or release a no-op instead of a second movement.
type Inventory struct {
	DB    *pgxpool.Pool
	Cache *redis.Client
}

// ReserveInput is the order whose lines to reserve.
type ReserveInput struct {
	OrderID string `json:"order_id"`
	Lines   []Line `json:"lines"`
}

// Reserve holds stock for every line of the order and marks it RESERVED, all
// or nothing. A SKU without enough available stock is a non-retryable
// OutOfStock error whose details name the SKU.
func (i *Inventory) Reserve(ctx context.Context, in ReserveInput) error {
	items := perSKU(in.Lines)
	err := db.InTx(ctx, i.DB, func(tx pgx.Tx) error {
		for _, it := range items {
			if _, err := applyEvent(ctx, tx, in.OrderID, it.SKU, "reserve", 0, it.Quantity); err != nil {
				if errors.Is(err, errInsufficient) {
					return businessError(ErrOutOfStock, "out of stock: "+it.SKU, it.SKU)
				}
				return err
			}
		}
		return setStatus(ctx, tx, in.OrderID, StatusReserved, "")
	})
	if err != nil {
		return wrap(err, "reserve %s", in.OrderID)
	}
	invalidate(ctx, i.Cache, items)
	return nil
}

// Release returns to the shelf whatever the order still holds: reservations
// that were neither released nor committed (or whose commit was reverted).
// Releasing an order that reserved nothing is a no-op, so the saga may run it
// whether or not Reserve got as far as the database.
func (i *Inventory) Release(ctx context.Context, in OrderRef) error {
	var items []Item
	err := db.InTx(ctx, i.DB, func(tx pgx.Tx) error {
		const q = `SELECT sku, delta_reserved FROM inventory_events e
			WHERE order_id = $1 AND reason = 'reserve'
			  AND NOT EXISTS (SELECT 1 FROM inventory_events r WHERE r.order_id = e.order_id AND r.sku = e.sku AND r.reason = 'release')
			  AND (NOT EXISTS (SELECT 1 FROM inventory_events c WHERE c.order_id = e.order_id AND c.sku = e.sku AND c.reason = 'commit')
			       OR EXISTS (SELECT 1 FROM inventory_events v WHERE v.order_id = e.order_id AND v.sku = e.sku AND v.reason = 'revert'))
			ORDER BY sku`
		rows, err := tx.Query(ctx, q, in.OrderID)
		if err != nil {
			return fmt.Errorf("load reservations: %w", err)
		}
		items, err = pgx.CollectRows(rows, pgx.RowToStructByPos[Item])
		if err != nil {
			return fmt.Errorf("load reservations: %w", err)
		}
		for _, it := range items {
			if _, err := applyEvent(ctx, tx, in.OrderID, it.SKU, "release", 0, -it.Quantity); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("release %s: %w", in.OrderID, err)
	}
	if len(items) > 0 {
		activity.GetLogger(ctx).Info("stock released", "order_id", in.OrderID, "skus", len(items))
	}
	invalidate(ctx, i.Cache, items)
	return nil
}

var errInsufficient = errors.New("insufficient stock")

// applyEvent appends one inventory event for an order and applies its deltas
// to the SKU's row. It reports false, changing nothing, when the same event
// was already applied, and errInsufficient when the row would break
// 0 <= reserved <= on_hand.
func applyEvent(ctx context.Context, tx pgx.Tx, orderID, sku, reason string, dOnHand, dReserved int) (bool, error) {
	const qe = `INSERT INTO inventory_events (sku, delta_on_hand, delta_reserved, reason, order_id)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (order_id, sku, reason) WHERE order_id IS NOT NULL DO NOTHING`
	tag, err := tx.Exec(ctx, qe, sku, dOnHand, dReserved, reason, orderID)
	if err != nil {
		return false, fmt.Errorf("append %s event for %s: %w", reason, sku, err)
	}
	if tag.RowsAffected() == 0 {
		return false, nil
	}
	const qu = `UPDATE inventory
		SET on_hand = on_hand + $2, reserved = reserved + $3, version = version + 1, updated_at = now()
		WHERE sku = $1 AND reserved + $3 >= 0 AND reserved + $3 <= on_hand + $2`
	tag, err = tx.Exec(ctx, qu, sku, dOnHand, dReserved)
	if err != nil {
		return false, fmt.Errorf("apply %s to %s: %w", reason, sku, err)
	}
	if tag.RowsAffected() == 0 {
		return false, fmt.Errorf("%s %s: %w", reason, sku, errInsufficient)
	}
	return true, nil
}

func invalidate(ctx context.Context, c *redis.Client, items []Item) {
	if c == nil || len(items) == 0 {
		return
	}
	keys := make([]string, len(items))
	for n, it := range items {
		keys[n] = cache.InventoryKey(it.SKU)
	}
	cache.Del(ctx, c, activity.GetLogger(ctx), keys...)
}
