-- +goose Up
-- Deferred saga starts (docs/resilience.md, "Placements while Temporal
-- stalls"): when Temporal cannot take an order's start in time (a server
-- lost, shards moving, the breaker open), the gateway marks the order's
-- durable acceptance record and answers 202 all the same; each gateway's
-- starter starts the marked sagas from their sealed start (USE_EXISTING and
-- REJECT_DUPLICATE make a repeated start harmless) and clears the mark. The
-- partial index holds only the marked records: the starter's scan and the
-- look-ups of an order not yet started read nothing else.
ALTER TABLE idempotency_keys ADD COLUMN start_deferred_at timestamptz;
CREATE INDEX idempotency_keys_deferred ON idempotency_keys (order_id) WHERE start_deferred_at IS NOT NULL;

-- +goose Down
DROP INDEX idempotency_keys_deferred;
ALTER TABLE idempotency_keys DROP COLUMN start_deferred_at;
