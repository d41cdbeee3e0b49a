-- +goose Up
-- Two regions (docs/regions.md): an order's acceptance record also keeps the
-- saga's start (its input and total, sealed with the PII keys, as the saga's
-- payloads are), so the region that survives a failover can start a saga that
-- did not replicate with what the gateway would have started. The re-drive
-- reads the records of the last minutes through the partial index.
ALTER TABLE idempotency_keys ADD COLUMN saga bytea;
CREATE INDEX idempotency_keys_redrive ON idempotency_keys (created_at) WHERE saga IS NOT NULL;

-- +goose Down
DROP INDEX idempotency_keys_redrive;
ALTER TABLE idempotency_keys DROP COLUMN saga;
