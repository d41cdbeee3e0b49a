package orders

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderflow/orderflow/internal/db"
)

// Admin holds the housekeeping activities that run on a region's admin task
// queue, in the worker's admin share of slots, never in the saga's.
type Admin struct {
	DB *pgxpool.Pool
}

// ExpireKeysInput bounds one expiry run: up to Batches statements of Batch
// rows each (defaults 1000 and 50).
type ExpireKeysInput struct {
	Batch   int `json:"batch,omitempty"`
	Batches int `json:"batches,omitempty"`
}

// ExpireKeysResult says how many keys were deleted.
type ExpireKeysResult struct {
	Deleted int64 `json:"deleted"`
}

// ExpireIdempotencyKeys deletes idempotency keys past their expiry, in small
// batches that skip rows another run holds, so expiry never takes locks that
// would stall new orders. Running it twice is harmless.
func (a *Admin) ExpireIdempotencyKeys(ctx context.Context, in ExpireKeysInput) (ExpireKeysResult, error) {
	const q = `DELETE FROM idempotency_keys WHERE ctid IN (
		SELECT ctid FROM idempotency_keys WHERE expires_at < now() LIMIT $1 FOR UPDATE SKIP LOCKED)`
	batch, batches := in.Batch, in.Batches
	if batch <= 0 {
		batch = 1000
	}
	if batches <= 0 {
		batches = 50
	}
	var res ExpireKeysResult
	for range batches {
		qctx, cancel := context.WithTimeout(ctx, db.StatementTimeout)
		tag, err := a.DB.Exec(qctx, q, batch)
		cancel()
		if err != nil {
			return res, fmt.Errorf("expire idempotency keys: %w", err)
		}
		res.Deleted += tag.RowsAffected()
		if tag.RowsAffected() < int64(batch) {
			break
		}
	}
	return res, nil
}
