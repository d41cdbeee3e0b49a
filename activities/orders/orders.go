package orders

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities"
	"github.com/orderflow/orderflow/activities/catalog"
	"github.com/orderflow/orderflow/activities/notify"
	"github.com/orderflow/orderflow/internal/pii"
)

// Activities records orders, their lines and their status history.
type Activities struct {
	DB    *pgxpool.Pool
	Cache *redis.Client
	// PII encrypts the customer's e-mail and shipping address before they
	// are stored; required.
	PII *pii.Keyring
}

// CreateOrderInput is what the gateway accepted.
type CreateOrderInput struct {
	OrderID    string           `json:"order_id"`
	CustomerID string           `json:"customer_id"`
	Email      string           `json:"email"`
	Region     string           `json:"region"`
	Items      []orderflow.Item `json:"items"`
	// ShippingAddress is stored sealed; nil (a synthetic order, a saga
	// started before addresses were taken) stores none.
	ShippingAddress *orderflow.Address `json:"shipping_address,omitempty"`
}

// CreateOrderResult is the order as priced from the catalog.
type CreateOrderResult struct {
	Lines      []orderflow.Line `json:"lines"`
	TotalCents int64            `json:"total_cents"`
	Currency   string           `json:"currency"`
}

// Create writes the order, its lines priced from the catalog and its first
// status (PENDING). A retry finds the order already written and returns it.
// An unknown SKU or a mix of currencies is a non-retryable InvalidOrder.
func (o *Activities) Create(ctx context.Context, in CreateOrderInput) (CreateOrderResult, error) {
	if o.PII == nil {
		return CreateOrderResult{}, errors.New("create order: no PII keyring configured")
	}
	// Sealed outside the transaction: about a microsecond, and no round trip.
	email := o.PII.SealString(in.Email, in.OrderID)
	address, err := sealAddress(o.PII, in.OrderID, in.ShippingAddress)
	if err != nil {
		return CreateOrderResult{}, err
	}
	var res CreateOrderResult
	// A GET that came before the order existed may have left a lease.
	_, err = activities.Commit(ctx, o.DB, o.Cache, in.OrderID, func(tx pgx.Tx) ([]orderflow.Item, error) {
		existing, err := loadOrder(ctx, tx, in.OrderID)
		if err != nil {
			return nil, err
		}
		if existing != nil {
			res = CreateOrderResult{Lines: existing.Lines, TotalCents: existing.TotalCents, Currency: existing.Currency}
			return nil, nil
		}
		res.Lines, res.TotalCents, res.Currency, err = catalog.Price(ctx, tx, in.Items)
		if err != nil {
			return nil, err
		}
		skus, qtys, prices := make([]string, len(res.Lines)), make([]int32, len(res.Lines)), make([]int64, len(res.Lines))
		for i, l := range res.Lines {
			skus[i], qtys[i], prices[i] = l.SKU, int32(l.Quantity), l.UnitPriceCents // #nosec G115 -- the gateway admits 1 to api.MaxQuantity
		}
		// An order of a synthetic SKU (the deep health check's) is marked
		// synthetic, so reports leave it out.
		const qOrder = `INSERT INTO orders (order_id, customer_id, email_enc, shipping_address_enc, region, status, total_cents, currency, synthetic)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, EXISTS (SELECT 1 FROM products WHERE sku = ANY($9) AND synthetic))`
		if _, err := tx.Exec(ctx, qOrder, in.OrderID, in.CustomerID, email, address, in.Region, orderflow.StatusPending,
			res.TotalCents, res.Currency, skus); err != nil {
			return nil, fmt.Errorf("insert order: %w", err)
		}
		const qLines = `INSERT INTO order_items (order_id, line, sku, quantity, unit_price_cents)
			SELECT $1, n, sku, qty, price FROM unnest($2::text[], $3::int[], $4::bigint[]) WITH ORDINALITY AS t(sku, qty, price, n)`
		if _, err := tx.Exec(ctx, qLines, in.OrderID, skus, qtys, prices); err != nil {
			return nil, fmt.Errorf("insert lines: %w", err)
		}
		return nil, RecordStatus(ctx, tx, in.OrderID, orderflow.StatusPending, "")
	})
	if err != nil {
		return CreateOrderResult{}, activities.Wrap(err, "create order %s", in.OrderID)
	}
	return res, nil
}

// SetStatusInput moves an order to a status, with a failure reason for FAILED.
type SetStatusInput struct {
	OrderID       string `json:"order_id"`
	Status        string `json:"status"`
	FailureReason string `json:"failure_reason,omitempty"`
}

// SetStatus records a status change and appends it to the order's history.
// A change to FAILED also puts the customer's message in the notification
// outbox, in the same transaction. Repeating the same change is a no-op.
func (o *Activities) SetStatus(ctx context.Context, in SetStatusInput) error {
	_, err := activities.Commit(ctx, o.DB, o.Cache, in.OrderID, func(tx pgx.Tx) ([]orderflow.Item, error) {
		if err := RecordStatus(ctx, tx, in.OrderID, in.Status, in.FailureReason); err != nil {
			return nil, err
		}
		if in.Status == orderflow.StatusFailed {
			return nil, notify.Enqueue(ctx, tx, in.OrderID, notify.OrderFailed, "Your order could not be completed")
		}
		return nil, nil
	})
	if err != nil {
		return fmt.Errorf("set status %s of %s: %w", in.Status, in.OrderID, err)
	}
	return nil
}

// qSetStatus moves an order to $2 with failure reason $3 (” for none) and
// appends the change to its history, in one round trip. Whoever runs it
// deletes cache.OrderKey once the write has committed (invalidate). The history row is
// appended only when the order exists (a saga that failed before writing it
// has nothing to record).
const qSetStatus = `WITH u AS (
		UPDATE orders SET status = $2, failure_reason = NULLIF($3, ''), updated_at = now() WHERE order_id = $1 RETURNING order_id)
	INSERT INTO order_status_history (order_id, status, reason) SELECT order_id, $2, NULLIF($3, '') FROM u
	ON CONFLICT (order_id, status) DO NOTHING`

// RecordStatus moves an order to a status inside the caller's transaction and
// appends the change to its history; the steps of other areas (Reserve,
// Charge) call it so that their own write and the status commit together.
// The caller drops cache.OrderKey once the transaction has committed.
func RecordStatus(ctx context.Context, tx pgx.Tx, orderID, status, reason string) error {
	if _, err := tx.Exec(ctx, qSetStatus, orderID, status, reason); err != nil {
		return fmt.Errorf("set status %s: %w", status, err)
	}
	return nil
}

// Confirm turns the order's reservations into sales (on-hand and reserved both
// drop by the quantity), marks it CONFIRMED and puts the customer's message in
// the notification outbox, in one transaction. A retry
// finds the reservations already committed and moves nothing.
func (o *Activities) Confirm(ctx context.Context, in orderflow.OrderRef) error {
	_, err := activities.Commit(ctx, o.DB, o.Cache, in.OrderID, func(tx pgx.Tx) ([]orderflow.Item, error) {
		moved, err := catalog.Transition(ctx, tx, in.OrderID, "held", "committed", "commit", -1, -1)
		if err != nil {
			return nil, err
		}
		if len(moved) == 0 {
			// A retry after the commit went through, or an order that holds nothing.
			var committed bool
			q := `SELECT EXISTS (SELECT 1 FROM reservations WHERE order_id = $1 AND status = 'committed')`
			if err := tx.QueryRow(ctx, q, in.OrderID).Scan(&committed); err != nil {
				return nil, fmt.Errorf("check commits: %w", err)
			}
			if !committed {
				return nil, activities.Business(orderflow.InvalidOrder, "order "+in.OrderID+" holds no stock to confirm")
			}
		}
		if err := RecordStatus(ctx, tx, in.OrderID, orderflow.StatusConfirmed, ""); err != nil {
			return nil, err
		}
		return moved, notify.Enqueue(ctx, tx, in.OrderID, notify.OrderConfirmed, "Your order is confirmed")
	})
	if err != nil {
		return activities.Wrap(err, "confirm %s", in.OrderID)
	}
	return nil
}

// Revert undoes Confirm's stock movement for an order whose confirmation must
// be compensated: each committed line goes back to held, so that Release can
// then return it to the shelf.
func (o *Activities) Revert(ctx context.Context, in orderflow.OrderRef) error {
	_, err := activities.Commit(ctx, o.DB, o.Cache, "", func(tx pgx.Tx) ([]orderflow.Item, error) {
		return catalog.Transition(ctx, tx, in.OrderID, "committed", "held", "revert", 1, 1)
	})
	if err != nil {
		return activities.Wrap(err, "revert %s", in.OrderID)
	}
	return nil
}

// QueueStatus is RecordStatus as one statement of the caller's batch, for a
// step that sends its writes in one round trip.
func QueueStatus(b *pgx.Batch, orderID, status, reason string) {
	b.Queue(qSetStatus, orderID, status, reason)
}
