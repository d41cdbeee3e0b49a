package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/orderflow/orderflow/internal/breaker"
)

// Relay publishes one scope of the event outbox to JetStream: the events of
// a region's orders, or with Region "" the events of no order. One relay per
// scope is active at a time, across every worker: the one holding the
// scope's PostgreSQL advisory lock, on a connection of its own that also
// reads and records the outbox, so a relay that loses its connection loses
// the lead before another can take it. The others wait as standbys.
//
// Events are published at least once, with Nats-Msg-Id = the outbox row id:
// JetStream drops a second copy within its duplicate window, so a batch
// published again after a crash between publishing and recording it is
// stored once. Events of one partition (an order) go out in id order, each
// only after JetStream acknowledged the one before: a failed publish holds
// back the rest of its partition until it succeeds. While NATS is down
// nothing is published and nothing is lost; the rows wait.
type Relay struct {
	// DB is the pool whose configuration the relay's own connection uses.
	DB     *pgxpool.Pool
	JS     jetstream.JetStream
	Config Config
	Region string
	Log    *zap.Logger
	// Batch is how many pending events are read at once (default 500);
	// Poll the wait when none is pending (default 100 ms); Backoff the
	// first wait after a failed publish, doubling up to MaxBackoff
	// (defaults 200 ms and 10 s); PublishTimeout bounds one publish
	// (default 5 s); Standby is how often a relay that does not lead
	// tries to (default 2 s). Retain is how long published events stay in
	// the outbox before the leader deletes them (default 7 days; streams
	// keep them as long as EVENTS_MAX_AGE says).
	Batch          int
	Poll           time.Duration
	Backoff        time.Duration
	MaxBackoff     time.Duration
	PublishTimeout time.Duration
	Standby        time.Duration
	Retain         time.Duration
	// Breaker, when set, guards every publish: while it is open a publish
	// fails at once and its partition backs off as after any failure.
	Breaker *breaker.Breaker

	leader    atomic.Bool
	published atomic.Int64
}

// Leader reports whether this relay holds its scope's lead now.
func (r *Relay) Leader() bool { return r.leader.Load() }

// Published counts the events this relay published since start.
func (r *Relay) Published() int64 { return r.published.Load() }

func (r *Relay) defaults() {
	orDefault(&r.Batch, 500)
	orDefault(&r.Poll, 100*time.Millisecond)
	orDefault(&r.Backoff, 200*time.Millisecond)
	orDefault(&r.MaxBackoff, 10*time.Second)
	orDefault(&r.PublishTimeout, 5*time.Second)
	orDefault(&r.Standby, 2*time.Second)
	orDefault(&r.Retain, 7*24*time.Hour)
	if r.Log == nil {
		r.Log = zap.NewNop()
	}
}

// orDefault sets *v to def when it is not positive.
func orDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Run relays the scope until ctx is done, leading whenever it can.
func (r *Relay) Run(ctx context.Context) {
	r.defaults()
	log := r.Log.With(zap.String("region", r.Region))
	for ctx.Err() == nil {
		conn, err := r.lead(ctx)
		if err != nil && ctx.Err() == nil {
			log.Warn("event relay: take the lead", zap.Error(err))
		}
		if conn == nil {
			sleep(ctx, r.Standby)
			continue
		}
		log.Info("event relay leads its region")
		r.leader.Store(true)
		err = r.serve(ctx, conn)
		r.leader.Store(false)
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = conn.Close(cctx) // closing the session releases the lock
		cancel()
		if err != nil && ctx.Err() == nil {
			log.Warn("event relay stepped down", zap.Error(err))
			sleep(ctx, r.Backoff)
		}
	}
}

// lead opens the relay's own connection and takes the scope's advisory
// lock on it; it returns nil when another relay holds the lock.
func (r *Relay) lead(ctx context.Context) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cfg := r.DB.Config().ConnConfig.Copy()
	// Operators find the leaders by name in pg_stat_activity.
	cfg.RuntimeParams["application_name"] = strings.TrimSpace("orderflow event relay " + r.Region)
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return nil, err
	}
	var ok bool
	const q = `SELECT pg_try_advisory_lock(hashtext('orderflow.events.relay'), hashtext($1))`
	if err := conn.QueryRow(cctx, q, r.Region).Scan(&ok); err != nil || !ok {
		_ = conn.Close(cctx)
		return nil, err
	}
	return conn, nil
}

// outboxRow is a pending event as the relay reads it.
type outboxRow struct {
	id        int64
	partition string
	env       Envelope
}

// serve publishes while it leads; it returns when ctx is done (nil) or the
// connection fails (the error), which ends the lead.
func (r *Relay) serve(ctx context.Context, conn *pgx.Conn) error {
	backoff, ready, pruned := r.Backoff, false, time.Time{}
	for ctx.Err() == nil {
		if time.Since(pruned) > time.Hour {
			if err := r.prune(ctx, conn); err != nil {
				return err
			}
			pruned = time.Now()
		}
		if !ready {
			sctx, cancel := context.WithTimeout(ctx, r.PublishTimeout)
			err := EnsureStreams(sctx, r.JS, r.Config)
			cancel()
			if err != nil {
				r.Log.Warn("event relay: streams", zap.Error(err))
				sleep(ctx, backoff)
				backoff = min(2*backoff, r.MaxBackoff)
				continue
			}
			ready = true
		}
		rows, err := r.claim(ctx, conn)
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			sleep(ctx, r.Poll)
			continue
		}
		if !r.JS.Conn().IsConnected() {
			// Publishing now would only fill the client's reconnect buffer.
			sleep(ctx, backoff)
			backoff = min(2*backoff, r.MaxBackoff)
			continue
		}
		done, failed := r.publish(ctx, rows)
		if err := r.record(ctx, conn, done, failed); err != nil {
			return err
		}
		if len(failed) == 0 {
			backoff = r.Backoff
			continue
		}
		var last error
		for _, err := range failed {
			if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
				ready = false // a stream is gone (a new server): create them again
			}
			last = err
		}
		r.Log.Warn("event relay: publish failed; the events wait", zap.Int("failed", len(failed)), zap.Error(last))
		sleep(ctx, backoff)
		backoff = min(2*backoff, r.MaxBackoff)
	}
	return nil
}

// prune deletes the scope's events published longer ago than Retain, a
// bounded batch at a time; the oldest ids come first in the primary key.
// An event the webhook dispatcher has not handed over yet (webhooks_at
// NULL: its worker was down for longer than Retain) stays until it has, so
// that no subscriber misses it.
func (r *Relay) prune(ctx context.Context, conn *pgx.Conn) error {
	const q = `DELETE FROM event_outbox WHERE id IN (
		SELECT id FROM event_outbox WHERE region = $1 AND status = 'published' AND published_at < now() - $2::interval
		AND webhooks_at IS NOT NULL
		ORDER BY id LIMIT 10000)`
	for ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		tag, err := conn.Exec(pctx, q, r.Region, r.Retain.String())
		cancel()
		if err != nil {
			return fmt.Errorf("prune event outbox: %w", err)
		}
		if tag.RowsAffected() < 10000 {
			return nil
		}
	}
	return nil
}

// qClaim reads the scope's oldest pending events with what their envelopes
// carry of their orders.
const qClaim = `SELECT e.id, e.type, e.version, e.occurred_at, e.region, coalesce(e.order_id::text, ''), o.created_at, e.partition, e.payload
	FROM event_outbox e LEFT JOIN orders o ON o.order_id = e.order_id
	WHERE e.region = $1 AND e.status = 'pending' ORDER BY e.id LIMIT $2`

func (r *Relay) claim(ctx context.Context, conn *pgx.Conn) ([]outboxRow, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rows, err := conn.Query(cctx, qClaim, r.Region, r.Batch)
	if err != nil {
		return nil, fmt.Errorf("read event outbox: %w", err)
	}
	defer rows.Close()
	var out []outboxRow
	for rows.Next() {
		var (
			row      outboxRow
			accepted *time.Time
		)
		if err := rows.Scan(&row.id, &row.env.Type, &row.env.Version, &row.env.OccurredAt, &row.env.Region, &row.env.OrderID,
			&accepted, &row.partition, &row.env.Data); err != nil {
			return nil, fmt.Errorf("read event outbox: %w", err)
		}
		row.env.ID = strconv.FormatInt(row.id, 10)
		row.env.OccurredAt = row.env.OccurredAt.UTC()
		if accepted != nil {
			at := accepted.UTC()
			row.env.OrderAcceptedAt = &at
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

// publish sends rows in waves: each wave the first unpublished event of
// every partition, concurrently; a partition whose event failed sends no
// more. It returns the ids JetStream acknowledged and the failures by id.
func (r *Relay) publish(ctx context.Context, rows []outboxRow) ([]int64, map[int64]error) {
	var parts [][]outboxRow
	index := map[string]int{}
	for _, row := range rows {
		i, ok := index[row.partition]
		if !ok {
			i = len(parts)
			index[row.partition] = i
			parts = append(parts, nil)
		}
		parts[i] = append(parts[i], row)
	}
	var (
		done    []int64
		failed  = map[int64]error{}
		blocked = make([]bool, len(parts))
	)
	for wave := 0; ; wave++ {
		var batch []outboxRow
		var from []int
		for i, p := range parts {
			if !blocked[i] && wave < len(p) {
				batch, from = append(batch, p[wave]), append(from, i)
			}
		}
		if len(batch) == 0 {
			return done, failed
		}
		errs := make([]error, len(batch))
		var wg sync.WaitGroup
		for i, row := range batch {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = r.send(ctx, row) }()
		}
		wg.Wait()
		for i, row := range batch {
			if errs[i] != nil {
				failed[row.id], blocked[from[i]] = errs[i], true
				failedCount.Add(ctx, 1, metric.WithAttributes(attribute.String("type", row.env.Type)))
				continue
			}
			done = append(done, row.id)
			r.published.Add(1)
			publishedCount.Add(ctx, 1, metric.WithAttributes(attribute.String("type", row.env.Type)))
			relayDelay.Record(ctx, time.Since(row.env.OccurredAt).Seconds())
		}
	}
}

// send publishes one event and waits for JetStream's acknowledgement.
func (r *Relay) send(ctx context.Context, row outboxRow) error {
	stream, ok := StreamOf(row.env.Type)
	if !ok {
		return fmt.Errorf("event %d: no stream holds type %q", row.id, row.env.Type)
	}
	data, err := json.Marshal(row.env)
	if err != nil {
		return fmt.Errorf("event %d: %w", row.id, err)
	}
	pctx, cancel := context.WithTimeout(ctx, r.PublishTimeout)
	defer cancel()
	msg := &nats.Msg{Subject: row.env.Type, Data: data, Header: nats.Header{}}
	msg.Header.Set("Orderflow-Event-Version", strconv.Itoa(row.env.Version))
	publish := func() error {
		_, err := r.JS.PublishMsg(pctx, msg, jetstream.WithMsgID(row.env.ID), jetstream.WithExpectStream(stream))
		return err
	}
	if r.Breaker != nil {
		err = r.Breaker.Do(publish)
	} else {
		err = publish()
	}
	if err != nil {
		return fmt.Errorf("publish event %d (%s): %w", row.id, row.env.Type, err)
	}
	return nil
}

// record marks what was published and counts the failed attempts, in one
// round trip on the lead's connection.
func (r *Relay) record(ctx context.Context, conn *pgx.Conn, done []int64, failed map[int64]error) error {
	const (
		qDone   = `UPDATE event_outbox SET status = 'published', published_at = now(), attempts = attempts + 1, last_error = NULL WHERE id = ANY($1)`
		qFailed = `UPDATE event_outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1`
	)
	b := &pgx.Batch{}
	if len(done) > 0 {
		b.Queue(qDone, done)
	}
	for id, err := range failed {
		b.Queue(qFailed, id, err.Error())
	}
	// Recorded even as the worker stops: what JetStream took stays taken.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := conn.SendBatch(rctx, b).Close(); err != nil {
		return fmt.Errorf("record published events: %w", err)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
