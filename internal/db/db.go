// Package db opens orderflow's PostgreSQL pool and runs transactions.
package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
)

// StatementTimeout bounds every database call an activity or handler makes.
const StatementTimeout = 2 * time.Second

// Option configures the pool Open returns.
type Option func(*pgxpool.Config)

// WithTracing gives every query, batch, connect and pool acquire a span of
// tp, a child of the span in the caller's context; the span is named by the
// SQL operation (SELECT, INSERT, ...) and holds the statement, never its
// arguments. A nil tp (tracing off) installs nothing.
func WithTracing(tp trace.TracerProvider) Option {
	return func(cfg *pgxpool.Config) {
		if tp != nil {
			// The pool's metrics are exported on their own.
			cfg.ConnConfig.Tracer = otelpgx.NewTracer(otelpgx.WithTracerProvider(tp), otelpgx.WithMeterProvider(noop.NewMeterProvider()))
		}
	}
}

// Open connects a pool and checks that the server answers.
func Open(ctx context.Context, url string, opts ...Option) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	for _, o := range opts {
		o(cfg)
	}
	if cfg.MaxConns < 20 {
		cfg.MaxConns = 20
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ping database: %w", err)
	}
	return pool, nil
}

// InTx runs fn inside a transaction bounded by StatementTimeout: it commits
// when fn returns nil and rolls back otherwise.
func InTx(ctx context.Context, pool *pgxpool.Pool, fn func(pgx.Tx) error) error {
	ctx, cancel := context.WithTimeout(ctx, StatementTimeout)
	defer cancel()
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after commit
	if err := fn(tx); err != nil {
		return err
	}
	h, _ := ctx.Value(commitHookKey{}).(*CommitHook)
	if h != nil && !h.ran {
		if err := h.fn(ctx, tx); err != nil {
			return err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if h != nil {
		h.ran = true
	}
	return nil
}

// CommitHook is a write that must commit together with the write a
// context's caller is about to make (the audit log's row of an operator's
// act): the first InTx run with the context runs it last, inside the same
// transaction, so both commit or neither does.
type CommitHook struct {
	fn  func(context.Context, pgx.Tx) error
	ran bool
}

type commitHookKey struct{}

// OnCommit returns a context whose first transaction (InTx) runs fn just
// before it commits; fn's error rolls the transaction back and is InTx's.
// Ran tells afterwards whether a transaction committed with it, so a caller
// whose write took no transaction can make the write on its own.
func OnCommit(ctx context.Context, fn func(context.Context, pgx.Tx) error) (context.Context, *CommitHook) {
	h := &CommitHook{fn: fn}
	return context.WithValue(ctx, commitHookKey{}, h), h
}

// Ran reports whether a transaction ran the hook and committed.
func (h *CommitHook) Ran() bool { return h.ran }

// IsUniqueViolation reports whether err is PostgreSQL's unique_violation.
func IsUniqueViolation(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == "23505"
}

// ObservePool exports the pool's statistics, read from pgxpool's Stat at
// each scrape: connections acquired, idle, total and the maximum
// (orderflow_db_pool_connections{state=...}), acquires and the acquires that
// had to wait for a connection (orderflow_db_pool_acquires_total,
// orderflow_db_pool_empty_acquires_total) and the time spent waiting
// (orderflow_db_pool_acquire_wait_seconds_total). A process calls it once,
// for its one pool; it fails only if the meter rejects an instrument.
func ObservePool(pool *pgxpool.Pool) error {
	m := otel.Meter("github.com/orderflow/orderflow/internal/db")
	conns, err := m.Int64ObservableGauge("orderflow.db.pool.connections",
		metric.WithDescription("PostgreSQL pool connections by state: acquired, idle, total, max"))
	if err != nil {
		return fmt.Errorf("pool metrics: %w", err)
	}
	acquires, err := m.Int64ObservableCounter("orderflow.db.pool.acquires",
		metric.WithDescription("connections acquired from the PostgreSQL pool"))
	if err != nil {
		return fmt.Errorf("pool metrics: %w", err)
	}
	empty, err := m.Int64ObservableCounter("orderflow.db.pool.empty_acquires",
		metric.WithDescription("acquires that found no idle connection and waited for one"))
	if err != nil {
		return fmt.Errorf("pool metrics: %w", err)
	}
	wait, err := m.Float64ObservableCounter("orderflow.db.pool.acquire_wait", metric.WithUnit("s"),
		metric.WithDescription("time acquires spent waiting for a connection because none was idle"))
	if err != nil {
		return fmt.Errorf("pool metrics: %w", err)
	}
	states := [4]metric.ObserveOption{
		metric.WithAttributes(attribute.String("state", "acquired")), metric.WithAttributes(attribute.String("state", "idle")),
		metric.WithAttributes(attribute.String("state", "total")), metric.WithAttributes(attribute.String("state", "max")),
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st := pool.Stat()
		o.ObserveInt64(conns, int64(st.AcquiredConns()), states[0])
		o.ObserveInt64(conns, int64(st.IdleConns()), states[1])
		o.ObserveInt64(conns, int64(st.TotalConns()), states[2])
		o.ObserveInt64(conns, int64(st.MaxConns()), states[3])
		o.ObserveInt64(acquires, st.AcquireCount())
		o.ObserveInt64(empty, st.EmptyAcquireCount())
		o.ObserveFloat64(wait, st.EmptyAcquireWaitTime().Seconds())
		return nil
	}, conns, acquires, empty, wait)
	if err != nil {
		return fmt.Errorf("pool metrics: %w", err)
	}
	return nil
}
