-- +goose Up
-- Catalog and stock. inventory carries a version column bumped on every change
-- so readers can detect concurrent writers; every change is also appended to
-- inventory_events, which replays to the current row.
CREATE TABLE products (
    sku          text PRIMARY KEY CHECK (length(sku) BETWEEN 1 AND 64),
    name         text NOT NULL,
    price_cents  bigint NOT NULL CHECK (price_cents >= 0),
    currency     text NOT NULL DEFAULT 'USD',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE inventory (
    sku        text PRIMARY KEY REFERENCES products (sku),
    on_hand    integer NOT NULL CHECK (on_hand >= 0),
    reserved   integer NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    version    bigint NOT NULL DEFAULT 1,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (reserved <= on_hand)
);

-- reason is one of: restock (operator set on_hand), reserve, release, commit,
-- revert. The log is append-only and replays to the inventory row.
CREATE TABLE inventory_events (
    id             bigserial PRIMARY KEY,
    sku            text NOT NULL REFERENCES products (sku),
    delta_on_hand  integer NOT NULL,
    delta_reserved integer NOT NULL,
    reason         text NOT NULL,
    order_id       uuid,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX inventory_events_sku ON inventory_events (sku, id);
CREATE INDEX inventory_events_order ON inventory_events (order_id) WHERE order_id IS NOT NULL;

CREATE TABLE orders (
    order_id       uuid PRIMARY KEY,
    customer_id    text NOT NULL,
    email          text NOT NULL,
    region         text NOT NULL,
    status         text NOT NULL,
    failure_reason text,
    total_cents    bigint NOT NULL,
    currency       text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_customer ON orders (customer_id, created_at DESC);
CREATE INDEX orders_status ON orders (status) WHERE status NOT IN ('CONFIRMED', 'FAILED', 'CANCELLED');

CREATE TABLE order_items (
    order_id         uuid NOT NULL REFERENCES orders (order_id),
    line             integer NOT NULL,
    sku              text NOT NULL REFERENCES products (sku),
    quantity         integer NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
    unit_price_cents bigint NOT NULL,
    PRIMARY KEY (order_id, line)
);

-- What an order holds of each SKU. Stock moves only on a state change
-- (held -> released | committed, committed -> held on revert, released -> held
-- when an operator re-runs a compensated saga), so a retried step finds the
-- change already made and moves nothing.
CREATE TABLE reservations (
    order_id   uuid NOT NULL REFERENCES orders (order_id),
    sku        text NOT NULL REFERENCES products (sku),
    quantity   integer NOT NULL CHECK (quantity > 0),
    status     text NOT NULL CHECK (status IN ('held', 'released', 'committed')),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, sku)
);

CREATE TABLE order_status_history (
    id       bigserial PRIMARY KEY,
    order_id uuid NOT NULL REFERENCES orders (order_id),
    status   text NOT NULL,
    reason   text,
    at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX order_status_history_once ON order_status_history (order_id, status);

-- One row per charge. An order has at most one charge that is not refunded;
-- a second row appears only when an operator re-runs a saga whose charge was
-- refunded. Its life is in payment_transactions (append-only).
CREATE TABLE payments (
    idempotency_key text PRIMARY KEY,
    order_id        uuid NOT NULL REFERENCES orders (order_id),
    provider        text NOT NULL,
    charge_id       text NOT NULL,
    amount_cents    bigint NOT NULL,
    currency        text NOT NULL,
    status          text NOT NULL CHECK (status IN ('charged', 'refunded')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX payments_one_open_charge ON payments (order_id) WHERE status = 'charged';
CREATE INDEX payments_order ON payments (order_id);

CREATE TABLE payment_transactions (
    id              bigserial PRIMARY KEY,
    order_id        uuid NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('charge', 'refund', 'decline', 'error')),
    provider        text NOT NULL,
    provider_ref    text,
    amount_cents    bigint NOT NULL,
    currency        text NOT NULL,
    idempotency_key text NOT NULL,
    detail          text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
-- A charge, refund or decline is recorded once however often the activity retries;
-- errors are recorded per attempt.
CREATE UNIQUE INDEX payment_transactions_once ON payment_transactions (idempotency_key, kind) WHERE kind <> 'error';
CREATE INDEX payment_transactions_order ON payment_transactions (order_id, id);

CREATE TABLE idempotency_keys (
    customer_id     text NOT NULL,
    operation       text NOT NULL,
    idempotency_key text NOT NULL,
    request_hash    bytea NOT NULL,
    order_id        uuid NOT NULL,
    response_status integer NOT NULL,
    response_body   jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    PRIMARY KEY (customer_id, operation, idempotency_key)
);
CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);

CREATE TABLE notifications (
    id         bigserial PRIMARY KEY,
    order_id   uuid NOT NULL REFERENCES orders (order_id),
    kind       text NOT NULL,
    channel    text NOT NULL,
    recipient  text NOT NULL,
    subject    text NOT NULL,
    body       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (order_id, kind)
);

-- The simulated card provider's own ledger: one row per idempotency key, so a
-- replayed request returns the first answer and never moves money twice.
CREATE TABLE paysim_ledger (
    idempotency_key text PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('charge', 'refund')),
    ref             text NOT NULL UNIQUE,
    charge_ref      text,
    token           text,
    amount_cents    bigint NOT NULL,
    currency        text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE paysim_ledger, notifications, idempotency_keys, payment_transactions, payments,
    order_status_history, reservations, order_items, orders, inventory_events, inventory, products;
