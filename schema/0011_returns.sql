-- +goose Up
-- Returns (docs/fulfillment.md): a customer sends back delivered goods
-- within the return window; when the operator receives them the units go
-- back on the shelf and the returned lines' amount is refunded, under the
-- key refund-<order>-<return>. status moves requested -> received ->
-- refunded.
CREATE TABLE returns (
    return_id    uuid PRIMARY KEY,
    order_id     uuid NOT NULL REFERENCES orders (order_id),
    status       text NOT NULL CHECK (status IN ('requested', 'received', 'refunded')),
    reason       text NOT NULL DEFAULT '',
    amount_cents bigint NOT NULL CHECK (amount_cents >= 0),
    currency     text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    received_at  timestamptz,
    refunded_at  timestamptz
);
CREATE INDEX returns_order ON returns (order_id, created_at);

CREATE TABLE return_items (
    return_id        uuid NOT NULL REFERENCES returns (return_id),
    sku              text NOT NULL REFERENCES products (sku),
    quantity         integer NOT NULL CHECK (quantity > 0),
    unit_price_cents bigint NOT NULL,
    PRIMARY KEY (return_id, sku)
);

-- +goose Down
DROP TABLE return_items, returns;
