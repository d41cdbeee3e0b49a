-- +goose Up
-- The payment simulator keeps its ledger in a schema of its own (paysim.ledger,
-- created by the simulator itself: devtools/paysim); the product's tables no
-- longer include it. Its rows were simulated charges and refunds only.
DROP TABLE IF EXISTS paysim_ledger;

-- +goose Down
SELECT 1;
