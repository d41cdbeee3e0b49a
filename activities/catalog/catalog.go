// Package catalog is the area of products, their prices and their stock:
// the store that owns the products, inventory, reservations and
// inventory_events tables, and the Inventory activities that hold and
// release an order's stock. Stock moves only through conditional updates
// that keep 0 <= reserved <= on_hand, each appended to inventory_events.
package catalog

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities"
)

// Priced is items priced from a catalog.
type Priced struct {
	// Lines are the items the catalog knows, each at its product's price,
	// in the items' order; TotalCents is their total.
	Lines      []orderflow.Line
	TotalCents int64
	// Currency is the first known line's.
	Currency string
	// Unknown are the indexes of the items whose SKU the catalog lacks.
	Unknown []int
	// MixedAt is the index of the first known item whose currency is not
	// Currency, -1 when every line has it.
	MixedAt int
}

// PriceFrom prices items at the prices of known, the catalog's products by
// SKU. It refuses nothing: the caller decides what an unknown SKU or a mix
// of currencies means (the gateway answers 422 to the first and lets the
// saga refuse the second; Price fails on either).
func PriceFrom(known map[string]Product, items []orderflow.Item) Priced {
	p := Priced{MixedAt: -1}
	for i, it := range items {
		prod, ok := known[it.SKU]
		if !ok {
			p.Unknown = append(p.Unknown, i)
			continue
		}
		if p.Currency == "" {
			p.Currency = prod.Currency
		} else if p.Currency != prod.Currency && p.MixedAt < 0 {
			p.MixedAt = i
		}
		p.Lines = append(p.Lines, orderflow.Line{SKU: it.SKU, Quantity: it.Quantity, UnitPriceCents: prod.PriceCents})
		p.TotalCents += prod.PriceCents * int64(it.Quantity)
	}
	return p
}

// Price prices items from the catalog inside tx: one line per item at the
// product's price, their total and their one currency. An unknown SKU or a
// mix of currencies is a non-retryable InvalidOrder, whichever the items
// name first.
func Price(ctx context.Context, tx pgx.Tx, items []orderflow.Item) (lines []orderflow.Line, total int64, currency string, err error) {
	skus := make([]string, len(items))
	for i, it := range items {
		skus[i] = it.SKU
	}
	known, err := products(ctx, tx, skus)
	if err != nil {
		return nil, 0, "", err
	}
	p := PriceFrom(known, items)
	if len(p.Unknown) > 0 && (p.MixedAt < 0 || p.Unknown[0] < p.MixedAt) {
		sku := items[p.Unknown[0]].SKU
		return nil, 0, "", activities.Business(orderflow.InvalidOrder, "unknown sku "+sku, sku)
	}
	if p.MixedAt >= 0 {
		return nil, 0, "", activities.Business(orderflow.InvalidOrder, "order mixes currencies", p.Currency, known[items[p.MixedAt].SKU].Currency)
	}
	return p.Lines, p.TotalCents, p.Currency, nil
}
