package payment

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/activity"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities"
	"github.com/orderflow/orderflow/internal/db"
)

// RefundPartInput returns part of an order's charge under its own key.
type RefundPartInput struct {
	OrderID     string `json:"order_id"`
	Key         string `json:"key"`
	AmountCents int64  `json:"amount_cents"`
}

// PartialRefundKey is the idempotency key of the refund of one part of an
// order (a lost shipment, a return): refund-<order>-<part>.
func PartialRefundKey(orderID, part string) string { return "refund-" + orderID + "-" + part }

// RefundPart returns AmountCents of what the order paid, on the provider
// that holds it, once per key: a retry, or the same key again, gets the
// first refund. Only what was paid can go back: a charge, or what was
// captured of an authorization, less what was refunded of it. A part larger
// than what any one open payment has left is a non-retryable
// RefundExceedsCapture error naming the excess, and nothing is refunded.
// The payment stays open: only a full Refund closes it. An order without an
// open payment refunds nothing. A provider that cannot be asked is a plain
// error, retried.
func (p *Activities) RefundPart(ctx context.Context, in RefundPartInput) (RefundResult, error) {
	st, err := p.load(ctx, in.OrderID, "")
	if err != nil {
		return RefundResult{}, fmt.Errorf("refund part of %s: %w", in.OrderID, err)
	}
	open := st.open
	for _, a := range st.auths {
		if a.status == statusAuthorized || a.status == statusCaptured || a.refundable() > 0 {
			open = append(open, a)
		}
	}
	if len(open) == 0 || in.AmountCents <= 0 {
		activity.GetLogger(ctx).Warn("nothing to refund", "order_id", in.OrderID, "key", in.Key, "amount_cents", in.AmountCents)
		return RefundResult{}, nil
	}
	if done, err := p.refunded(ctx, in.Key); err != nil || done {
		return RefundResult{Refunded: done}, err
	}
	var c *charge
	var left int64 // the most any one open payment has left to refund
	for i := range open {
		if l := open[i].refundable(); l >= in.AmountCents && c == nil {
			c = &open[i]
		} else if l > left {
			left = l
		}
	}
	if c == nil {
		return RefundResult{}, activities.Business(orderflow.RefundExceedsCapture, fmt.Sprintf(
			"refund part %s of %s: %d asked, %d paid and not refunded: %d too much", in.Key, in.OrderID, in.AmountCents, left, in.AmountCents-left),
			in.AmountCents-left)
	}
	g, ok := p.Providers.Get(c.provider)
	if !ok {
		return RefundResult{}, fmt.Errorf("refund part of %s: charge %s was made on %s, which is not configured", in.OrderID, c.chargeID, c.provider)
	}
	rf, err := g.Refund(ctx, RefundRequest{IdempotencyKey: in.Key, ChargeID: c.chargeID, AmountCents: in.AmountCents, Currency: c.currency})
	if errors.Is(err, ErrExceedsCapture) {
		return RefundResult{}, activities.Business(orderflow.RefundExceedsCapture, fmt.Sprintf("refund part %s of %s: %v", in.Key, in.OrderID, err))
	}
	if err != nil {
		p.record(ctx, in.OrderID, "error", c.provider, c.chargeID, in.AmountCents, c.currency, in.Key, err.Error())
		return RefundResult{}, fmt.Errorf("refund part of %s: %w", in.OrderID, err)
	}
	err = db.InTx(ctx, p.DB, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, qAppendTransaction, in.OrderID, "refund", c.provider, rf.ID, in.AmountCents, c.currency, in.Key, "partial")
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		const q = `UPDATE payments SET refunded_cents = refunded_cents + $2, updated_at = now() WHERE idempotency_key = $1`
		_, err = tx.Exec(ctx, q, c.key, in.AmountCents)
		return err
	})
	if err != nil {
		return RefundResult{}, fmt.Errorf("refund part of %s: record: %w", in.OrderID, err)
	}
	activity.GetLogger(ctx).Info("payment partly refunded", "order_id", in.OrderID, "provider", c.provider, "amount_cents", in.AmountCents)
	return RefundResult{Refunded: true}, nil
}

// refunded reports whether a refund under key is recorded.
func (p *Activities) refunded(ctx context.Context, key string) (bool, error) {
	const q = `SELECT EXISTS (SELECT 1 FROM payment_transactions WHERE idempotency_key = $1 AND kind = 'refund')`
	ctx, cancel := context.WithTimeout(ctx, db.StatementTimeout)
	defer cancel()
	var done bool
	if err := p.DB.QueryRow(ctx, q, key).Scan(&done); err != nil {
		return false, fmt.Errorf("refund %s: %w", key, err)
	}
	return done, nil
}
