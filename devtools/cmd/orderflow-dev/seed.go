package main

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/orderflow/orderflow/internal/config"
	"github.com/orderflow/orderflow/internal/db"
)

// demoCatalog is what `orderflow seed` loads for a new local stack.
var demoCatalog = []struct {
	sku    string
	name   string
	price  int64
	onHand int
}{
	{"SKU-1", "Espresso beans 1 kg", 2490, 1000},
	{"SKU-2", "Pour-over kettle", 5900, 200},
	{"SKU-3", "Ceramic mug", 1200, 500},
	{"SKU-4", "Paper filters (100)", 450, 2000},
	{"SKU-LIMITED", "Limited-edition grinder", 24900, 3},
	{"SKU-SOLDOUT", "Sold-out tasting box", 3900, 0},
}

// runSeed inserts the demo catalog; products that exist are left as they are,
// so re-running it never resets stock.
func runSeed(ctx context.Context) error {
	v := product()
	url := config.DatabaseURL.Get(v)
	if err := v.Err(); err != nil {
		return err
	}
	pool, err := db.Open(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	n := 0
	err = db.InTx(ctx, pool, func(tx pgx.Tx) error {
		for _, p := range demoCatalog {
			tag, err := tx.Exec(ctx, `INSERT INTO products (sku, name, price_cents) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, p.sku, p.name, p.price)
			if err != nil {
				return fmt.Errorf("seed %s: %w", p.sku, err)
			}
			if tag.RowsAffected() == 0 {
				continue
			}
			n++
			if _, err := tx.Exec(ctx, `INSERT INTO inventory (sku, on_hand) VALUES ($1, $2)`, p.sku, p.onHand); err != nil {
				return fmt.Errorf("seed stock %s: %w", p.sku, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO inventory_events (sku, delta_on_hand, delta_reserved, reason) VALUES ($1, $2, 0, 'restock')`, p.sku, p.onHand); err != nil {
				return fmt.Errorf("seed event %s: %w", p.sku, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Printf("demo catalog: %d products added, %d already there\n", n, len(demoCatalog)-n)
	return nil
}
