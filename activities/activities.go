// Package activities holds the only orderflow code that touches the world:
// PostgreSQL, Redis and payment providers. Each context (orders, inventory,
// payment, notification) is a struct holding its clients; its methods are the
// activities the Order saga calls. Every write is idempotent under retry.
package activities

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"go.temporal.io/sdk/temporal"

	"github.com/orderflow/orderflow/internal/db"
)

// Application error types for business failures. They are non-retryable and
// stable: the Order workflow maps them to failure reasons.
const (
	ErrOutOfStock      = "OutOfStock"
	ErrPaymentDeclined = "PaymentDeclined"
	ErrInvalidOrder    = "InvalidOrder"
)

// Item is one line of an order as the client asked for it.
type Item struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

// Line is an order line priced from the catalog.
type Line struct {
	SKU            string `json:"sku"`
	Quantity       int    `json:"quantity"`
	UnitPriceCents int64  `json:"unit_price_cents"`
}

// OrderRef names the order an activity works on.
type OrderRef struct {
	OrderID string `json:"order_id"`
}

// perSKU sums quantities by SKU in SKU order, the lock order every inventory
// transaction uses so that two orders never deadlock on each other's rows.
func perSKU(lines []Line) []Item {
	sum := map[string]int{}
	for _, l := range lines {
		sum[l.SKU] += l.Quantity
	}
	out := make([]Item, 0, len(sum))
	for sku, q := range sum {
		out = append(out, Item{SKU: sku, Quantity: q})
	}
	sort.Slice(out, func(i, j int) bool { return strings.Compare(out[i].SKU, out[j].SKU) < 0 })
	return out
}

// wrap prefixes an error with context, except a business error, which must
// reach the workflow as the ApplicationError it is so its type and
// non-retryable flag survive.
func wrap(err error, format string, args ...any) error {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}

func businessError(kind, msg string, details ...any) error {
	return temporal.NewNonRetryableApplicationError(msg, kind, nil, details...)
}

// detached gives a bounded context for bookkeeping writes that must happen even
// when the activity's own context has just been cancelled.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), db.StatementTimeout)
}
