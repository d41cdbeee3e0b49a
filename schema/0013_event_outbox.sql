-- +goose Up
-- The event outbox: business events on their way to NATS JetStream
-- (activities/events, docs/events.md). A row is written in the transaction
-- of the change it announces; the region's relay publishes pending rows in
-- id order with Nats-Msg-Id = id, an order's events one after another.
--   key        names the state change: one event per change however often
--              its writer retries
--   partition  the order id, or for an event of no order a key of its own:
--              events of one partition are published in id order, each
--              after the one before it was acknowledged
--   region     the order's region, whose relay publishes it ('' for events
--              of no order: the relays' shared scope)
CREATE TABLE event_outbox (
    id           bigserial PRIMARY KEY,
    type         text NOT NULL,
    version      integer NOT NULL DEFAULT 1,
    key          text NOT NULL UNIQUE,
    order_id     uuid,
    partition    text NOT NULL,
    region       text NOT NULL DEFAULT '',
    payload      jsonb NOT NULL,
    occurred_at  timestamptz NOT NULL DEFAULT now(),
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'published')),
    attempts     integer NOT NULL DEFAULT 0,
    published_at timestamptz,
    last_error   text
);
CREATE INDEX event_outbox_pending ON event_outbox (region, id) WHERE status = 'pending';

-- Events of the changes the database already logs, written by the log's own
-- insert: an AFTER INSERT trigger fires only for a row really inserted, so
-- a step that retries (and whose log insert does nothing on conflict) adds
-- no second event, and no step's code or round trips change.

-- order_status_history: order.created (PENDING), order.confirmed,
-- order.failed, order.cancelled. Fulfillment announces each shipment that
-- leaves (order.shipped) and the delivered order through events.Enqueue.
-- +goose StatementBegin
CREATE FUNCTION event_outbox_order_status() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    t text := CASE NEW.status WHEN 'PENDING' THEN 'order.created' WHEN 'CONFIRMED' THEN 'order.confirmed'
        WHEN 'FAILED' THEN 'order.failed' WHEN 'CANCELLED' THEN 'order.cancelled' END;
    o record;
BEGIN
    IF t IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT region, customer_id, total_cents, currency, synthetic INTO o FROM orders WHERE order_id = NEW.order_id;
    INSERT INTO event_outbox (type, key, order_id, partition, region, occurred_at, payload)
    VALUES (t, t || ':' || NEW.order_id, NEW.order_id, NEW.order_id::text, coalesce(o.region, ''), NEW.at,
        jsonb_build_object('order_id', NEW.order_id, 'status', NEW.status, 'customer_id', o.customer_id,
            'total_cents', o.total_cents, 'currency', o.currency, 'synthetic', coalesce(o.synthetic, false))
        || CASE WHEN NEW.reason IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('reason', NEW.reason) END
        || CASE WHEN t <> 'order.created' THEN '{}'::jsonb ELSE jsonb_build_object('items',
            (SELECT coalesce(jsonb_agg(jsonb_build_object('sku', sku, 'quantity', quantity, 'unit_price_cents', unit_price_cents)
                ORDER BY line), '[]'::jsonb) FROM order_items WHERE order_id = NEW.order_id)) END)
    ON CONFLICT (key) DO NOTHING;
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER event_outbox AFTER INSERT ON order_status_history
    FOR EACH ROW EXECUTE FUNCTION event_outbox_order_status();

-- payment_transactions: payment.processed (a charge), payment.refunded.
-- Declines and errors are no change of state.
-- +goose StatementBegin
CREATE FUNCTION event_outbox_payment() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    t text := CASE NEW.kind WHEN 'charge' THEN 'payment.processed' ELSE 'payment.refunded' END;
BEGIN
    INSERT INTO event_outbox (type, key, order_id, partition, region, occurred_at, payload)
    SELECT t, t || ':' || NEW.idempotency_key, NEW.order_id, NEW.order_id::text, coalesce(o.region, ''), NEW.created_at,
        jsonb_build_object('order_id', NEW.order_id, 'provider', NEW.provider, 'reference', coalesce(NEW.provider_ref, ''),
            'amount_cents', NEW.amount_cents, 'currency', NEW.currency, 'idempotency_key', NEW.idempotency_key,
            'synthetic', coalesce(o.synthetic, false))
    FROM (SELECT 1) one LEFT JOIN orders o ON o.order_id = NEW.order_id
    ON CONFLICT (key) DO NOTHING;
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER event_outbox AFTER INSERT ON payment_transactions
    FOR EACH ROW WHEN (NEW.kind IN ('charge', 'refund')) EXECUTE FUNCTION event_outbox_payment();

-- inventory_events: inventory.updated, one per stock movement (reserve,
-- release, commit, revert, an operator's restock). A movement of an order is
-- ordered with the order's other events; a restock with the SKU's.
-- +goose StatementBegin
CREATE FUNCTION event_outbox_inventory() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO event_outbox (type, key, order_id, partition, region, occurred_at, payload)
    SELECT 'inventory.updated', 'inventory.updated:' || NEW.id, NEW.order_id, coalesce(NEW.order_id::text, 'sku:' || NEW.sku),
        coalesce((SELECT region FROM orders WHERE order_id = NEW.order_id), ''), NEW.created_at,
        jsonb_build_object('sku', NEW.sku, 'reason', NEW.reason, 'delta_on_hand', NEW.delta_on_hand,
            'delta_reserved', NEW.delta_reserved)
        || CASE WHEN NEW.order_id IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('order_id', NEW.order_id) END
    ON CONFLICT (key) DO NOTHING;
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER event_outbox AFTER INSERT ON inventory_events
    FOR EACH ROW EXECUTE FUNCTION event_outbox_inventory();

-- +goose Down
DROP TRIGGER event_outbox ON inventory_events;
DROP TRIGGER event_outbox ON payment_transactions;
DROP TRIGGER event_outbox ON order_status_history;
DROP FUNCTION event_outbox_inventory(), event_outbox_payment(), event_outbox_order_status();
DROP TABLE event_outbox;
