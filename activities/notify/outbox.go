// Package notify is the area of customer messages: the notifications outbox
// that the confirming or failing transaction writes into (Enqueue), and the
// Outbox that delivers its rows through a Mailer, at least once, with backoff.
package notify

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/orderflow/orderflow/internal/db"
	"github.com/orderflow/orderflow/internal/pii"
)

// Notification kinds the saga enqueues, and the mailers' templates key on.
const (
	OrderConfirmed = "order_confirmed"
	OrderFailed    = "order_failed"
	// Fulfillment's messages (activities/fulfillment): the first shipment
	// left, every shipment arrived, the order was cancelled after it was
	// confirmed, money went back (a lost shipment, a return).
	OrderShipped   = "order_shipped"
	OrderDelivered = "order_delivered"
	OrderCancelled = "order_cancelled"
	OrderRefunded  = "order_refunded"
)

// qEnqueue writes a customer message about order $1 of kind $2 with subject
// $3 into the outbox, once per (order, kind). It runs inside the transaction
// that confirms or fails the order, so the message exists exactly when the
// outcome it announces does. The address is copied still encrypted (it is
// bound to the order id, which the message keeps); a plaintext one from
// before migration 0006 is copied as it is and encrypted by the next
// `orderflow migrate`. An order whose personal data was erased gets no
// message: there is no address to send it to.
const qEnqueue = `INSERT INTO notifications (order_id, region, kind, channel, recipient, recipient_enc, subject, body)
	SELECT order_id, region, $2, 'email', email, email_enc, $3,
	       format('Order %s: %s (%s %s).', order_id, status, total_cents, currency)
	FROM orders WHERE order_id = $1 AND (email_enc IS NOT NULL OR email IS NOT NULL)
	ON CONFLICT (order_id, kind) DO NOTHING`

// Enqueue puts order orderID's message of this kind in the outbox inside tx
// (qEnqueue says what it writes); a second call for the same kind adds nothing.
func Enqueue(ctx context.Context, tx pgx.Tx, orderID, kind, subject string) error {
	if _, err := tx.Exec(ctx, qEnqueue, orderID, kind, subject); err != nil {
		return fmt.Errorf("enqueue %s: %w", kind, err)
	}
	return nil
}

// Message is one outbox row on its way to the customer. Recipient is the
// decrypted address; it lives in memory only while the message is sent.
type Message struct {
	ID        int64
	OrderID   string
	Kind      string
	Recipient string
	Subject   string
	Body      string
	Attempts  int
	// What the templates show of the order as it is when the message is
	// sent: its status, failure reason and total.
	Status     string
	Reason     string
	TotalCents int64
	Currency   string

	sealed []byte
}

// Mailer delivers a message. An error is retried later with backoff; one
// marked Permanent gives the message up after the outbox's MaxAttempts.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}

// LogMailer is the development mailer: it writes the message to the log,
// after Latency, standing in for a mail provider's round trip.
type LogMailer struct {
	Log     *zap.Logger
	Latency time.Duration
}

// Send logs the message.
func (l LogMailer) Send(ctx context.Context, m Message) error {
	if l.Latency > 0 {
		select {
		case <-time.After(l.Latency):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if l.Log != nil {
		l.Log.Debug("notification sent", zap.String("order_id", m.OrderID), zap.String("kind", m.Kind))
	}
	return nil
}

// Outbox delivers the notifications outbox with a bounded pool: the
// non-critical bulkhead. At most Workers messages are in flight and the pool
// holds a database connection only to claim a batch and to record results,
// so a flood of notifications cannot take the slots or connections the
// saga's steps use.
type Outbox struct {
	DB *pgxpool.Pool
	// PII decrypts the recipient's address; required.
	PII *pii.Keyring
	// Region is the region whose messages this pool delivers.
	Region string
	Mailer Mailer
	Log    *zap.Logger
	// Workers bounds the messages in flight; Batch is how many are claimed
	// at once (default 2×Workers); Poll is the wait when nothing is due
	// (default 250 ms); Lease is how long a claimed message is hidden from
	// other workers (default 1 min); MaxAttempts before a message is given
	// up as dead (default 10) when its failure is Permanent: other
	// failures (the mail server down) are retried for as long as they last.
	// Backoff is the wait after a first failure, doubling with each attempt
	// up to MaxBackoff (defaults 1 s and 10 min).
	Workers     int
	Batch       int
	Poll        time.Duration
	Lease       time.Duration
	MaxAttempts int
	Backoff     time.Duration
	MaxBackoff  time.Duration

	sent, failed atomic.Int64
}

// Sent and Failed count delivery outcomes since start.
func (o *Outbox) Sent() int64   { return o.sent.Load() }
func (o *Outbox) Failed() int64 { return o.failed.Load() }

// Run delivers due messages until ctx is done.
func (o *Outbox) Run(ctx context.Context) {
	if o.Workers <= 0 {
		o.Workers = 1
	}
	if o.Batch <= 0 {
		o.Batch = 2 * o.Workers
	}
	if o.Poll <= 0 {
		o.Poll = 250 * time.Millisecond
	}
	if o.Lease <= 0 {
		o.Lease = time.Minute
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 10
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 10 * time.Minute
	}
	for ctx.Err() == nil {
		msgs, err := o.claim(ctx)
		if err != nil && ctx.Err() == nil {
			o.Log.Warn("claim notifications", zap.Error(err))
		}
		if len(msgs) == 0 {
			select {
			case <-time.After(o.Poll):
			case <-ctx.Done():
			}
			continue
		}
		o.deliver(ctx, msgs)
	}
}

func (o *Outbox) claim(ctx context.Context) ([]Message, error) {
	// The order's status and total come along for the templates; only the
	// notification rows are locked.
	const q = `UPDATE notifications n SET attempts = n.attempts + 1, next_attempt_at = now() + $2::interval
		FROM (SELECT nn.id, coalesce(o.status, '') AS status, coalesce(o.failure_reason, '') AS reason,
		             coalesce(o.total_cents, 0) AS total_cents, coalesce(o.currency, '') AS currency
		      FROM notifications nn LEFT JOIN orders o ON o.order_id = nn.order_id
		      WHERE nn.region = $3 AND nn.status = 'pending' AND nn.next_attempt_at <= now()
		      ORDER BY nn.next_attempt_at LIMIT $1 FOR UPDATE OF nn SKIP LOCKED) due
		WHERE n.id = due.id
		RETURNING n.id, n.order_id, n.kind, coalesce(n.recipient, ''), n.recipient_enc, n.subject, n.body, n.attempts,
			due.status, due.reason, due.total_cents, due.currency`
	ctx, cancel := context.WithTimeout(ctx, db.StatementTimeout)
	defer cancel()
	rows, err := o.DB.Query(ctx, q, o.Batch, o.Lease.String(), o.Region)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Message
	for rows.Next() {
		var m Message
		if err := rows.Scan(&m.ID, &m.OrderID, &m.Kind, &m.Recipient, &m.sealed, &m.Subject, &m.Body, &m.Attempts,
			&m.Status, &m.Reason, &m.TotalCents, &m.Currency); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// recipient decrypts m's address; a row from before migration 0006 that
// `orderflow migrate` has not encrypted yet holds it in plaintext. A key
// missing from the keyring fails the attempt (naming the key id), which is
// retried and in the end given up as dead (a Permanent failure), never sent
// to a wrong address.
func (o *Outbox) recipient(m Message) (string, error) {
	if m.sealed == nil {
		if m.Recipient == "" {
			return "", Permanent(errors.New("no recipient"))
		}
		return m.Recipient, nil
	}
	if o.PII == nil {
		return "", Permanent(errors.New("no PII keyring configured"))
	}
	r, err := o.PII.OpenString(m.sealed, m.OrderID)
	if err != nil {
		return "", Permanent(fmt.Errorf("decrypt recipient: %w", err))
	}
	return r, nil
}

// deliver sends a claimed batch, at most Workers at a time, then records
// every outcome in one round trip.
func (o *Outbox) deliver(ctx context.Context, msgs []Message) {
	errs := make([]error, len(msgs))
	sem := make(chan struct{}, o.Workers)
	var wg sync.WaitGroup
	for i, m := range msgs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if m.Recipient, errs[i] = o.recipient(m); errs[i] != nil {
				return
			}
			sctx, cancel := context.WithTimeout(ctx, o.Lease/2)
			defer cancel()
			errs[i] = o.Mailer.Send(sctx, m)
		}()
	}
	wg.Wait()
	// A message cancelled meanwhile (its customer's data erased) stays so.
	const (
		qSent = `UPDATE notifications SET status = 'sent', sent_at = now(), last_error = NULL WHERE id = $1 AND status = 'pending'`
		// The backoff doubles from $5 with each attempt, up to $6; only a
		// permanent failure ($4) counts towards giving the message up.
		qFailed = `UPDATE notifications SET status = CASE WHEN $4 AND attempts >= $3 THEN 'dead' ELSE 'pending' END,
			next_attempt_at = now() + least($5::interval * power(2, least(attempts - 1, 30)), $6::interval), last_error = $2
			WHERE id = $1 AND status = 'pending'`
	)
	b := &pgx.Batch{}
	for i, m := range msgs {
		if errs[i] == nil {
			b.Queue(qSent, m.ID)
			o.sent.Add(1)
			continue
		}
		b.Queue(qFailed, m.ID, errs[i].Error(), o.MaxAttempts, IsPermanent(errs[i]), o.Backoff.String(), o.MaxBackoff.String())
		o.failed.Add(1)
		o.Log.Warn("notification failed", zap.String("order_id", m.OrderID), zap.String("kind", m.Kind), zap.Int("attempts", m.Attempts), zap.Error(errs[i]))
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), db.StatementTimeout)
	defer cancel()
	if err := o.DB.SendBatch(rctx, b).Close(); err != nil {
		// The lease expires and the batch is sent again: at least once.
		o.Log.Warn("record notification results", zap.Error(err))
	}
}
