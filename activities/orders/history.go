package orders

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orderflow/orderflow/activities"
)

// Position is where a page of history ends: the last order's creation time
// and id, the keys the history is ordered by (newest first, then by id).
type Position struct {
	CreatedAt time.Time
	OrderID   string
}

// HistoryQuery asks for a page of one customer's orders.
type HistoryQuery struct {
	CustomerID string
	// Status keeps only orders with this status; "" keeps all.
	Status string
	// After is the previous page's end; nil for the first page.
	After *Position
	// Limit is the page's size, 1 or more.
	Limit int
}

// HistoryPage is a page of history. Next is where the next page starts, nil
// when this one is the last.
type HistoryPage struct {
	Orders []Summary
	Next   *Position
}

// firstPage stands before every order: no order is created at infinity,
// and none has the greatest uuid.
var firstPage = Position{CreatedAt: time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), OrderID: "ffffffff-ffff-ffff-ffff-ffffffffffff"}

// The history, newest first, from a position: both statements walk an index
// (orders_customer_history, orders_customer_status_history) from the
// position without sorting, so a page costs its own rows whatever the
// customer's history holds. Synthetic orders (the deep health check's) are
// left out. ORDER BY names the table's columns: the bare order_id would be
// the text of the select list, sorted as text by a Sort node.
const (
	qHistory = `SELECT order_id::text, customer_id, status, total_cents, currency, failure_reason, created_at, updated_at
		FROM orders WHERE customer_id = $1 AND (created_at, order_id) < ($2, $3::uuid) AND NOT synthetic
		ORDER BY orders.created_at DESC, orders.order_id DESC LIMIT $4`
	qHistoryStatus = `SELECT order_id::text, customer_id, status, total_cents, currency, failure_reason, created_at, updated_at
		FROM orders WHERE customer_id = $1 AND status = $5 AND (created_at, order_id) < ($2, $3::uuid) AND NOT synthetic
		ORDER BY orders.created_at DESC, orders.order_id DESC LIMIT $4`
)

// History reads a page of a customer's orders, newest first. It reads one
// row past the page to tell whether another page follows.
func (s Store) History(ctx context.Context, q HistoryQuery) (HistoryPage, error) {
	if q.Limit < 1 {
		return HistoryPage{}, fmt.Errorf("order history: limit %d", q.Limit)
	}
	from := firstPage
	if q.After != nil {
		from = *q.After
	}
	var rows pgx.Rows
	var err error
	if q.Status == "" {
		rows, err = s.DB.Query(ctx, qHistory, q.CustomerID, from.CreatedAt, from.OrderID, q.Limit+1)
	} else {
		rows, err = s.DB.Query(ctx, qHistoryStatus, q.CustomerID, from.CreatedAt, from.OrderID, q.Limit+1, q.Status)
	}
	if err != nil {
		return HistoryPage{}, fmt.Errorf("order history of %s: %w", q.CustomerID, err)
	}
	list, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Summary])
	if err != nil {
		return HistoryPage{}, fmt.Errorf("order history of %s: %w", q.CustomerID, err)
	}
	var page HistoryPage
	var last *Summary
	if page.Orders, last = activities.Page(list, q.Limit); last != nil {
		page.Next = &Position{CreatedAt: last.CreatedAt, OrderID: last.OrderID}
	}
	return page, nil
}
