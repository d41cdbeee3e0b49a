package api

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// ExpireKeys deletes expired idempotency keys every interval until ctx is
// done. It deletes in small batches and skips rows other gateways are
// deleting, so expiry never holds locks that would stall new orders.
func (s *Server) ExpireKeys(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := s.expireKeys(ctx, 1000, 50)
		if err != nil {
			s.Log.Warn("expire idempotency keys", zap.Error(err))
		} else if n > 0 {
			s.Log.Info("expired idempotency keys", zap.Int64("deleted", n))
		}
	}
}

// expireKeys deletes up to batches*batch expired keys, a batch per statement.
func (s *Server) expireKeys(ctx context.Context, batch, batches int) (int64, error) {
	const q = `DELETE FROM idempotency_keys WHERE ctid IN (
		SELECT ctid FROM idempotency_keys WHERE expires_at < now() LIMIT $1 FOR UPDATE SKIP LOCKED)`
	var total int64
	for range batches {
		qctx, cancel := context.WithTimeout(ctx, requestTimeout)
		tag, err := s.DB.Exec(qctx, q, batch)
		cancel()
		if err != nil {
			return total, err
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < int64(batch) {
			break
		}
	}
	return total, nil
}
