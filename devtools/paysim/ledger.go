// Package paysim is orderflow's simulated card provider: an HTTP service with
// a Stripe-like API (Server), its PostgreSQL ledger (Ledger), the faults it
// can be told to inject (Faults), and the HTTP client the workers use to talk
// to it (Client). Only the card network behind it is simulated; idempotency,
// persistence and the network between the worker and the provider are real.
package paysim

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderflow/orderflow/activities/payment"
	wire "github.com/orderflow/orderflow/activities/payment/paysim"
	"github.com/orderflow/orderflow/internal/db"
)

// errTransient is the simulated card network's temporary failure
// (tok_flaky's first attempts, tok_unavailable always).
var errTransient = errors.New("the card network is temporarily unavailable")

// Ledger is one instance's book of charges and refunds in the paysim.ledger
// table: one row per (instance, idempotency key), so a replayed request gets
// the first answer across restarts, and instances sharing a database never
// see each other's rows.
type Ledger struct {
	DB       *pgxpool.Pool
	Instance string

	mu       sync.Mutex
	attempts map[string]int // tok_flaky attempts per idempotency key
}

// Charge charges a test token once per idempotency key; see the payment.Token
// constants for their behaviour. A replay with the same key and parameters
// returns the first charge; with different parameters it is
// wire.ErrIdempotencyMismatch. A decline is a *payment.DeclinedError; errTransient
// is the simulated network's temporary failure.
func (l *Ledger) Charge(ctx context.Context, req payment.ChargeRequest) (payment.Charge, error) {
	if ch, found, err := l.existingCharge(ctx, req); err != nil || found {
		return ch, err
	}
	switch req.Token {
	case payment.TokenVisa, payment.TokenMastercard:
	case payment.TokenChargeDeclined:
		return payment.Charge{}, &payment.DeclinedError{Code: "card_declined", Message: "Your card was declined."}
	case payment.TokenFlaky:
		if l.attempt(req.IdempotencyKey) <= 2 {
			return payment.Charge{}, errTransient
		}
	case payment.TokenUnavailable:
		return payment.Charge{}, errTransient
	case payment.TokenThreeDSecure: // webhooks.go
		return l.requireAction(ctx, req)
	default:
		return payment.Charge{}, &payment.DeclinedError{Code: "invalid_token", Message: "No such token: '" + req.Token + "'."}
	}
	const q = `INSERT INTO paysim.ledger (instance, idempotency_key, kind, ref, token, amount_cents, currency, description)
		VALUES ($1, $2, 'charge', $3, $4, $5, $6, NULLIF($7, '')) ON CONFLICT (instance, idempotency_key) DO NOTHING`
	ch := payment.Charge{ID: "ch_" + uuid.NewString(), AmountCents: req.AmountCents, Currency: req.Currency}
	ictx, cancel := context.WithTimeout(ctx, db.StatementTimeout)
	defer cancel()
	tag, err := l.DB.Exec(ictx, q, l.Instance, req.IdempotencyKey, ch.ID, req.Token, ch.AmountCents, ch.Currency, req.Description)
	if err != nil {
		return payment.Charge{}, fmt.Errorf("ledger charge: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return ch, nil
	}
	// A concurrent request with the same key won: answer with its charge.
	ch, found, err := l.existingCharge(ctx, req)
	if err == nil && !found {
		err = fmt.Errorf("ledger charge: key %s neither inserted nor found", req.IdempotencyKey)
	}
	return ch, err
}

// existingCharge returns the charge already made with the request's key, or
// wire.ErrIdempotencyMismatch when that charge was made with other parameters.
func (l *Ledger) existingCharge(ctx context.Context, req payment.ChargeRequest) (payment.Charge, bool, error) {
	const q = `SELECT kind, ref, coalesce(token, ''), amount_cents, currency FROM paysim.ledger WHERE instance = $1 AND idempotency_key = $2`
	ctx, cancel := context.WithTimeout(ctx, db.StatementTimeout)
	defer cancel()
	var kind, token string
	var ch payment.Charge
	err := l.DB.QueryRow(ctx, q, l.Instance, req.IdempotencyKey).Scan(&kind, &ch.ID, &token, &ch.AmountCents, &ch.Currency)
	if errors.Is(err, pgx.ErrNoRows) {
		return payment.Charge{}, false, nil
	}
	if err != nil {
		return payment.Charge{}, false, fmt.Errorf("ledger charge: %w", err)
	}
	if kind != "charge" || token != req.Token || ch.AmountCents != req.AmountCents || ch.Currency != req.Currency {
		return payment.Charge{}, false, fmt.Errorf("charge %s: %w", req.IdempotencyKey, wire.ErrIdempotencyMismatch)
	}
	return ch, true, nil
}

// Refund returns money of one of this instance's charges, once per
// idempotency key. AmountCents 0 refunds what is left of the charge. Refunds
// of one charge never add up to more than it: a larger one is
// wire.ErrRefundTooLarge, an unknown charge wire.ErrNoSuchCharge, a replayed key with
// another charge or amount wire.ErrIdempotencyMismatch.
func (l *Ledger) Refund(ctx context.Context, req payment.RefundRequest) (payment.Refund, payment.Charge, error) {
	var rf payment.Refund
	var ch payment.Charge
	err := db.InTx(ctx, l.DB, func(tx pgx.Tx) error {
		// Lock the charge so concurrent refunds of it are counted one at a time.
		const qCharge = `SELECT ref, amount_cents, currency FROM paysim.ledger
			WHERE instance = $1 AND ref = $2 AND kind = 'charge' FOR UPDATE`
		err := tx.QueryRow(ctx, qCharge, l.Instance, req.ChargeID).Scan(&ch.ID, &ch.AmountCents, &ch.Currency)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("refund %s: %w: %s", req.IdempotencyKey, wire.ErrNoSuchCharge, req.ChargeID)
		}
		if err != nil {
			return fmt.Errorf("ledger refund: %w", err)
		}
		var kind, chargeRef string
		var amount int64
		const qKey = `SELECT kind, ref, coalesce(charge_ref, ''), amount_cents FROM paysim.ledger WHERE instance = $1 AND idempotency_key = $2`
		err = tx.QueryRow(ctx, qKey, l.Instance, req.IdempotencyKey).Scan(&kind, &rf.ID, &chargeRef, &amount)
		switch {
		case err == nil:
			if kind != "refund" || chargeRef != req.ChargeID || (req.AmountCents != 0 && amount != req.AmountCents) {
				return fmt.Errorf("refund %s: %w", req.IdempotencyKey, wire.ErrIdempotencyMismatch)
			}
			return nil
		case !errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("ledger refund: %w", err)
		}
		var refunded int64
		const qRefunded = `SELECT coalesce(sum(amount_cents), 0) FROM paysim.ledger WHERE instance = $1 AND charge_ref = $2 AND kind = 'refund'`
		if err := tx.QueryRow(ctx, qRefunded, l.Instance, req.ChargeID).Scan(&refunded); err != nil {
			return fmt.Errorf("ledger refund: %w", err)
		}
		amount = req.AmountCents
		if amount == 0 {
			amount = ch.AmountCents - refunded
		}
		if amount <= 0 || refunded+amount > ch.AmountCents {
			return fmt.Errorf("refund %s: %w: %d asked, %d of %d left", req.IdempotencyKey, wire.ErrRefundTooLarge,
				amount, ch.AmountCents-refunded, ch.AmountCents)
		}
		rf.ID = "re_" + uuid.NewString()
		const qInsert = `INSERT INTO paysim.ledger (instance, idempotency_key, kind, ref, charge_ref, amount_cents, currency)
			VALUES ($1, $2, 'refund', $3, $4, $5, $6)`
		if _, err := tx.Exec(ctx, qInsert, l.Instance, req.IdempotencyKey, rf.ID, req.ChargeID, amount, ch.Currency); err != nil {
			return fmt.Errorf("ledger refund: %w", err)
		}
		return nil
	})
	if err != nil {
		return payment.Refund{}, payment.Charge{}, err
	}
	return rf, ch, nil
}

// FindCharge returns the charge this instance made with an idempotency key, if any.
func (l *Ledger) FindCharge(ctx context.Context, key string) (payment.Charge, bool, error) {
	const q = `SELECT ref, amount_cents, currency FROM paysim.ledger WHERE instance = $1 AND idempotency_key = $2 AND kind = 'charge'`
	ctx, cancel := context.WithTimeout(ctx, db.StatementTimeout)
	defer cancel()
	var ch payment.Charge
	err := l.DB.QueryRow(ctx, q, l.Instance, key).Scan(&ch.ID, &ch.AmountCents, &ch.Currency)
	if errors.Is(err, pgx.ErrNoRows) {
		return payment.Charge{}, false, nil
	}
	if err != nil {
		return payment.Charge{}, false, fmt.Errorf("ledger find charge: %w", err)
	}
	return ch, true, nil
}

// Entry is a charge as the ledger lists it: the instance that made it, and
// the charge with its idempotency key and what of it was refunded.
type Entry struct {
	Instance string
	payment.LedgerCharge
}

// qList lists charges in (created_at, ref) order: of one instance ($1; an
// empty one means every instance), created in [$2, $3), after the charge
// $4 (empty: from the start), at most $5.
const qList = `SELECT c.instance, c.ref, c.idempotency_key, c.amount_cents, c.currency, c.created_at,
		coalesce((SELECT sum(r.amount_cents) FROM paysim.ledger r
		          WHERE r.instance = c.instance AND r.charge_ref = c.ref AND r.kind = 'refund'), 0)::bigint
	FROM paysim.ledger c
	WHERE ($1 = '' OR c.instance = $1) AND c.kind = 'charge' AND c.created_at >= $2 AND c.created_at < $3
	  AND ($4 = '' OR (c.created_at, c.ref) > (SELECT a.created_at, a.ref FROM paysim.ledger a WHERE a.ref = $4))
	ORDER BY c.created_at, c.ref LIMIT $5`

// List returns up to limit charges of the instance (of every instance when
// the Ledger's Instance is "") created in [since, until), after the charge
// after ("" from the first), in order of creation, each with the sum of its
// refunds.
func (l *Ledger) List(ctx context.Context, since, until time.Time, after string, limit int) ([]Entry, error) {
	ctx, cancel := context.WithTimeout(ctx, db.StatementTimeout)
	defer cancel()
	rows, err := l.DB.Query(ctx, qList, l.Instance, since, until, after, limit)
	if err != nil {
		return nil, fmt.Errorf("ledger list: %w", err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var e Entry
		if err := rows.Scan(&e.Instance, &e.ID, &e.IdempotencyKey, &e.AmountCents, &e.Currency, &e.Created, &e.RefundedCents); err != nil {
			return nil, fmt.Errorf("ledger list: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ledger list: %w", err)
	}
	return out, nil
}

// Ping checks that the ledger's database answers.
func (l *Ledger) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, db.StatementTimeout)
	defer cancel()
	if err := l.DB.Ping(ctx); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	return nil
}

// attempt counts tok_flaky attempts per key. The count lives in the process:
// a restarted provider fails a flaky key's next two attempts again, which is
// what a flaky network does.
func (l *Ledger) attempt(key string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.attempts == nil {
		l.attempts = map[string]int{}
	}
	l.attempts[key]++
	return l.attempts[key]
}
