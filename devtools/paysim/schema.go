package paysim

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderflow/orderflow/internal/db"
)

// qSchema is the simulator's own schema: its ledger lives in PostgreSQL
// schema paysim, next to but apart from orderflow's tables, so the product's
// migrations know nothing of it. Every statement is idempotent.
const qSchema = `CREATE SCHEMA IF NOT EXISTS paysim;
CREATE TABLE IF NOT EXISTS paysim.ledger (
    instance        text NOT NULL,
    idempotency_key text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('charge', 'refund')),
    ref             text NOT NULL UNIQUE,
    charge_ref      text,
    token           text,
    amount_cents    bigint NOT NULL,
    currency        text NOT NULL,
    description     text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (instance, idempotency_key)
);
-- Refunds look up their charge by (instance, ref); ref stays globally unique.
CREATE INDEX IF NOT EXISTS ledger_charge_ref ON paysim.ledger (instance, charge_ref) WHERE kind = 'refund';`

// Migrate creates the simulator's schema if it is missing. Instances that
// start together serialize on an advisory lock, since CREATE ... IF NOT
// EXISTS is not safe against a concurrent create.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	err := db.InTx(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('orderflow.paysim.schema'))`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, qSchema); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, qWebhookSchema)
		return err
	})
	if err != nil {
		return fmt.Errorf("paysim schema: %w", err)
	}
	return nil
}
