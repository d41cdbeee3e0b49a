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
	"sync/atomic"
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
	ttl      atomic.Int64   // AuthorizationTTL in nanoseconds; 0 is the default
}

// Charge charges a test token once per idempotency key; see the payment.Token
// constants for their behaviour. A replay with the same key and parameters
// returns the first charge; with different parameters it is
// wire.ErrIdempotencyMismatch. A decline is a *payment.DeclinedError; errTransient
// is the simulated network's temporary failure.
func (l *Ledger) Charge(ctx context.Context, req payment.ChargeRequest) (payment.Charge, error) {
	return l.take(ctx, kindCharge, req)
}

// Authorize holds an amount on a test token's card once per idempotency key,
// as Charge charges it (the same tokens, replays and errors), until it is
// captured, voided or expires AuthorizationTTL after it was made.
func (l *Ledger) Authorize(ctx context.Context, req payment.ChargeRequest) (payment.Charge, error) {
	return l.take(ctx, kindAuthorization, req)
}

// The kinds of ledger row that take (or hold) money from a card.
const (
	kindCharge        = "charge"
	kindAuthorization = "authorization"
)

// DefaultAuthorizationTTL is how long an authorization holds unless the
// instance is told otherwise: 7 days, as card networks commonly allow.
const DefaultAuthorizationTTL = 7 * 24 * time.Hour

// SetAuthorizationTTL sets how long the authorizations made from now on
// hold; 0 restores DefaultAuthorizationTTL. Tests make it short to see
// authorizations expire.
func (l *Ledger) SetAuthorizationTTL(d time.Duration) { l.ttl.Store(int64(d)) }

// AuthorizationTTL is how long a new authorization holds.
func (l *Ledger) AuthorizationTTL() time.Duration {
	if d := time.Duration(l.ttl.Load()); d > 0 {
		return d
	}
	return DefaultAuthorizationTTL
}

func (l *Ledger) take(ctx context.Context, kind string, req payment.ChargeRequest) (payment.Charge, error) {
	if ch, found, err := l.existingCharge(ctx, kind, req); err != nil || found {
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
	default:
		return payment.Charge{}, &payment.DeclinedError{Code: "invalid_token", Message: "No such token: '" + req.Token + "'."}
	}
	// An authorization's expiry is taken on the database's clock, as every
	// check of it is.
	const q = `INSERT INTO paysim.ledger (instance, idempotency_key, kind, ref, token, amount_cents, currency, description, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, NULLIF($8, ''),
		        CASE WHEN $3 = 'authorization' THEN now() + make_interval(secs => $9::float8 / 1e9) END)
		ON CONFLICT (instance, idempotency_key) DO NOTHING
		RETURNING coalesce(expires_at, 'epoch')`
	prefix := "ch_"
	if kind == kindAuthorization {
		prefix = "pi_"
	}
	ch := payment.Charge{ID: prefix + uuid.NewString(), AmountCents: req.AmountCents, Currency: req.Currency}
	ictx, cancel := context.WithTimeout(ctx, db.StatementTimeout)
	defer cancel()
	err := l.DB.QueryRow(ictx, q, l.Instance, req.IdempotencyKey, kind, ch.ID, req.Token, req.AmountCents, req.Currency,
		req.Description, float64(l.AuthorizationTTL())).Scan(&ch.ExpiresAt)
	if err == nil {
		return expiry(ch), nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return payment.Charge{}, fmt.Errorf("ledger %s: %w", kind, err)
	}
	// A concurrent request with the same key won: answer with its charge.
	ch, found, err := l.existingCharge(ctx, kind, req)
	if err == nil && !found {
		err = fmt.Errorf("ledger %s: key %s neither inserted nor found", kind, req.IdempotencyKey)
	}
	return ch, err
}

// existingCharge returns the charge (or authorization) already made with
// the request's key, or wire.ErrIdempotencyMismatch when that was made
// with other parameters or is of another kind.
func (l *Ledger) existingCharge(ctx context.Context, kind string, req payment.ChargeRequest) (payment.Charge, bool, error) {
	const q = `SELECT kind, ref, coalesce(token, ''), amount_cents, currency, coalesce(expires_at, 'epoch')
		FROM paysim.ledger WHERE instance = $1 AND idempotency_key = $2`
	ctx, cancel := context.WithTimeout(ctx, db.StatementTimeout)
	defer cancel()
	var got, token string
	var ch payment.Charge
	err := l.DB.QueryRow(ctx, q, l.Instance, req.IdempotencyKey).Scan(&got, &ch.ID, &token, &ch.AmountCents, &ch.Currency, &ch.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return payment.Charge{}, false, nil
	}
	if err != nil {
		return payment.Charge{}, false, fmt.Errorf("ledger %s: %w", kind, err)
	}
	if got != kind || token != req.Token || ch.AmountCents != req.AmountCents || ch.Currency != req.Currency {
		return payment.Charge{}, false, fmt.Errorf("%s %s: %w", kind, req.IdempotencyKey, wire.ErrIdempotencyMismatch)
	}
	return expiry(ch), true, nil
}

// expiry turns the epoch a charge's missing expiry reads as into the zero time.
func expiry(ch payment.Charge) payment.Charge {
	if ch.ExpiresAt.Unix() == 0 {
		ch.ExpiresAt = time.Time{}
	} else {
		ch.ExpiresAt = ch.ExpiresAt.UTC()
	}
	return ch
}

// Refund returns money of one of this instance's charges or
// authorizations, once per idempotency key: of a charge what it took, of an
// authorization what was captured of it. AmountCents 0 refunds what is left;
// of an authorization it also voids what is left uncaptured (the void's key
// is the refund's with "/void" appended), and it may then refund nothing.
// Refunds never add up to more than was taken: a larger one is
// wire.ErrRefundTooLarge, an unknown charge wire.ErrNoSuchCharge, a
// replayed key with another charge or amount wire.ErrIdempotencyMismatch.
// The Refund answered holds the amount refunded.
func (l *Ledger) Refund(ctx context.Context, req payment.RefundRequest) (payment.Refund, payment.Charge, error) {
	var rf payment.Refund
	var par parent
	err := db.InTx(ctx, l.DB, func(tx pgx.Tx) error {
		var err error
		if par, err = l.lockParent(ctx, tx, req.ChargeID); err != nil {
			return fmt.Errorf("refund %s: %w", req.IdempotencyKey, err)
		}
		row, found, err := l.keyRow(ctx, tx, req.IdempotencyKey)
		if err != nil {
			return fmt.Errorf("ledger refund: %w", err)
		}
		if found {
			if row.kind != "refund" || row.chargeRef != req.ChargeID || (req.AmountCents != 0 && row.amount != req.AmountCents) {
				return fmt.Errorf("refund %s: %w", req.IdempotencyKey, wire.ErrIdempotencyMismatch)
			}
			rf = payment.Refund{ID: row.ref, AmountCents: row.amount}
			return nil
		}
		full := req.AmountCents == 0
		if full && par.kind == kindAuthorization {
			// A full refund that had only the rest to void left its void.
			if v, found, err := l.keyRow(ctx, tx, req.IdempotencyKey+voidSuffix); err != nil {
				return fmt.Errorf("ledger refund: %w", err)
			} else if found && v.chargeRef == req.ChargeID {
				rf = payment.Refund{ID: v.ref}
				return nil
			}
		}
		left := par.paid() - par.refunded
		amount := req.AmountCents
		if full {
			amount = left
			if par.open() {
				if rf.ID, _, err = l.insertVoid(ctx, tx, req.IdempotencyKey+voidSuffix, par); err != nil {
					return err
				}
				if amount == 0 {
					return nil
				}
			}
		}
		if amount <= 0 || amount > left {
			return fmt.Errorf("refund %s: %w: %d asked, %d of %d left", req.IdempotencyKey, wire.ErrRefundTooLarge,
				amount, left, par.paid())
		}
		rf = payment.Refund{ID: "re_" + uuid.NewString(), AmountCents: amount}
		const qInsert = `INSERT INTO paysim.ledger (instance, idempotency_key, kind, ref, charge_ref, amount_cents, currency)
			VALUES ($1, $2, 'refund', $3, $4, $5, $6)`
		if _, err := tx.Exec(ctx, qInsert, l.Instance, req.IdempotencyKey, rf.ID, req.ChargeID, amount, par.currency); err != nil {
			return fmt.Errorf("ledger refund: %w", err)
		}
		return nil
	})
	if err != nil {
		return payment.Refund{}, payment.Charge{}, err
	}
	return rf, payment.Charge{ID: par.ref, AmountCents: par.amount, Currency: par.currency}, nil
}

// FindCharge returns the charge or authorization this instance made with an
// idempotency key, if any.
func (l *Ledger) FindCharge(ctx context.Context, key string) (payment.Charge, bool, error) {
	const q = `SELECT ref, amount_cents, currency, coalesce(expires_at, 'epoch') FROM paysim.ledger
		WHERE instance = $1 AND idempotency_key = $2 AND kind IN ('charge', 'authorization')`
	ctx, cancel := context.WithTimeout(ctx, db.StatementTimeout)
	defer cancel()
	var ch payment.Charge
	err := l.DB.QueryRow(ctx, q, l.Instance, key).Scan(&ch.ID, &ch.AmountCents, &ch.Currency, &ch.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return payment.Charge{}, false, nil
	}
	if err != nil {
		return payment.Charge{}, false, fmt.Errorf("ledger find charge: %w", err)
	}
	return expiry(ch), true, nil
}

// Entry is a charge or authorization as the ledger lists it: the instance
// that made it, and the charge with its idempotency key, what of it was
// captured and refunded, and its status.
type Entry struct {
	Instance string
	payment.LedgerCharge
}

// qList lists charges and authorizations in (created_at, ref) order: of one
// instance ($1; an empty one means every instance), created in [$2, $3),
// after the charge $4 (empty: from the start), at most $5; each with the
// sums of its refunds and captures and whether it was voided or finally
// captured.
const qList = `SELECT c.instance, c.ref, c.idempotency_key, c.kind, c.amount_cents, c.currency, c.created_at,
		coalesce(c.expires_at, 'epoch'), coalesce(c.expires_at <= now(), false),
		coalesce(x.captured, 0)::bigint, coalesce(x.refunded, 0)::bigint, coalesce(x.voided, false), coalesce(x.final, false)
	FROM paysim.ledger c
	LEFT JOIN LATERAL (
		SELECT sum(r.amount_cents) FILTER (WHERE r.kind = 'capture') AS captured,
		       sum(r.amount_cents) FILTER (WHERE r.kind = 'refund') AS refunded,
		       bool_or(r.kind = 'void') AS voided, bool_or(r.kind = 'capture' AND r.final) AS final
		FROM paysim.ledger r WHERE r.instance = c.instance AND r.charge_ref = c.ref) x ON true
	WHERE ($1 = '' OR c.instance = $1) AND c.kind IN ('charge', 'authorization') AND c.created_at >= $2 AND c.created_at < $3
	  AND ($4 = '' OR (c.created_at, c.ref) > (SELECT a.created_at, a.ref FROM paysim.ledger a WHERE a.ref = $4))
	ORDER BY c.created_at, c.ref LIMIT $5`

// List returns up to limit charges and authorizations of the instance (of
// every instance when the Ledger's Instance is "") created in [since,
// until), after the charge after ("" from the first), in order of
// creation, each with what of it was captured and refunded.
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
		var p parent
		if err := rows.Scan(&e.Instance, &p.ref, &e.IdempotencyKey, &p.kind, &p.amount, &p.currency, &e.Created,
			&e.ExpiresAt, &p.expired, &p.captured, &p.refunded, &p.voided, &p.final); err != nil {
			return nil, fmt.Errorf("ledger list: %w", err)
		}
		e.ID, e.AmountCents, e.Currency, e.RefundedCents = p.ref, p.amount, p.currency, p.refunded
		e.Authorization, e.CapturedCents, e.Status = p.kind == kindAuthorization, p.paid(), p.status()
		e.ExpiresAt = expiry(payment.Charge{ExpiresAt: e.ExpiresAt}).ExpiresAt
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
