-- +goose Up
-- Payment-provider webhooks (api/payment_webhooks.go, activities/payment/pending.go).
--   payment_provider_events  every verified provider event, once per
--                            (provider, event id): a re-sent event is a
--                            duplicate and does nothing
--   payment_pending          a charge the provider answered as pending
--                            (asynchronous success, 3-D Secure): the charge
--                            key and the outcome once the provider's
--                            webhook says it; either may come first
--   payment_disputes         a dispute or chargeback on a charge, once per
--                            dispute id; the order moves to DISPUTED
CREATE TABLE payment_provider_events (
    provider    text NOT NULL,
    event_id    text NOT NULL,
    type        text NOT NULL,
    order_id    uuid,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, event_id)
);

CREATE TABLE payment_pending (
    charge_key   text PRIMARY KEY,
    order_id     uuid NOT NULL,
    provider     text NOT NULL,
    charge_id    text,
    amount_cents bigint NOT NULL DEFAULT 0,
    currency     text NOT NULL DEFAULT '',
    outcome      text CHECK (outcome IN ('succeeded', 'failed')),
    failure_code text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payment_pending_order ON payment_pending (order_id);

CREATE TABLE payment_disputes (
    provider     text NOT NULL,
    dispute_id   text NOT NULL,
    order_id     uuid NOT NULL,
    charge_id    text NOT NULL,
    amount_cents bigint NOT NULL,
    currency     text NOT NULL,
    reason       text NOT NULL DEFAULT '',
    event_id     text NOT NULL,
    opened_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, dispute_id)
);
CREATE INDEX payment_disputes_order ON payment_disputes (order_id);

-- order.disputed: one event per dispute, written by the dispute's own
-- insert (a retried record inserts nothing and writes no second event).
-- +goose StatementBegin
CREATE FUNCTION event_outbox_dispute() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO event_outbox (type, key, order_id, partition, region, occurred_at, payload)
    SELECT 'order.disputed', 'order.disputed:' || NEW.provider || ':' || NEW.dispute_id, NEW.order_id, NEW.order_id::text,
        coalesce(o.region, ''), NEW.opened_at,
        jsonb_build_object('order_id', NEW.order_id, 'status', 'DISPUTED', 'provider', NEW.provider,
            'dispute_id', NEW.dispute_id, 'charge_id', NEW.charge_id, 'amount_cents', NEW.amount_cents,
            'currency', NEW.currency, 'reason', NEW.reason, 'synthetic', coalesce(o.synthetic, false))
    FROM (SELECT 1) one LEFT JOIN orders o ON o.order_id = NEW.order_id
    ON CONFLICT (key) DO NOTHING;
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER event_outbox AFTER INSERT ON payment_disputes
    FOR EACH ROW EXECUTE FUNCTION event_outbox_dispute();

-- +goose Down
DROP TRIGGER event_outbox ON payment_disputes;
DROP FUNCTION event_outbox_dispute();
DROP TABLE payment_disputes;
DROP TABLE payment_pending;
DROP TABLE payment_provider_events;
