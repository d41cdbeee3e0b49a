-- +goose Up
-- Several simulated providers (paysim-a, paysim-b, ...) share one database but
-- keep separate ledgers: an idempotency key is unique per instance, so the
-- same order charged through two providers is two charges, as it would be at
-- two real processors. Rows written before instances existed belonged to the
-- single in-process provider; they go to paysim-a, the default instance, so
-- their charges can still be found and refunded.
ALTER TABLE paysim_ledger ADD COLUMN instance text NOT NULL DEFAULT 'paysim-a';
ALTER TABLE paysim_ledger ALTER COLUMN instance DROP DEFAULT;
ALTER TABLE paysim_ledger ADD COLUMN description text;
ALTER TABLE paysim_ledger DROP CONSTRAINT paysim_ledger_pkey;
ALTER TABLE paysim_ledger ADD PRIMARY KEY (instance, idempotency_key);
-- Refunds look up their charge by (instance, ref); ref stays globally unique.
CREATE INDEX paysim_ledger_charge_ref ON paysim_ledger (instance, charge_ref) WHERE kind = 'refund';

-- +goose Down
-- Fails when two instances used the same key, rather than drop a charge.
DROP INDEX paysim_ledger_charge_ref;
ALTER TABLE paysim_ledger DROP CONSTRAINT paysim_ledger_pkey;
ALTER TABLE paysim_ledger ADD PRIMARY KEY (idempotency_key);
ALTER TABLE paysim_ledger DROP COLUMN description;
ALTER TABLE paysim_ledger DROP COLUMN instance;
