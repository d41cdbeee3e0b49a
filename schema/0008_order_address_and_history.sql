-- +goose Up
-- The order's shipping address, sealed like the e-mail (internal/pii:
-- AES-256-GCM, the key id inside the value, bound to the order id and the
-- field): JSON of orderflow.Address. NULL for orders placed before addresses
-- were taken, for the deep health check's synthetic orders, and once an
-- admin erased the customer's personal data.
ALTER TABLE orders ADD COLUMN shipping_address_enc bytea;

-- A customer's order history, newest first, paged by (created_at, order_id):
-- one index for the whole history and one for a status filter. The first
-- replaces orders_customer, of which it is an extension. IF NOT EXISTS lets
-- an operator build them beforehand with CREATE INDEX CONCURRENTLY on a
-- large table, so the migration then takes no long lock.
CREATE INDEX IF NOT EXISTS orders_customer_history ON orders (customer_id, created_at DESC, order_id DESC);
CREATE INDEX IF NOT EXISTS orders_customer_status_history ON orders (customer_id, status, created_at DESC, order_id DESC);
DROP INDEX IF EXISTS orders_customer;

-- +goose Down
CREATE INDEX IF NOT EXISTS orders_customer ON orders (customer_id, created_at DESC);
DROP INDEX IF EXISTS orders_customer_status_history;
DROP INDEX IF EXISTS orders_customer_history;
ALTER TABLE orders DROP COLUMN shipping_address_enc;
