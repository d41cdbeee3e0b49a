package paysim

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/orderflow/orderflow/activities/payment"
	wire "github.com/orderflow/orderflow/activities/payment/paysim"
	"github.com/orderflow/orderflow/internal/db"
)

// The ledger's invariants for authorizations, which Capture, Void and
// Refund keep under a lock of the authorization's row: what is captured
// never exceeds what was authorized; what is refunded never exceeds what was
// captured; nothing is captured after a void, a final capture or the
// authorization's expiry.

// voidSuffix turns a full refund's key into the key of the void that
// releases the rest of its authorization.
const voidSuffix = "/void"

// parent is a charge or authorization with what its captures, refunds and
// voids add up to, as of the moment it was read.
type parent struct {
	kind, ref, currency        string
	amount, captured, refunded int64
	expired, voided, final     bool
}

// paid is what the card was charged: a charge's amount, an authorization's
// captures.
func (p parent) paid() int64 {
	if p.kind == kindAuthorization {
		return p.captured
	}
	return p.amount
}

// open reports whether an authorization may still be captured.
func (p parent) open() bool {
	return p.kind == kindAuthorization && !p.voided && !p.final && !p.expired
}

// status is the API's word for the charge's state.
func (p parent) status() string {
	switch {
	case p.kind != kindAuthorization:
		return wire.StatusSucceeded
	case p.final:
		return wire.StatusCaptured
	case p.voided:
		return wire.StatusCanceled
	case p.expired:
		return wire.StatusExpired
	}
	return wire.StatusRequiresCapture
}

// lockParent locks a charge or authorization of the instance, so that its
// captures, refunds and voids are decided one at a time, and reads what
// they add up to. An unknown one is wire.ErrNoSuchCharge.
func (l *Ledger) lockParent(ctx context.Context, tx pgx.Tx, ref string) (parent, error) {
	const qLock = `SELECT kind, ref, amount_cents, currency, coalesce(expires_at <= now(), false) FROM paysim.ledger
		WHERE instance = $1 AND ref = $2 AND kind IN ('charge', 'authorization') FOR UPDATE`
	const qSums = `SELECT coalesce(sum(amount_cents) FILTER (WHERE kind = 'capture'), 0)::bigint,
		coalesce(sum(amount_cents) FILTER (WHERE kind = 'refund'), 0)::bigint,
		coalesce(bool_or(kind = 'void'), false), coalesce(bool_or(kind = 'capture' AND final), false)
		FROM paysim.ledger WHERE instance = $1 AND charge_ref = $2`
	var p parent
	err := tx.QueryRow(ctx, qLock, l.Instance, ref).Scan(&p.kind, &p.ref, &p.amount, &p.currency, &p.expired)
	if errors.Is(err, pgx.ErrNoRows) {
		return parent{}, fmt.Errorf("%w: %s", wire.ErrNoSuchCharge, ref)
	}
	if err != nil {
		return parent{}, fmt.Errorf("ledger: %w", err)
	}
	if err := tx.QueryRow(ctx, qSums, l.Instance, ref).Scan(&p.captured, &p.refunded, &p.voided, &p.final); err != nil {
		return parent{}, fmt.Errorf("ledger: %w", err)
	}
	return p, nil
}

// keyed is the ledger row an idempotency key already holds.
type keyed struct {
	kind, ref, chargeRef string
	amount               int64
	final                bool
}

func (l *Ledger) keyRow(ctx context.Context, tx pgx.Tx, key string) (keyed, bool, error) {
	const q = `SELECT kind, ref, coalesce(charge_ref, ''), amount_cents, final FROM paysim.ledger WHERE instance = $1 AND idempotency_key = $2`
	var k keyed
	err := tx.QueryRow(ctx, q, l.Instance, key).Scan(&k.kind, &k.ref, &k.chargeRef, &k.amount, &k.final)
	if errors.Is(err, pgx.ErrNoRows) {
		return keyed{}, false, nil
	}
	if err != nil {
		return keyed{}, false, err
	}
	return k, true, nil
}

// Capture takes req.AmountCents of an authorization of the instance, once
// per idempotency key; a final capture (req.Final) releases the rest, which
// it answers as ReleasedCents, and closes the authorization. A capture of
// more than is left uncaptured is wire.ErrCaptureTooLarge; of a voided or
// finally captured authorization wire.ErrAuthorizationClosed; of an expired
// one wire.ErrAuthorizationExpired; of a charge wire.ErrNotAnAuthorization;
// a replayed key with other parameters wire.ErrIdempotencyMismatch.
func (l *Ledger) Capture(ctx context.Context, req payment.CaptureRequest) (payment.Capture, error) {
	var cp payment.Capture
	err := db.InTx(ctx, l.DB, func(tx pgx.Tx) error {
		par, err := l.authorization(ctx, tx, req.ChargeID, "capture "+req.IdempotencyKey)
		if err != nil {
			return err
		}
		row, found, err := l.keyRow(ctx, tx, req.IdempotencyKey)
		if err != nil {
			return fmt.Errorf("ledger capture: %w", err)
		}
		if found {
			if row.kind != "capture" || row.chargeRef != req.ChargeID || row.amount != req.AmountCents || row.final != req.Final {
				return fmt.Errorf("capture %s: %w", req.IdempotencyKey, wire.ErrIdempotencyMismatch)
			}
			cp = payment.Capture{ID: row.ref, AmountCents: row.amount}
			if row.final {
				cp.ReleasedCents = par.amount - par.captured
			}
			return nil
		}
		switch {
		case par.voided || par.final:
			return fmt.Errorf("capture %s: %w: %s is %s", req.IdempotencyKey, wire.ErrAuthorizationClosed, par.ref, par.status())
		case par.expired:
			return fmt.Errorf("capture %s: %w: %s", req.IdempotencyKey, wire.ErrAuthorizationExpired, par.ref)
		case par.captured+req.AmountCents > par.amount:
			return fmt.Errorf("capture %s: %w by %d: %d asked, %d of %d left", req.IdempotencyKey, wire.ErrCaptureTooLarge,
				par.captured+req.AmountCents-par.amount, req.AmountCents, par.amount-par.captured, par.amount)
		}
		cp = payment.Capture{ID: "cp_" + uuid.NewString(), AmountCents: req.AmountCents}
		if req.Final {
			cp.ReleasedCents = par.amount - par.captured - req.AmountCents
		}
		const qInsert = `INSERT INTO paysim.ledger (instance, idempotency_key, kind, ref, charge_ref, amount_cents, currency, final)
			VALUES ($1, $2, 'capture', $3, $4, $5, $6, $7)`
		if _, err := tx.Exec(ctx, qInsert, l.Instance, req.IdempotencyKey, cp.ID, par.ref, req.AmountCents, par.currency, req.Final); err != nil {
			return fmt.Errorf("ledger capture: %w", err)
		}
		return nil
	})
	if err != nil {
		return payment.Capture{}, err
	}
	return cp, nil
}

// Void releases what is left uncaptured of an authorization of the
// instance, once per idempotency key, and answers how much that was. An
// authorization already voided, finally captured or expired has nothing
// left to release: 0, and nothing is written. A charge is
// wire.ErrNotAnAuthorization; a key used for something else
// wire.ErrIdempotencyMismatch.
func (l *Ledger) Void(ctx context.Context, req payment.VoidRequest) (ref string, released int64, err error) {
	err = db.InTx(ctx, l.DB, func(tx pgx.Tx) error {
		par, err := l.authorization(ctx, tx, req.ChargeID, "void "+req.IdempotencyKey)
		if err != nil {
			return err
		}
		row, found, err := l.keyRow(ctx, tx, req.IdempotencyKey)
		if err != nil {
			return fmt.Errorf("ledger void: %w", err)
		}
		if found {
			if row.kind != "void" || row.chargeRef != req.ChargeID {
				return fmt.Errorf("void %s: %w", req.IdempotencyKey, wire.ErrIdempotencyMismatch)
			}
			ref, released = row.ref, row.amount
			return nil
		}
		if !par.open() {
			return nil
		}
		ref, released, err = l.insertVoid(ctx, tx, req.IdempotencyKey, par)
		return err
	})
	if err != nil {
		return "", 0, err
	}
	return ref, released, nil
}

// authorization locks an authorization (see lockParent); a charge is
// wire.ErrNotAnAuthorization.
func (l *Ledger) authorization(ctx context.Context, tx pgx.Tx, ref, what string) (parent, error) {
	par, err := l.lockParent(ctx, tx, ref)
	if err != nil {
		return parent{}, fmt.Errorf("%s: %w", what, err)
	}
	if par.kind != kindAuthorization {
		return parent{}, fmt.Errorf("%s: %w: %s", what, wire.ErrNotAnAuthorization, ref)
	}
	return par, nil
}

// insertVoid voids an open authorization under key: it releases what is
// left uncaptured.
func (l *Ledger) insertVoid(ctx context.Context, tx pgx.Tx, key string, par parent) (string, int64, error) {
	const q = `INSERT INTO paysim.ledger (instance, idempotency_key, kind, ref, charge_ref, amount_cents, currency)
		VALUES ($1, $2, 'void', $3, $4, $5, $6)`
	ref, released := "vo_"+uuid.NewString(), par.amount-par.captured
	if _, err := tx.Exec(ctx, q, l.Instance, key, ref, par.ref, released, par.currency); err != nil {
		return "", 0, fmt.Errorf("ledger void: %w", err)
	}
	return ref, released, nil
}
