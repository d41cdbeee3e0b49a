//go:build chaoshooks

package fulfillment

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// This file is compiled only into the binary `make chaos` builds for its
// stack (go build -tags chaoshooks); the product binary carries the no-op in
// chaoshook_off.go. It lets the chaos run make a step after the charge fail
// for good for the orders it chooses, so that compensating refunds run while
// its other faults strike.

// chaosCustomerPrefix marks the orders a hook fails: a customer id
// "chaoshook-<step>-..." makes that step fail on every attempt.
const chaosCustomerPrefix = "chaoshook-"

// chaosFault fails step ("confirm": before the order is confirmed, "notify":
// before its confirmation mail is queued) for an order whose customer id
// names that step. The error is retryable, as an infrastructure failure is:
// the saga retries it until its retry policy gives up, then compensates.
func chaosFault(ctx context.Context, tx pgx.Tx, orderID, step string) error {
	var customer string
	if err := tx.QueryRow(ctx, `SELECT customer_id FROM orders WHERE order_id = $1`, orderID).Scan(&customer); err != nil {
		return fmt.Errorf("chaos hook %s: read order %s: %w", step, orderID, err)
	}
	if strings.HasPrefix(customer, chaosCustomerPrefix+step+"-") {
		return fmt.Errorf("chaos hook: %s of order %s fails for good", step, orderID)
	}
	return nil
}
