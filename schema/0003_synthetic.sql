-- +goose Up
-- Synthetic orders: GET /health/deep places a real order through the saga on
-- a reserved SKU. The SKU is marked synthetic (the public API neither lists
-- nor sells it, and the deep check refuses to order a SKU not marked so); an
-- order that names a synthetic SKU is marked synthetic when it is written, so
-- reports and the bench leave it out. The deep check puts back the stock
-- such an order took, so the seeded stock never runs down.
ALTER TABLE products ADD COLUMN synthetic boolean NOT NULL DEFAULT false;
ALTER TABLE orders ADD COLUMN synthetic boolean NOT NULL DEFAULT false;

-- The default of HEALTH_SYNTHETIC_SKU. An existing product of that name is
-- left alone (and unmarked, so the deep check refuses to use it).
INSERT INTO products (sku, name, price_cents, synthetic)
VALUES ('SYNTHETIC-HEALTH', 'synthetic health-check item (not for sale)', 100, true)
ON CONFLICT (sku) DO NOTHING;
WITH stock AS (
    INSERT INTO inventory (sku, on_hand)
    SELECT sku, 1000 FROM products WHERE sku = 'SYNTHETIC-HEALTH' AND synthetic
    ON CONFLICT (sku) DO NOTHING
    RETURNING sku, on_hand)
INSERT INTO inventory_events (sku, delta_on_hand, delta_reserved, reason)
SELECT sku, on_hand, 0, 'restock' FROM stock;

-- +goose Down
ALTER TABLE orders DROP COLUMN synthetic;
ALTER TABLE products DROP COLUMN synthetic;
