// Package returns is the area of goods coming back: a customer's return of
// delivered lines within the return window, and its receipt, which puts
// the units back on the shelf; the Return workflow then refunds the lines'
// amount (docs/fulfillment.md). Returns of one order are serialized on the
// order's row, so no two returns can together send back more than was
// delivered, and no refund can exceed what was charged.
package returns

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities"
	"github.com/orderflow/orderflow/activities/catalog"
	"github.com/orderflow/orderflow/activities/notify"
	"github.com/orderflow/orderflow/internal/db"
)

// Return statuses (returns.status).
const (
	StatusRequested = "requested"
	StatusReceived  = "received"
	StatusRefunded  = "refunded"
)

// Item is one returned line, at the price it was bought for.
type Item = orderflow.Line

// Return is a return (RMA) with its lines.
type Return = orderflow.Return

// Errors of Create; each leaves nothing written.
var (
	ErrNoSuchOrder   = errors.New("no such order")
	ErrNotDelivered  = errors.New("the order has not been delivered")
	ErrWindowClosed  = errors.New("the return window has closed")
	ErrNoSuchReturn  = errors.New("no such return")
	errTooManyOfLine = errors.New("more than was delivered and not yet returned")
)

// ExceedsError refuses a return that names more of a SKU than was delivered
// and not yet returned; Left says how many of each named SKU may still come
// back.
type ExceedsError struct {
	Left map[string]int
}

func (e *ExceedsError) Error() string { return errTooManyOfLine.Error() }

// Store is the returns area's SQL, for the gateway and the activities.
type Store struct {
	DB *pgxpool.Pool
}

// Create records a return of delivered lines of an order, priced at what
// they were bought for. The order's row is locked for the transaction, so
// concurrent returns of one order are decided one after the other.
func (s Store) Create(ctx context.Context, orderID string, items []orderflow.Item, reason string, window time.Duration) (Return, error) {
	r := Return{ReturnID: uuid.NewString(), OrderID: orderID, Status: StatusRequested, Reason: reason}
	err := db.InTx(ctx, s.DB, func(tx pgx.Tx) error {
		var status string
		err := tx.QueryRow(ctx, `SELECT status, currency FROM orders WHERE order_id = $1 FOR UPDATE`, orderID).Scan(&status, &r.Currency)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNoSuchOrder
		}
		if err != nil {
			return fmt.Errorf("lock order: %w", err)
		}
		var deliveredAt time.Time
		err = tx.QueryRow(ctx, `SELECT at FROM order_status_history WHERE order_id = $1 AND status = $2`, orderID, orderflow.StatusDelivered).Scan(&deliveredAt)
		if errors.Is(err, pgx.ErrNoRows) || status != orderflow.StatusDelivered {
			return ErrNotDelivered
		}
		if err != nil {
			return fmt.Errorf("read delivery: %w", err)
		}
		if time.Since(deliveredAt) > window {
			return ErrWindowClosed
		}
		// What may still come back, and at what price, per SKU.
		const q = `SELECT si.sku, sum(si.quantity)::int
				- coalesce((SELECT sum(ri.quantity) FROM returns r JOIN return_items ri USING (return_id)
				            WHERE r.order_id = $1 AND ri.sku = si.sku), 0)::int,
				(SELECT min(unit_price_cents) FROM order_items oi WHERE oi.order_id = $1 AND oi.sku = si.sku)
			FROM shipments s JOIN shipment_items si USING (shipment_id)
			WHERE s.order_id = $1 AND s.status = 'delivered' GROUP BY si.sku`
		rows, err := tx.Query(ctx, q, orderID)
		if err != nil {
			return fmt.Errorf("returnable lines: %w", err)
		}
		left, price := map[string]int{}, map[string]int64{}
		for rows.Next() {
			var sku string
			var n int
			var p int64
			if err := rows.Scan(&sku, &n, &p); err != nil {
				rows.Close()
				return fmt.Errorf("returnable lines: %w", err)
			}
			left[sku], price[sku] = n, p
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("returnable lines: %w", err)
		}
		want := map[string]int{}
		for _, it := range items {
			want[it.SKU] += it.Quantity
		}
		exceeds := &ExceedsError{Left: map[string]int{}}
		for sku, n := range want {
			if n > left[sku] {
				exceeds.Left[sku] = max(left[sku], 0)
			}
		}
		if len(exceeds.Left) > 0 {
			return exceeds
		}
		for sku, n := range want {
			r.Items = append(r.Items, Item{SKU: sku, Quantity: n, UnitPriceCents: price[sku]})
			r.AmountCents += int64(n) * price[sku]
		}
		sort.Slice(r.Items, func(a, b int) bool { return r.Items[a].SKU < r.Items[b].SKU })
		const qr = `INSERT INTO returns (return_id, order_id, status, reason, amount_cents, currency) VALUES ($1, $2, $3, $4, $5, $6)
			RETURNING created_at`
		if err := tx.QueryRow(ctx, qr, r.ReturnID, orderID, r.Status, reason, r.AmountCents, r.Currency).Scan(&r.CreatedAt); err != nil {
			return fmt.Errorf("insert return: %w", err)
		}
		for _, it := range r.Items {
			const qi = `INSERT INTO return_items (return_id, sku, quantity, unit_price_cents) VALUES ($1, $2, $3, $4)`
			if _, err := tx.Exec(ctx, qi, r.ReturnID, it.SKU, it.Quantity, it.UnitPriceCents); err != nil {
				return fmt.Errorf("insert return item: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return Return{}, err
	}
	return r, nil
}

// Return reads a return; ErrNoSuchReturn when there is none.
func (s Store) Return(ctx context.Context, id string) (Return, error) {
	list, err := load(s.DB.Query(ctx, qReturnByID, id))
	if err != nil {
		return Return{}, err
	}
	if len(list) == 0 {
		return Return{}, ErrNoSuchReturn
	}
	return list[0], nil
}

// OrderReturns reads an order's returns, oldest first, and what has been
// refunded on the order in all (payment_transactions' refunds).
func (s Store) OrderReturns(ctx context.Context, orderID string) ([]Return, int64, error) {
	list, err := load(s.DB.Query(ctx, qReturnsOfOrder, orderID))
	if err != nil {
		return nil, 0, err
	}
	var refunded int64
	const q = `SELECT coalesce(sum(amount_cents), 0)::bigint FROM payment_transactions WHERE order_id = $1 AND kind = 'refund'`
	if err := s.DB.QueryRow(ctx, q, orderID).Scan(&refunded); err != nil {
		return nil, 0, fmt.Errorf("refunds of %s: %w", orderID, err)
	}
	return list, refunded, nil
}

// The returns with their lines, by return or by order, oldest first.
const (
	qReturns = `SELECT r.return_id::text, r.order_id::text, r.status, r.reason, r.amount_cents, r.currency,
			r.created_at, r.received_at, r.refunded_at,
			array_agg(i.sku ORDER BY i.sku), array_agg(i.quantity ORDER BY i.sku), array_agg(i.unit_price_cents ORDER BY i.sku)
		FROM returns r JOIN return_items i USING (return_id) WHERE `
	qReturnsEnd     = ` GROUP BY r.return_id ORDER BY r.created_at, r.return_id`
	qReturnByID     = qReturns + `r.return_id = $1` + qReturnsEnd
	qReturnsOfOrder = qReturns + `r.order_id = $1` + qReturnsEnd
)

// load collects the returns of a qReturnByID or qReturnsOfOrder query.
func load(rows pgx.Rows, err error) ([]Return, error) {
	if err != nil {
		return nil, fmt.Errorf("load returns: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Return, error) {
		var r Return
		var skus []string
		var qtys []int32
		var prices []int64
		err := row.Scan(&r.ReturnID, &r.OrderID, &r.Status, &r.Reason, &r.AmountCents, &r.Currency, &r.CreatedAt, &r.ReceivedAt, &r.RefundedAt,
			&skus, &qtys, &prices)
		for i := range skus {
			r.Items = append(r.Items, Item{SKU: skus[i], Quantity: int(qtys[i]), UnitPriceCents: prices[i]})
		}
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("load returns: %w", err)
	}
	return list, nil
}

// Activities receive returns and record their refunds.
type Activities struct {
	DB    *pgxpool.Pool
	Cache *redis.Client
}

// ReturnRef names a return of an order.
type ReturnRef struct {
	ReturnID string `json:"return_id"`
	OrderID  string `json:"order_id"`
}

// ReceiveResult is the amount to refund for a received return.
type ReceiveResult struct {
	AmountCents int64 `json:"amount_cents"`
}

// ReceiveReturn marks a requested return received and puts its units back on
// the default warehouse's shelf (a "return" event each), in one
// transaction. A retry finds it received and moves nothing; a return that
// does not exist is a non-retryable InvalidOrder.
func (a *Activities) ReceiveReturn(ctx context.Context, in ReturnRef) (ReceiveResult, error) {
	var res ReceiveResult
	_, err := activities.Commit(ctx, a.DB, a.Cache, in.OrderID, func(tx pgx.Tx) ([]orderflow.Item, error) {
		list, err := load(tx.Query(ctx, qReturnByID, in.ReturnID))
		if err != nil {
			return nil, err
		}
		if len(list) == 0 || list[0].OrderID != in.OrderID {
			return nil, activities.Business(orderflow.InvalidOrder, "no return "+in.ReturnID+" of order "+in.OrderID)
		}
		r := list[0]
		res.AmountCents = r.AmountCents
		tag, err := tx.Exec(ctx, `UPDATE returns SET status = 'received', received_at = now() WHERE return_id = $1 AND status = 'requested'`, in.ReturnID)
		if err != nil {
			return nil, fmt.Errorf("receive return: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return nil, nil
		}
		var moved []orderflow.Item
		for _, it := range r.Items {
			if err := catalog.Restock(ctx, tx, in.OrderID, it.SKU, "", "return", it.Quantity); err != nil {
				return nil, err
			}
			moved = append(moved, orderflow.Item{SKU: it.SKU, Quantity: it.Quantity})
		}
		return moved, nil
	})
	if err != nil {
		return ReceiveResult{}, activities.Wrap(err, "receive return %s", in.ReturnID)
	}
	return res, nil
}

// MarkReturnRefunded records that a received return's refund went through and
// queues the customer's refund message; repeating it is a no-op.
func (a *Activities) MarkReturnRefunded(ctx context.Context, in ReturnRef) error {
	_, err := activities.Commit(ctx, a.DB, a.Cache, in.OrderID, func(tx pgx.Tx) ([]orderflow.Item, error) {
		tag, err := tx.Exec(ctx, `UPDATE returns SET status = 'refunded', refunded_at = now() WHERE return_id = $1 AND status = 'received'`, in.ReturnID)
		if err != nil || tag.RowsAffected() == 0 {
			return nil, err
		}
		// One refund message per order: the outbox keeps one per kind.
		return nil, notify.Enqueue(ctx, tx, in.OrderID, notify.OrderRefunded, "Your return was refunded")
	})
	if err != nil {
		return activities.Wrap(err, "mark return %s refunded", in.ReturnID)
	}
	return nil
}
