-- +goose Up
-- Authorize, then capture (docs/payments.md). An order's payment may be an
-- authorization: money held on the card (payments.kind 'authorization',
-- status 'authorized') until shipments capture it, a void releases it or it
-- expires at expires_at; renewal counts the re-authorizations of its
-- uncaptured remainder (0: the order's first). A final capture closes it
-- ('captured'), a void 'voided', a full refund 'refunded'.
--   payments.refunded_cents  what was refunded of the payment, so a partial
--                            refund is refused beyond what was captured
--   payment_captures         one row per shipment captured: never more
--                            than the authorization holds
ALTER TABLE payments DROP CONSTRAINT payments_status_check;
ALTER TABLE payments ADD CONSTRAINT payments_status_check
    CHECK (status IN ('charged', 'refunded', 'authorized', 'captured', 'voided', 'expired'));
ALTER TABLE payments
    ADD COLUMN kind           text NOT NULL DEFAULT 'charge' CHECK (kind IN ('charge', 'authorization')),
    ADD COLUMN renewal        integer NOT NULL DEFAULT 0,
    ADD COLUMN expires_at     timestamptz,
    ADD COLUMN refunded_cents bigint NOT NULL DEFAULT 0;
-- What was refunded before: all of a refunded charge; of an open one, the
-- order's partial refunds (an order has one open charge).
UPDATE payments SET refunded_cents = amount_cents WHERE status = 'refunded';
UPDATE payments p SET refunded_cents = t.refunded
    FROM (SELECT order_id, sum(amount_cents) AS refunded FROM payment_transactions
          WHERE kind = 'refund' AND detail = 'partial' GROUP BY order_id) t
    WHERE p.order_id = t.order_id AND p.status = 'charged';
ALTER TABLE payments ADD CONSTRAINT payments_refunded_within CHECK (refunded_cents BETWEEN 0 AND amount_cents);

ALTER TABLE payment_transactions DROP CONSTRAINT payment_transactions_kind_check;
ALTER TABLE payment_transactions ADD CONSTRAINT payment_transactions_kind_check
    CHECK (kind IN ('charge', 'refund', 'decline', 'error', 'authorization', 'capture', 'void'));

CREATE TABLE payment_captures (
    idempotency_key text PRIMARY KEY,
    order_id        uuid NOT NULL,
    shipment_id     text NOT NULL,
    payment_key     text NOT NULL REFERENCES payments (idempotency_key),
    provider        text NOT NULL,
    capture_id      text NOT NULL,
    amount_cents    bigint NOT NULL CHECK (amount_cents >= 0),
    released_cents  bigint NOT NULL DEFAULT 0 CHECK (released_cents >= 0),
    final           boolean NOT NULL,
    currency        text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (order_id, shipment_id)
);
CREATE INDEX payment_captures_payment ON payment_captures (payment_key);

-- +goose Down
DROP TABLE payment_captures;
ALTER TABLE payment_transactions DROP CONSTRAINT payment_transactions_kind_check;
ALTER TABLE payment_transactions ADD CONSTRAINT payment_transactions_kind_check
    CHECK (kind IN ('charge', 'refund', 'decline', 'error'));
ALTER TABLE payments DROP CONSTRAINT payments_refunded_within;
ALTER TABLE payments DROP COLUMN refunded_cents, DROP COLUMN expires_at, DROP COLUMN renewal, DROP COLUMN kind;
ALTER TABLE payments DROP CONSTRAINT payments_status_check;
ALTER TABLE payments ADD CONSTRAINT payments_status_check CHECK (status IN ('charged', 'refunded'));
