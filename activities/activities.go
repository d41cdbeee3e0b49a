// Package activities holds what the areas below it share: the only orderflow
// code that touches the world lives in one package per business area
// (catalog, orders, payment, notify), each a struct holding its clients whose
// methods are the activities the sagas call, and each with the store that
// owns its SQL. Every write is idempotent under retry. This package gives
// them one way to raise a business failure, to wrap an infrastructure one,
// to finish bookkeeping on a cancelled context and to drop the cache entries
// a committed write made stale.
package activities

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/internal/cache"
	"github.com/orderflow/orderflow/internal/db"
)

// Wrap prefixes an error with context, except a business error, which must
// reach the workflow as the ApplicationError it is so its type and
// non-retryable flag survive.
func Wrap(err error, format string, args ...any) error {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}

// Business is a non-retryable business failure of the given kind; the saga
// branches on the kind (orderflow.KindOf).
func Business(kind orderflow.Kind, msg string, details ...any) error {
	return temporal.NewNonRetryableApplicationError(msg, string(kind), nil, details...)
}

// Detached gives a bounded context for bookkeeping writes that must happen
// even when the activity's own context has just been cancelled.
func Detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), db.StatementTimeout)
}

// Invalidate deletes, in one bounded DEL issued after the write committed,
// the inventory counts of the SKUs whose stock moved and, when orderID is
// set, the order's cached view, whose status the write changed. A failure is
// only logged: the tiers' TTLs bound what it leaves behind.
func Invalidate(ctx context.Context, c *redis.Client, orderID string, items []orderflow.Item) {
	if c == nil || (len(items) == 0 && orderID == "") {
		return
	}
	keys := make([]string, 0, len(items)+1)
	if orderID != "" {
		keys = append(keys, cache.OrderKey(orderID))
	}
	for _, it := range items {
		keys = append(keys, cache.InventoryKey(it.SKU))
	}
	cache.Del(ctx, c, activity.GetLogger(ctx), keys...)
}

// Commit runs fn in one transaction (db.InTx) and, once it has committed,
// drops what the write made stale: the cached view of orderID when it is
// set, and the inventory counts of the SKUs whose stock fn reports moved
// (Invalidate). It returns what moved; on an error nothing is dropped and
// the error is returned as fn or the commit gave it.
func Commit(ctx context.Context, pool *pgxpool.Pool, c *redis.Client, orderID string,
	fn func(tx pgx.Tx) ([]orderflow.Item, error)) ([]orderflow.Item, error) {
	var moved []orderflow.Item
	err := db.InTx(ctx, pool, func(tx pgx.Tx) error {
		var err error
		moved, err = fn(tx)
		return err
	})
	if err != nil {
		return nil, err
	}
	Invalidate(ctx, c, orderID, moved)
	return moved, nil
}

// Querier is what a store's reads need of pgx: a pool, a connection and a
// transaction all have it, so one query serves the gateway (on the pool)
// and an activity (inside its transaction).
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}
