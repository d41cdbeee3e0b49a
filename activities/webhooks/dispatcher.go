package webhooks

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/orderflow/orderflow/internal/db"
)

// Dispatcher hands a region's events from the outbox to the endpoints'
// delivery workflows. Every worker running the outbox pool runs one per
// scope (its region, and "" for events of no order); an advisory lock held
// for a round lets one of them work at a time, so an order's events are
// signalled in id order.
//
// Why the outbox rather than a JetStream consumer: the outbox is the
// durable record, written in the change's own transaction; the events of one
// order are spread over several streams (ORDERS, PAYMENTS, INVENTORY), whose
// consumers would see them in no common order; and webhooks then work
// without NATS. An event is marked handed over (webhooks_at) by the round
// that read it, after its signals were accepted: a crash in between leaves
// it unmarked and the next round signals it again, which the
// delivery workflow drops as already seen (its id is the workflow's key).
type Dispatcher struct {
	DB       *pgxpool.Pool
	Temporal client.Client
	// Region is the scope: the events of the region's orders, or "" for
	// events of no order.
	Region string
	Policy Policy
	Log    *zap.Logger
	// Poll is the wait after a round that found nothing (1 s when zero);
	// Batch the events per round (200 when zero).
	Poll  time.Duration
	Batch int
}

// Run dispatches until ctx is done; a failed round is logged and retried
// after Poll.
func (d *Dispatcher) Run(ctx context.Context) {
	poll, batch := d.Poll, d.Batch
	if poll <= 0 {
		poll = time.Second
	}
	if batch <= 0 {
		batch = 200
	}
	for ctx.Err() == nil {
		_, more, err := d.round(ctx, batch)
		if err != nil && ctx.Err() == nil && d.Log != nil {
			d.Log.Warn("webhook dispatch failed", zap.String("region", d.Region), zap.Error(err))
		}
		if more && err == nil {
			continue
		}
		select {
		case <-ctx.Done():
		case <-time.After(poll):
		}
	}
}

type pendingEvent struct {
	id        int64
	typ       string
	partition string
}

// RoundBudget bounds the signalling of one round: under a slow Temporal a
// round marks the events it signalled within it and leaves the rest to the
// next, so the dispatcher always moves on. (A round once ran in a single
// transaction bounded by db.StatementTimeout: a batch whose signals took
// longer than that never committed and was signalled again, round after
// round, while its events waited.)
const RoundBudget = 5 * time.Second

// Round hands over up to batch events, if no other dispatcher of the scope
// holds the lock, and returns how many it marked.
func (d *Dispatcher) Round(ctx context.Context, batch int) (int, error) {
	n, _, err := d.round(ctx, batch)
	return n, err
}

// round is Round; more says events are left that the round had no time
// for, or that a full batch was marked.
//
// The scope's lock is a session advisory lock on a connection held for the
// round, not a transaction's: signalling is Temporal's time, which no
// database bound should cut short. Each statement keeps the usual bound.
// No row locks either: the lock keeps other dispatchers out, and the relay
// may mark the same rows published meanwhile without waiting for us.
func (d *Dispatcher) round(ctx context.Context, batch int) (n int, more bool, err error) {
	conn, err := d.DB.Acquire(ctx)
	if err != nil {
		return 0, false, fmt.Errorf("dispatch: %w", err)
	}
	defer conn.Release()
	var got bool
	if err := bounded(ctx, func(ctx context.Context) error {
		return conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtext('orderflow.webhooks.dispatch'), hashtext($1))`, d.Region).Scan(&got)
	}); err != nil || !got {
		return 0, false, err
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), db.StatementTimeout)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock(hashtext('orderflow.webhooks.dispatch'), hashtext($1))`, d.Region); err != nil {
			// The lock lives as long as the session: a connection that
			// cannot release it is closed, which does.
			_ = conn.Conn().Close(uctx)
		}
	}()
	var evs []pendingEvent
	var eps []subscriber
	if err := bounded(ctx, func(ctx context.Context) error {
		const qPending = `SELECT id, type, partition FROM event_outbox WHERE region = $1 AND webhooks_at IS NULL
			ORDER BY id LIMIT $2`
		rows, err := conn.Query(ctx, qPending, d.Region, batch)
		if err != nil {
			return fmt.Errorf("read events to dispatch: %w", err)
		}
		evs, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (pendingEvent, error) {
			var e pendingEvent
			return e, r.Scan(&e.id, &e.typ, &e.partition)
		})
		if err != nil || len(evs) == 0 {
			return err
		}
		eps, err = enabledEndpoints(ctx, conn)
		return err
	}); err != nil || len(evs) == 0 {
		return 0, false, err
	}
	// An event is marked only once Temporal accepted its every signal: a
	// crash before the mark signals it again next round, which the
	// delivery workflow drops as already seen.
	deadline := time.Now().Add(RoundBudget)
	ids := make([]int64, 0, len(evs))
	var signalErr error
signal:
	for _, e := range evs {
		if len(ids) > 0 && time.Now().After(deadline) {
			more = true
			break
		}
		for _, ep := range eps {
			if !slices.Contains(ep.types, e.typ) {
				continue
			}
			if signalErr = Signal(ctx, d.Temporal, d.Policy, ep.id, e.partition, Item{EventID: e.id}); signalErr != nil {
				break signal
			}
			dispatched.Add(ctx, 1)
		}
		ids = append(ids, e.id)
	}
	if len(ids) > 0 {
		if err := bounded(ctx, func(ctx context.Context) error {
			_, err := conn.Exec(ctx, `UPDATE event_outbox SET webhooks_at = now() WHERE id = ANY ($1)`, ids)
			return err
		}); err != nil {
			return 0, false, fmt.Errorf("mark events dispatched: %w", err)
		}
	}
	return len(ids), more || len(evs) == batch, signalErr
}

// bounded runs one statement within db.StatementTimeout.
func bounded(ctx context.Context, fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, db.StatementTimeout)
	defer cancel()
	return fn(ctx)
}

type subscriber struct {
	id    string
	types []string
}

func enabledEndpoints(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}) ([]subscriber, error) {
	rows, err := q.Query(ctx, `SELECT id::text, event_types FROM webhook_endpoints WHERE enabled ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("read webhook endpoints: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (subscriber, error) {
		var s subscriber
		return s, r.Scan(&s.id, &s.types)
	})
}
