-- +goose NO TRANSACTION
-- +goose Up
-- The invariant monitor's findings (activities/monitor, docs/operations.md
-- "Invariant monitor"): each row is one breach of an invariant the chaos
-- runs prove (an order lost or stuck, money or stock drifting, a provider's
-- ledger disagreeing with payments), found by the monitor's Schedule.
--   region      the region whose monitor found it: each region's runs
--               record and resolve their own
--   kind        lost_order, stuck_saga, charge_mismatch, refund_over_charge,
--               stock_drift or ledger_mismatch
--   subject     what it is about: an order id, a SKU, or provider:charge
--   detail      what the check saw, for the operator
--   first_seen, last_seen
--               the first and the latest run that saw it
--   resolved_at set by the nightly run (which checks everything) when the
--               breach is gone; a resolved finding is kept for the record
-- An open finding is unique per (region, kind, subject): a run that sees it
-- again only moves last_seen and refreshes detail.
CREATE TABLE invariant_findings (
    id          bigserial PRIMARY KEY,
    region      text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('lost_order', 'stuck_saga', 'charge_mismatch', 'refund_over_charge',
                                               'stock_drift', 'ledger_mismatch')),
    subject     text NOT NULL,
    detail      text NOT NULL,
    first_seen  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz
);
CREATE UNIQUE INDEX invariant_findings_open ON invariant_findings (region, kind, subject) WHERE resolved_at IS NULL;

-- The monitor's run every 5 minutes reads the orders and the acceptance
-- records of a recent window; these keep it from scanning either table.
-- Built concurrently (hence NO TRANSACTION), so writes go on meanwhile.
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_created ON orders (created_at);
CREATE INDEX CONCURRENTLY IF NOT EXISTS idempotency_keys_accepted ON idempotency_keys (created_at)
    WHERE operation = 'create_order' AND order_id IS NOT NULL;

-- +goose Down
DROP INDEX IF EXISTS idempotency_keys_accepted;
DROP INDEX IF EXISTS orders_created;
DROP TABLE invariant_findings;
