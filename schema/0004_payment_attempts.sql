-- +goose Up
-- Where each of an order's charge keys may have been sent. A row is written
-- before the request goes out and dropped when the connection was refused,
-- so a refund asks every provider that may hold the charge and a failover
-- never charges an order on two providers.
CREATE TABLE payment_attempts (
    order_id     uuid NOT NULL,
    seq          integer NOT NULL,
    provider     text NOT NULL,
    attempted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, seq, provider)
);

-- +goose Down
DROP TABLE payment_attempts;
