package chaos

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/client"
)

// CheckState checks the run's invariants over the state another stack
// reached: the orders ids (each acknowledged with a 2xx, none re-sent) and
// the SKUs of stock (each with the quantity on hand it was created with),
// read from db and tc. The restore drill (devtools/backup) checks a
// restored stack with them.
func CheckState(ctx context.Context, db *pgxpool.Pool, tc client.Client, ids []string, stock map[string]int) ([]Invariant, error) {
	r := &Runner{db: db, temporal: tc}
	for _, id := range ids {
		r.placed = append(r.placed, &placed{orderID: id})
	}
	var skus []sku
	for s, n := range stock {
		skus = append(skus, sku{SKU: s, OnHand: n})
	}
	return r.check(ctx, skus)
}
