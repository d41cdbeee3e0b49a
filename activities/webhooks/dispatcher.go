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
// scope (its region, and "" for events of no order); a transaction-scoped
// advisory lock lets one of them work at a time, so an order's events are
// signalled in id order.
//
// Why the outbox rather than a JetStream consumer: the outbox is the
// durable record, written in the change's own transaction; the events of one
// order are spread over several streams (ORDERS, PAYMENTS, INVENTORY), whose
// consumers would see them in no common order; and webhooks then work
// without NATS. An event is marked handed over (webhooks_at) in the
// transaction that read it, after its signals were accepted: a crash in
// between leaves it unmarked and the next round signals it again, which the
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
		n, err := d.Round(ctx, batch)
		if err != nil && ctx.Err() == nil && d.Log != nil {
			d.Log.Warn("webhook dispatch failed", zap.String("region", d.Region), zap.Error(err))
		}
		if n == batch && err == nil {
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

// Round hands over up to batch events, if no other dispatcher of the scope
// holds the lock, and returns how many it marked.
func (d *Dispatcher) Round(ctx context.Context, batch int) (int, error) {
	n := 0
	err := db.InTx(ctx, d.DB, func(tx pgx.Tx) error {
		var got bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock(hashtext('orderflow.webhooks.dispatch'), hashtext($1))`,
			d.Region).Scan(&got); err != nil || !got {
			return err
		}
		// No row locks while signalling: the advisory lock keeps other
		// dispatchers out, and the relay may mark the same rows published
		// meanwhile without waiting for us.
		const qPending = `SELECT id, type, partition FROM event_outbox WHERE region = $1 AND webhooks_at IS NULL
			ORDER BY id LIMIT $2`
		rows, err := tx.Query(ctx, qPending, d.Region, batch)
		if err != nil {
			return fmt.Errorf("read events to dispatch: %w", err)
		}
		evs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pendingEvent, error) {
			var e pendingEvent
			return e, r.Scan(&e.id, &e.typ, &e.partition)
		})
		if err != nil || len(evs) == 0 {
			return err
		}
		eps, err := enabledEndpoints(ctx, tx)
		if err != nil {
			return err
		}
		ids := make([]int64, 0, len(evs))
		for _, e := range evs {
			for _, ep := range eps {
				if !slices.Contains(ep.types, e.typ) {
					continue
				}
				if err := Signal(ctx, d.Temporal, d.Policy, ep.id, e.partition, Item{EventID: e.id}); err != nil {
					return err
				}
				dispatched.Add(ctx, 1)
			}
			ids = append(ids, e.id)
		}
		if _, err := tx.Exec(ctx, `UPDATE event_outbox SET webhooks_at = now() WHERE id = ANY ($1)`, ids); err != nil {
			return fmt.Errorf("mark events dispatched: %w", err)
		}
		n = len(ids)
		return nil
	})
	return n, err
}

type subscriber struct {
	id    string
	types []string
}

func enabledEndpoints(ctx context.Context, tx pgx.Tx) ([]subscriber, error) {
	rows, err := tx.Query(ctx, `SELECT id::text, event_types FROM webhook_endpoints WHERE enabled ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("read webhook endpoints: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (subscriber, error) {
		var s subscriber
		return s, r.Scan(&s.id, &s.types)
	})
}
