// Package catalog is the area of products, their prices and their stock:
// the store that owns the products, inventory, reservations and
// inventory_events tables, and the Inventory activities that hold and
// release an order's stock. Stock moves only through conditional updates
// that keep 0 <= reserved <= on_hand, each appended to inventory_events.
package catalog

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities"
)

// Price prices items from the catalog inside tx: one line per item at the
// product's price, their total and their one currency. An unknown SKU or a
// mix of currencies is a non-retryable InvalidOrder.
func Price(ctx context.Context, tx pgx.Tx, items []orderflow.Item) (lines []orderflow.Line, total int64, currency string, err error) {
	skus := make([]string, len(items))
	for i, it := range items {
		skus[i] = it.SKU
	}
	type product struct {
		price    int64
		currency string
	}
	rows, err := tx.Query(ctx, `SELECT sku, price_cents, currency FROM products WHERE sku = ANY($1)`, skus)
	if err != nil {
		return nil, 0, "", fmt.Errorf("load prices: %w", err)
	}
	known := map[string]product{}
	for rows.Next() {
		var sku string
		var p product
		if err := rows.Scan(&sku, &p.price, &p.currency); err != nil {
			return nil, 0, "", fmt.Errorf("load prices: %w", err)
		}
		known[sku] = p
	}
	if err := rows.Err(); err != nil {
		return nil, 0, "", fmt.Errorf("load prices: %w", err)
	}
	for _, it := range items {
		p, ok := known[it.SKU]
		if !ok {
			return nil, 0, "", activities.Business(orderflow.InvalidOrder, "unknown sku "+it.SKU, it.SKU)
		}
		if currency == "" {
			currency = p.currency
		} else if currency != p.currency {
			return nil, 0, "", activities.Business(orderflow.InvalidOrder, "order mixes currencies", currency, p.currency)
		}
		lines = append(lines, orderflow.Line{SKU: it.SKU, Quantity: it.Quantity, UnitPriceCents: p.price})
		total += p.price * int64(it.Quantity)
	}
	return lines, total, currency, nil
}
