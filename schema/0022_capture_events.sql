-- +goose Up
-- A capture takes the customer's money as a charge did (authorize, then
-- capture: docs/payments.md), so it is a payment.processed event, one per
-- capture (its idempotency key), with the captured amount. An authorization
-- and a void move no money: no event, as declines and errors.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION event_outbox_payment() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    t text := CASE WHEN NEW.kind IN ('charge', 'capture') THEN 'payment.processed' ELSE 'payment.refunded' END;
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
DROP TRIGGER event_outbox ON payment_transactions;
CREATE TRIGGER event_outbox AFTER INSERT ON payment_transactions
    FOR EACH ROW WHEN (NEW.kind IN ('charge', 'capture', 'refund')) EXECUTE FUNCTION event_outbox_payment();

-- +goose Down
DROP TRIGGER event_outbox ON payment_transactions;
CREATE TRIGGER event_outbox AFTER INSERT ON payment_transactions
    FOR EACH ROW WHEN (NEW.kind IN ('charge', 'refund')) EXECUTE FUNCTION event_outbox_payment();
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION event_outbox_payment() RETURNS trigger LANGUAGE plpgsql AS $$
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
