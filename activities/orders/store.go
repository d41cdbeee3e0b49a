package orders

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities"
)

// Store is the orders area's SQL for the gateway: the acceptance records
// (idempotency keys), orders with their lines and status history, and the
// erasure of a customer's personal data. The activities read an order's
// lines through the same query.
type Store struct {
	DB *pgxpool.Pool
	// AcceptCommit is the synchronous_commit level an order's acceptance
	// record is committed at (ClaimKey): remote_apply or on make it wait
	// for the synchronous standby in the other region (docs/regions.md);
	// empty keeps the server's default.
	AcceptCommit string
}

// Summary is an order without its lines and status changes: what the
// order history lists.
type Summary struct {
	OrderID       string
	CustomerID    string
	Status        string
	TotalCents    int64
	Currency      string
	FailureReason *string
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Order is an order's record: the order, its lines in line order and, when
// read through Store.Order, its status changes in the order they happened.
type Order struct {
	Summary
	Lines   []orderflow.Line
	History []Change
}

// Change is one entry of an order's status history.
type Change struct {
	Status string
	At     time.Time
}

// loadOrder reads an order and its lines, nil when there is no such order.
func loadOrder(ctx context.Context, q activities.Querier, id string) (*Order, error) {
	o := Order{Summary: Summary{OrderID: id}}
	const qOrder = `SELECT customer_id, status, total_cents, currency, failure_reason, created_at, updated_at FROM orders WHERE order_id = $1`
	err := q.QueryRow(ctx, qOrder, id).Scan(&o.CustomerID, &o.Status, &o.TotalCents, &o.Currency, &o.FailureReason, &o.CreatedAt, &o.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load order %s: %w", id, err)
	}
	rows, err := q.Query(ctx, `SELECT sku, quantity, unit_price_cents FROM order_items WHERE order_id = $1 ORDER BY line`, id)
	if err != nil {
		return nil, fmt.Errorf("load lines of %s: %w", id, err)
	}
	if o.Lines, err = pgx.CollectRows(rows, pgx.RowToStructByPos[orderflow.Line]); err != nil {
		return nil, fmt.Errorf("load lines of %s: %w", id, err)
	}
	return &o, nil
}

// Order reads an order with its lines and status history; nil, nil when
// there is no such order (its saga may not have written it yet).
func (s Store) Order(ctx context.Context, id string) (*Order, error) {
	o, err := loadOrder(ctx, s.DB, id)
	if err != nil || o == nil {
		return o, err
	}
	rows, err := s.DB.Query(ctx, `SELECT status, at FROM order_status_history WHERE order_id = $1 ORDER BY at, id`, id)
	if err != nil {
		return nil, fmt.Errorf("load history of %s: %w", id, err)
	}
	if o.History, err = pgx.CollectRows(rows, pgx.RowToStructByPos[Change]); err != nil {
		return nil, fmt.Errorf("load history of %s: %w", id, err)
	}
	return o, nil
}

// Acceptance is the acceptance record kept under an idempotency key: the
// order id the key was claimed with, the fingerprint of the request and the
// answer it was given.
type Acceptance struct {
	OrderID     string
	RequestHash []byte
	Status      int
	Body        []byte
	// Started says the saga has written the order (read by LoadKey only).
	Started bool
	// Saga is the saga's start sealed by SealStart, kept for the re-drive
	// after a region's loss (written by ClaimKey only; nil: none).
	Saga []byte
}

// ClaimKey records a under the key, scoped by (customer, operation, key),
// for ttl. It reports false, writing nothing, when the key is already held
// and not expired; an expired key is taken over as if it were new.
//
// The record is committed in a transaction of its own at AcceptCommit
// (durably), so true or false with a nil error means the record is durable
// where the server's synchronous_standby_names asks: a held key's row is
// rewritten in the same way, so a replay too is answered only once the first
// request's record is (its commit is behind the first one's in the WAL). An
// error (ctx's deadline while the standby does not answer) means the record
// may exist locally but is not known to be durable.
func (s Store) ClaimKey(ctx context.Context, customerID, operation, key string, a Acceptance, ttl time.Duration) (bool, error) {
	const claim = `INSERT INTO idempotency_keys
			(customer_id, operation, idempotency_key, request_hash, order_id, response_status, response_body, expires_at, saga)
		VALUES ($1, $2, $3, $4, $5, $6, $7, now() + $8::interval, $9)
		ON CONFLICT (customer_id, operation, idempotency_key) DO UPDATE
			SET request_hash = EXCLUDED.request_hash, order_id = EXCLUDED.order_id, response_status = EXCLUDED.response_status,
			    response_body = EXCLUDED.response_body, created_at = now(), expires_at = EXCLUDED.expires_at, saga = EXCLUDED.saga,
			    start_deferred_at = NULL
			WHERE idempotency_keys.expires_at < now()
		RETURNING order_id::text`
	const reconfirm = `UPDATE idempotency_keys SET expires_at = expires_at
		WHERE customer_id = $1 AND operation = $2 AND idempotency_key = $3`
	claimed := false
	err := s.durably(ctx, func(tx pgx.Tx) error {
		var got string
		err := tx.QueryRow(ctx, claim, customerID, operation, key, a.RequestHash, a.OrderID, a.Status, a.Body, ttl.String(), a.Saga).Scan(&got)
		if errors.Is(err, pgx.ErrNoRows) {
			_, err = tx.Exec(ctx, reconfirm, customerID, operation, key)
			return err
		}
		claimed = err == nil
		return err
	})
	if err != nil {
		return false, fmt.Errorf("claim idempotency key: %w", err)
	}
	return claimed, nil
}

// LoadKey reads the acceptance record held under the key, with whether its
// order has been written.
func (s Store) LoadKey(ctx context.Context, customerID, operation, key string) (Acceptance, error) {
	const q = `SELECT k.order_id::text, k.request_hash, k.response_status, k.response_body,
			EXISTS (SELECT 1 FROM orders o WHERE o.order_id = k.order_id)
		FROM idempotency_keys k WHERE k.customer_id = $1 AND k.operation = $2 AND k.idempotency_key = $3`
	var a Acceptance
	if err := s.DB.QueryRow(ctx, q, customerID, operation, key).Scan(&a.OrderID, &a.RequestHash, &a.Status, &a.Body, &a.Started); err != nil {
		return Acceptance{}, fmt.Errorf("load idempotency key: %w", err)
	}
	return a, nil
}
