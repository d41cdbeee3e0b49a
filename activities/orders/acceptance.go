package orders

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/orderflow/orderflow/internal/db"
	"github.com/orderflow/orderflow/internal/pii"
)

// durably runs fn in a transaction committed at s.AcceptCommit. The
// statement timeout is off in it: PostgreSQL ends a commit's wait for a
// synchronous standby on a statement timeout with a WARNING and reports the
// commit as done, which must never pass for durable. The wait therefore ends
// only when the standby answers or ctx (bounded by db.StatementTimeout) does;
// then the connection is dropped (pgx) and the server process, still waiting
// with the commit written locally, is cancelled so that a lost region does
// not leave one waiting process per request behind.
func (s Store) durably(ctx context.Context, fn func(pgx.Tx) error) error {
	ctx, cancel := context.WithTimeout(ctx, db.StatementTimeout)
	defer cancel()
	conn, err := s.DB.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire: %w", err)
	}
	defer conn.Release()
	pid := conn.Conn().PgConn().PID()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after commit
	if s.AcceptCommit != "" {
		const set = `SELECT set_config('synchronous_commit', $1, true), set_config('statement_timeout', '0', true)`
		if _, err := tx.Exec(ctx, set, s.AcceptCommit); err != nil {
			return fmt.Errorf("set synchronous_commit: %w", err)
		}
	}
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		if ctx.Err() != nil {
			s.cancelReplicationWait(context.WithoutCancel(ctx), pid)
		}
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// cancelReplicationWait cancels server process pid if it still waits for a
// synchronous standby (wait event SyncRep): its commit stays local, and the
// process ends, its client gone. Best effort: a failure leaves the process
// waiting until the standby answers or leaves synchronous_standby_names.
func (s Store) cancelReplicationWait(ctx context.Context, pid uint32) {
	ctx, cancel := context.WithTimeout(ctx, db.StatementTimeout)
	defer cancel()
	const q = `SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE pid = $1 AND wait_event = 'SyncRep'`
	_, _ = s.DB.Exec(ctx, q, int64(pid))
}

// startAAD binds a sealed saga start to its order.
func startAAD(orderID string) []byte { return []byte(orderID + "/saga_start") }

// SealStart seals start (the saga's input and what its options need, as
// JSON) for the order's acceptance record: it holds the customer's e-mail,
// address and payment token, stored only sealed.
func SealStart(keys *pii.Keyring, orderID string, start any) ([]byte, error) {
	b, err := json.Marshal(start)
	if err != nil {
		return nil, fmt.Errorf("encode saga start of %s: %w", orderID, err)
	}
	return keys.Seal(b, startAAD(orderID)), nil
}

// OpenStart opens what SealStart sealed into start. A value sealed with a
// key the keyring lacks fails with pii.ErrUnknownKey.
func OpenStart(keys *pii.Keyring, orderID string, sealed []byte, start any) error {
	b, err := keys.Open(sealed, startAAD(orderID))
	if err != nil {
		return fmt.Errorf("open saga start of %s: %w", orderID, err)
	}
	if err := json.Unmarshal(b, start); err != nil {
		return fmt.Errorf("decode saga start of %s: %w", orderID, err)
	}
	return nil
}

// Accepted is an order's acceptance record with the saga's sealed start.
type Accepted struct {
	OrderID    string
	CustomerID string
	Saga       []byte
	AcceptedAt time.Time
}

// AcceptedSince lists the acceptance records made at or after since that
// keep their saga's start, oldest first: what a re-drive examines.
func (s Store) AcceptedSince(ctx context.Context, since time.Time) ([]Accepted, error) {
	const q = `SELECT order_id::text, customer_id, saga, created_at FROM idempotency_keys
		WHERE saga IS NOT NULL AND created_at >= $1 ORDER BY created_at`
	rows, err := s.DB.Query(ctx, q, since)
	if err != nil {
		return nil, fmt.Errorf("list acceptance records: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Accepted])
	if err != nil {
		return nil, fmt.Errorf("list acceptance records: %w", err)
	}
	return out, nil
}

// DeferStart marks the acceptance record held under the key: its saga could
// not be started in time and a starter is to start it (docs/resilience.md).
// The mark is committed as the record was (durably), so that a 202 answered
// on it is never lost; an error means it may not be. It reports false when
// the record is not the one of orderID (the key taken over meanwhile).
func (s Store) DeferStart(ctx context.Context, customerID, operation, key, orderID string) (bool, error) {
	const q = `UPDATE idempotency_keys SET start_deferred_at = coalesce(start_deferred_at, now())
		WHERE customer_id = $1 AND operation = $2 AND idempotency_key = $3 AND order_id = $4 AND saga IS NOT NULL`
	marked := false
	err := s.durably(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, q, customerID, operation, key, orderID)
		marked = tag.RowsAffected() == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("defer saga start of %s: %w", orderID, err)
	}
	return marked, nil
}

// Deferred is a marked acceptance record: an order whose saga is still to
// be started, marked at DeferredAt.
type Deferred struct {
	Accepted
	DeferredAt time.Time
}

// DeferredStarts lists up to limit marked records, the longest waiting
// first.
func (s Store) DeferredStarts(ctx context.Context, limit int) ([]Deferred, error) {
	const q = `SELECT order_id::text, customer_id, saga, created_at, start_deferred_at FROM idempotency_keys
		WHERE start_deferred_at IS NOT NULL ORDER BY start_deferred_at LIMIT $1`
	rows, err := s.DB.Query(ctx, q, limit)
	if err != nil {
		return nil, fmt.Errorf("list deferred saga starts: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Deferred, error) {
		var d Deferred
		err := r.Scan(&d.OrderID, &d.CustomerID, &d.Saga, &d.AcceptedAt, &d.DeferredAt)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("list deferred saga starts: %w", err)
	}
	return out, nil
}

// DeferredStart returns the marked record of an order, found false when the
// order has none (never deferred, or started since).
func (s Store) DeferredStart(ctx context.Context, orderID string) (d Deferred, found bool, err error) {
	const q = `SELECT order_id::text, customer_id, saga, created_at, start_deferred_at FROM idempotency_keys
		WHERE order_id = $1 AND start_deferred_at IS NOT NULL LIMIT 1`
	err = s.DB.QueryRow(ctx, q, orderID).Scan(&d.OrderID, &d.CustomerID, &d.Saga, &d.AcceptedAt, &d.DeferredAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Deferred{}, false, nil
	}
	if err != nil {
		return Deferred{}, false, fmt.Errorf("load deferred saga start of %s: %w", orderID, err)
	}
	return d, true, nil
}

// StartedDeferred clears an order's mark once its saga is known to exist,
// reporting whether this call cleared it (false: another starter did).
func (s Store) StartedDeferred(ctx context.Context, orderID string) (bool, error) {
	const q = `UPDATE idempotency_keys SET start_deferred_at = NULL WHERE order_id = $1 AND start_deferred_at IS NOT NULL`
	tag, err := s.DB.Exec(ctx, q, orderID)
	if err != nil {
		return false, fmt.Errorf("clear deferred saga start of %s: %w", orderID, err)
	}
	return tag.RowsAffected() > 0, nil
}
