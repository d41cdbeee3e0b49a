package activities

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/activity"

	"github.com/orderflow/orderflow/internal/db"
)

// PaymentProvider is a card processor. Implementations must honour the
// idempotency key: a repeated Charge or Refund with the same key returns the
// first answer and never moves money twice.
type PaymentProvider interface {
	// Name identifies the provider in the payment records.
	Name() string
	// Charge takes money from a payment token. A refusal by the card network
	// is a *DeclinedError; any other error is transient and may be retried.
	Charge(ctx context.Context, req ChargeRequest) (ProviderCharge, error)
	// Refund returns a charge's money in full.
	Refund(ctx context.Context, req RefundRequest) (ProviderRefund, error)
	// FindCharge looks up the charge made with an idempotency key, so that a
	// charge whose answer was lost can still be found and refunded.
	FindCharge(ctx context.Context, idempotencyKey string) (ProviderCharge, bool, error)
}

// ChargeRequest asks a provider for money.
type ChargeRequest struct {
	IdempotencyKey string
	Token          string
	AmountCents    int64
	Currency       string
	Description    string
}

// ProviderCharge is a provider's record of a charge.
type ProviderCharge struct {
	ID          string
	AmountCents int64
	Currency    string
}

// RefundRequest asks a provider to return a charge.
type RefundRequest struct {
	IdempotencyKey string
	ChargeID       string
	AmountCents    int64
	Currency       string
}

// ProviderRefund is a provider's record of a refund.
type ProviderRefund struct {
	ID string
}

// DeclinedError is a provider's definitive refusal of a charge.
type DeclinedError struct {
	Code    string
	Message string
}

func (e *DeclinedError) Error() string { return "declined: " + e.Code + ": " + e.Message }

// Payment charges and refunds orders through a provider and keeps the audit
// trail: one payments row per order and an append-only payment_transactions log.
type Payment struct {
	DB       *pgxpool.Pool
	Provider PaymentProvider
}

// ChargeInput is what to charge for an order.
type ChargeInput struct {
	OrderID     string `json:"order_id"`
	Token       string `json:"token"`
	AmountCents int64  `json:"amount_cents"`
	Currency    string `json:"currency"`
}

// ChargeResult identifies the charge.
type ChargeResult struct {
	Provider string `json:"provider"`
	ChargeID string `json:"charge_id"`
}

// ChargeKey is the idempotency key of an order's charge: one order, one charge.
func ChargeKey(orderID string) string { return "charge-" + orderID }

// RefundKey is the idempotency key of an order's refund.
func RefundKey(orderID string) string { return "refund-" + orderID }

// Charge takes the order's total and marks it PAID. A decline is a
// non-retryable PaymentDeclined error; provider trouble is returned as a plain
// error so the saga's retry policy applies. The provider's idempotency key
// makes a retried charge return the first charge instead of a second one.
func (p *Payment) Charge(ctx context.Context, in ChargeInput) (ChargeResult, error) {
	key := ChargeKey(in.OrderID)
	var res ChargeResult
	err := p.DB.QueryRow(ctx, `SELECT provider, charge_id FROM payments WHERE order_id = $1`, in.OrderID).Scan(&res.Provider, &res.ChargeID)
	if err == nil {
		return res, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return ChargeResult{}, fmt.Errorf("charge %s: load payment: %w", in.OrderID, err)
	}

	ch, err := p.Provider.Charge(ctx, ChargeRequest{
		IdempotencyKey: key, Token: in.Token, AmountCents: in.AmountCents, Currency: in.Currency,
		Description: "order " + in.OrderID,
	})
	var declined *DeclinedError
	switch {
	case errors.As(err, &declined):
		p.record(ctx, in.OrderID, "decline", "", in.AmountCents, in.Currency, key, declined.Code)
		return ChargeResult{}, businessError(ErrPaymentDeclined, "payment declined: "+declined.Code, declined.Code)
	case err != nil:
		p.record(ctx, in.OrderID, "error", "", in.AmountCents, in.Currency, key, err.Error())
		return ChargeResult{}, fmt.Errorf("charge %s: %w", in.OrderID, err)
	}

	res = ChargeResult{Provider: p.Provider.Name(), ChargeID: ch.ID}
	err = db.InTx(ctx, p.DB, func(tx pgx.Tx) error {
		const q = `INSERT INTO payments (order_id, provider, charge_id, amount_cents, currency, status)
			VALUES ($1, $2, $3, $4, $5, 'charged') ON CONFLICT (order_id) DO NOTHING`
		if _, err := tx.Exec(ctx, q, in.OrderID, res.Provider, res.ChargeID, ch.AmountCents, ch.Currency); err != nil {
			return fmt.Errorf("insert payment: %w", err)
		}
		if err := appendTransaction(ctx, tx, in.OrderID, "charge", res.Provider, ch.ID, ch.AmountCents, ch.Currency, key, ""); err != nil {
			return err
		}
		return setStatus(ctx, tx, in.OrderID, StatusPaid, "")
	})
	if err != nil {
		return ChargeResult{}, fmt.Errorf("charge %s: record: %w", in.OrderID, err)
	}
	return res, nil
}

// RefundResult says whether money went back.
type RefundResult struct {
	Refunded bool   `json:"refunded"`
	RefundID string `json:"refund_id,omitempty"`
}

// Refund returns the order's charge, if there is one: it looks in the payments
// table and, when the charge's answer was lost before it was recorded, asks
// the provider by idempotency key. An order that was never charged is a no-op;
// a retried refund returns the first refund.
func (p *Payment) Refund(ctx context.Context, in OrderRef) (RefundResult, error) {
	var chargeID, status, currency string
	var amount int64
	err := p.DB.QueryRow(ctx, `SELECT charge_id, status, amount_cents, currency FROM payments WHERE order_id = $1`, in.OrderID).
		Scan(&chargeID, &status, &amount, &currency)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		ch, found, ferr := p.Provider.FindCharge(ctx, ChargeKey(in.OrderID))
		if ferr != nil {
			return RefundResult{}, fmt.Errorf("refund %s: find charge: %w", in.OrderID, ferr)
		}
		if !found {
			return RefundResult{}, nil
		}
		chargeID, amount, currency, status = ch.ID, ch.AmountCents, ch.Currency, "unrecorded"
	case err != nil:
		return RefundResult{}, fmt.Errorf("refund %s: load payment: %w", in.OrderID, err)
	}
	if status == "refunded" {
		return RefundResult{Refunded: true}, nil
	}

	key := RefundKey(in.OrderID)
	rf, err := p.Provider.Refund(ctx, RefundRequest{IdempotencyKey: key, ChargeID: chargeID, AmountCents: amount, Currency: currency})
	if err != nil {
		p.record(ctx, in.OrderID, "error", chargeID, amount, currency, key, err.Error())
		return RefundResult{}, fmt.Errorf("refund %s: %w", in.OrderID, err)
	}
	err = db.InTx(ctx, p.DB, func(tx pgx.Tx) error {
		const q = `INSERT INTO payments (order_id, provider, charge_id, amount_cents, currency, status)
			VALUES ($1, $2, $3, $4, $5, 'refunded')
			ON CONFLICT (order_id) DO UPDATE SET status = 'refunded', updated_at = now()`
		if _, err := tx.Exec(ctx, q, in.OrderID, p.Provider.Name(), chargeID, amount, currency); err != nil {
			return fmt.Errorf("update payment: %w", err)
		}
		if status == "unrecorded" {
			if err := appendTransaction(ctx, tx, in.OrderID, "charge", p.Provider.Name(), chargeID, amount, currency, ChargeKey(in.OrderID), "recovered from provider"); err != nil {
				return err
			}
		}
		return appendTransaction(ctx, tx, in.OrderID, "refund", p.Provider.Name(), rf.ID, amount, currency, key, "")
	})
	if err != nil {
		return RefundResult{}, fmt.Errorf("refund %s: record: %w", in.OrderID, err)
	}
	activity.GetLogger(ctx).Info("payment refunded", "order_id", in.OrderID, "amount_cents", amount)
	return RefundResult{Refunded: true, RefundID: rf.ID}, nil
}

// record appends a decline or error to the audit log. It runs even when the
// activity's context is done, and a failure to write it only gets logged:
// the outcome it describes is what the activity returns either way.
func (p *Payment) record(ctx context.Context, orderID, kind, ref string, amount int64, currency, key, detail string) {
	dctx, cancel := detached(ctx)
	defer cancel()
	err := db.InTx(dctx, p.DB, func(tx pgx.Tx) error {
		return appendTransaction(dctx, tx, orderID, kind, p.Provider.Name(), ref, amount, currency, key, detail)
	})
	if err != nil {
		activity.GetLogger(ctx).Warn("payment audit write failed", "order_id", orderID, "kind", kind, "error", err)
	}
}

func appendTransaction(ctx context.Context, tx pgx.Tx, orderID, kind, provider, ref string, amount int64, currency, key, detail string) error {
	const q = `INSERT INTO payment_transactions (order_id, kind, provider, provider_ref, amount_cents, currency, idempotency_key, detail)
		VALUES ($1, $2, $3, NULLIF($4, ''), $5, $6, $7, NULLIF($8, ''))
		ON CONFLICT (idempotency_key, kind) WHERE kind <> 'error' DO NOTHING`
	if _, err := tx.Exec(ctx, q, orderID, kind, provider, ref, amount, currency, key, detail); err != nil {
		return fmt.Errorf("append %s transaction: %w", kind, err)
	}
	return nil
}
