package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/activity"

	"github.com/orderflow/orderflow/internal/db"
	"github.com/orderflow/orderflow/internal/payment"
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

// The provider's requests, answers and errors, shared with the adapters.
type (
	ChargeRequest  = payment.ChargeRequest
	ProviderCharge = payment.Charge
	RefundRequest  = payment.RefundRequest
	ProviderRefund = payment.Refund
	DeclinedError  = payment.DeclinedError
)

// Test tokens every provider orderflow runs against understands; see
// internal/payment.
const (
	TokenVisa           = payment.TokenVisa
	TokenMastercard     = payment.TokenMastercard
	TokenChargeDeclined = payment.TokenChargeDeclined
	TokenFlaky          = payment.TokenFlaky
	TokenUnavailable    = payment.TokenUnavailable
)

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

// ChargeKey is the idempotency key of an order's n-th charge. n is 1 unless an
// operator re-ran a saga whose earlier charges were all refunded.
func ChargeKey(orderID string, n int) string {
	if n <= 1 {
		return "charge-" + orderID
	}
	return fmt.Sprintf("charge-%s-%d", orderID, n)
}

// RefundKey is the idempotency key of the refund of the charge made with chargeKey.
func RefundKey(chargeKey string) string { return "refund-" + strings.TrimPrefix(chargeKey, "charge-") }

// Charge takes the order's total and marks it PAID. An order that already has
// a charge that was not refunded gets that charge back: one order, one net
// charge. A decline is a non-retryable PaymentDeclined error; provider trouble
// is returned as a plain error so the saga's retry policy applies. The
// provider's idempotency key makes a retried charge return the first charge
// instead of a second one.
func (p *Payment) Charge(ctx context.Context, in ChargeInput) (ChargeResult, error) {
	open, n, err := p.charges(ctx, in.OrderID)
	if err != nil {
		return ChargeResult{}, fmt.Errorf("charge %s: %w", in.OrderID, err)
	}
	if len(open) > 0 {
		res := ChargeResult{Provider: open[0].provider, ChargeID: open[0].chargeID}
		err := db.InTx(ctx, p.DB, func(tx pgx.Tx) error { return setStatus(ctx, tx, in.OrderID, StatusPaid, "") })
		if err != nil {
			return ChargeResult{}, fmt.Errorf("charge %s: %w", in.OrderID, err)
		}
		return res, nil
	}
	key := ChargeKey(in.OrderID, n+1)
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

	res := ChargeResult{Provider: p.Provider.Name(), ChargeID: ch.ID}
	// The payment, its audit row and the PAID status in one batch: one round
	// trip, which PostgreSQL runs as one implicit transaction.
	const qPayment = `INSERT INTO payments (idempotency_key, order_id, provider, charge_id, amount_cents, currency, status)
		VALUES ($1, $2, $3, $4, $5, $6, 'charged') ON CONFLICT (idempotency_key) DO NOTHING`
	b := &pgx.Batch{}
	b.Queue(qPayment, key, in.OrderID, res.Provider, res.ChargeID, ch.AmountCents, ch.Currency)
	b.Queue(qAppendTransaction, in.OrderID, "charge", res.Provider, ch.ID, ch.AmountCents, ch.Currency, key, "")
	b.Queue(qSetStatus, in.OrderID, StatusPaid, "")
	err = func() error {
		ctx, cancel := context.WithTimeout(ctx, db.StatementTimeout)
		defer cancel()
		return p.DB.SendBatch(ctx, b).Close()
	}()
	if err != nil {
		return ChargeResult{}, fmt.Errorf("charge %s: record: %w", in.OrderID, err)
	}
	return res, nil
}

type charge struct {
	key, provider, chargeID, currency string
	amount                            int64
	unrecorded                        bool
}

// charges returns the order's charges that are not refunded, and how many
// charges it has recorded in all.
func (p *Payment) charges(ctx context.Context, orderID string) ([]charge, int, error) {
	const q = `SELECT idempotency_key, provider, charge_id, currency, amount_cents, status FROM payments WHERE order_id = $1`
	ctx, cancel := context.WithTimeout(ctx, db.StatementTimeout)
	defer cancel()
	rows, err := p.DB.Query(ctx, q, orderID)
	if err != nil {
		return nil, 0, fmt.Errorf("load payments: %w", err)
	}
	defer rows.Close()
	var open []charge
	n := 0
	for rows.Next() {
		var c charge
		var status string
		if err := rows.Scan(&c.key, &c.provider, &c.chargeID, &c.currency, &c.amount, &status); err != nil {
			return nil, 0, fmt.Errorf("load payments: %w", err)
		}
		n++
		if status == "charged" {
			open = append(open, c)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("load payments: %w", err)
	}
	return open, n, nil
}

// RefundResult says whether money went back.
type RefundResult struct {
	Refunded bool `json:"refunded"`
}

// Refund returns the order's open charge, if there is one: the one recorded in
// payments and, when a charge's answer was lost before it was recorded, the
// one the provider knows under the next charge key. An order that was never
// charged is a no-op; a retried refund returns the first refund.
func (p *Payment) Refund(ctx context.Context, in OrderRef) (RefundResult, error) {
	open, n, err := p.charges(ctx, in.OrderID)
	if err != nil {
		return RefundResult{}, fmt.Errorf("refund %s: %w", in.OrderID, err)
	}
	key := ChargeKey(in.OrderID, n+1)
	lost, found, err := p.Provider.FindCharge(ctx, key)
	if err != nil {
		return RefundResult{}, fmt.Errorf("refund %s: find charge: %w", in.OrderID, err)
	}
	if found {
		open = append(open, charge{key: key, provider: p.Provider.Name(), chargeID: lost.ID, currency: lost.Currency, amount: lost.AmountCents, unrecorded: true})
	}
	for _, c := range open {
		if err := p.refund(ctx, in.OrderID, c); err != nil {
			return RefundResult{}, err
		}
	}
	return RefundResult{Refunded: len(open) > 0}, nil
}

func (p *Payment) refund(ctx context.Context, orderID string, c charge) error {
	key := RefundKey(c.key)
	rf, err := p.Provider.Refund(ctx, RefundRequest{IdempotencyKey: key, ChargeID: c.chargeID, AmountCents: c.amount, Currency: c.currency})
	if err != nil {
		p.record(ctx, orderID, "error", c.chargeID, c.amount, c.currency, key, err.Error())
		return fmt.Errorf("refund %s: %w", orderID, err)
	}
	err = db.InTx(ctx, p.DB, func(tx pgx.Tx) error {
		const q = `INSERT INTO payments (idempotency_key, order_id, provider, charge_id, amount_cents, currency, status)
			VALUES ($1, $2, $3, $4, $5, $6, 'refunded')
			ON CONFLICT (idempotency_key) DO UPDATE SET status = 'refunded', updated_at = now()`
		if _, err := tx.Exec(ctx, q, c.key, orderID, c.provider, c.chargeID, c.amount, c.currency); err != nil {
			return fmt.Errorf("update payment: %w", err)
		}
		if c.unrecorded {
			if err := appendTransaction(ctx, tx, orderID, "charge", c.provider, c.chargeID, c.amount, c.currency, c.key, "recovered from provider"); err != nil {
				return err
			}
		}
		return appendTransaction(ctx, tx, orderID, "refund", c.provider, rf.ID, c.amount, c.currency, key, "")
	})
	if err != nil {
		return fmt.Errorf("refund %s: record: %w", orderID, err)
	}
	activity.GetLogger(ctx).Info("payment refunded", "order_id", orderID, "amount_cents", c.amount)
	return nil
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

// qAppendTransaction appends to the payment audit log: a charge, refund or
// decline once per idempotency key, an error once per attempt.
const qAppendTransaction = `INSERT INTO payment_transactions (order_id, kind, provider, provider_ref, amount_cents, currency, idempotency_key, detail)
	VALUES ($1, $2, $3, NULLIF($4, ''), $5, $6, $7, NULLIF($8, ''))
	ON CONFLICT (idempotency_key, kind) WHERE kind <> 'error' DO NOTHING`

func appendTransaction(ctx context.Context, tx pgx.Tx, orderID, kind, provider, ref string, amount int64, currency, key, detail string) error {
	if _, err := tx.Exec(ctx, qAppendTransaction, orderID, kind, provider, ref, amount, currency, key, detail); err != nil {
		return fmt.Errorf("append %s transaction: %w", kind, err)
	}
	return nil
}
