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
    kind            text NOT NULL CONSTRAINT ledger_kind_check
                    CHECK (kind IN ('charge', 'refund', 'authorization', 'capture', 'void')),
    ref             text NOT NULL UNIQUE,
    charge_ref      text,
    token           text,
    amount_cents    bigint NOT NULL,
    currency        text NOT NULL,
    description     text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz,
    final           boolean NOT NULL DEFAULT false,
    PRIMARY KEY (instance, idempotency_key)
);
-- Authorizations (an authorization's expiry; a capture's final_capture),
-- added to ledgers made before them.
ALTER TABLE paysim.ledger ADD COLUMN IF NOT EXISTS expires_at timestamptz;
ALTER TABLE paysim.ledger ADD COLUMN IF NOT EXISTS final boolean NOT NULL DEFAULT false;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = 'paysim.ledger'::regclass
                   AND conname = 'ledger_kind_check' AND pg_get_constraintdef(oid) LIKE '%authorization%') THEN
        ALTER TABLE paysim.ledger DROP CONSTRAINT IF EXISTS ledger_kind_check;
        ALTER TABLE paysim.ledger ADD CONSTRAINT ledger_kind_check
            CHECK (kind IN ('charge', 'refund', 'authorization', 'capture', 'void'));
    END IF;
END $$;
-- Refunds look up their charge by (instance, ref); ref stays globally unique.
CREATE INDEX IF NOT EXISTS ledger_charge_ref ON paysim.ledger (instance, charge_ref) WHERE kind = 'refund';
-- Captures, refunds and voids look up their authorization's other rows.
CREATE INDEX IF NOT EXISTS ledger_parent_ref ON paysim.ledger (instance, charge_ref) WHERE charge_ref IS NOT NULL;`

// Migrate creates the simulator's schema if it is missing. Instances that
// start together serialize on an advisory lock, since CREATE ... IF NOT
// EXISTS is not safe against a concurrent create.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	err := db.InTx(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('orderflow.paysim.schema'))`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, qSchema)
		return err
	})
	if err != nil {
		return fmt.Errorf("paysim schema: %w", err)
	}
	return nil
}
