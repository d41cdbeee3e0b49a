package payment

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/activity"

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

// RefundPart returns AmountCents of the order's open charge on the provider
// that holds it, once per key: a retry, or the same key again, gets the
// first refund. The provider refuses to refund more than is left of the
// charge, so parts never add up to more than was charged. The charge stays
// open (payments.status charged): only a full Refund closes it. An order
// without an open charge refunds nothing. A provider that cannot be asked is
// a plain error, retried.
func (p *Activities) RefundPart(ctx context.Context, in RefundPartInput) (RefundResult, error) {
	st, err := p.load(ctx, in.OrderID, "")
	if err != nil {
		return RefundResult{}, fmt.Errorf("refund part of %s: %w", in.OrderID, err)
	}
	if len(st.open) == 0 || in.AmountCents <= 0 {
		activity.GetLogger(ctx).Warn("nothing to refund", "order_id", in.OrderID, "key", in.Key, "amount_cents", in.AmountCents)
		return RefundResult{}, nil
	}
	c := st.open[0]
	g, ok := p.Providers.Get(c.provider)
	if !ok {
		return RefundResult{}, fmt.Errorf("refund part of %s: charge %s was made on %s, which is not configured", in.OrderID, c.chargeID, c.provider)
	}
	rf, err := g.Refund(ctx, RefundRequest{IdempotencyKey: in.Key, ChargeID: c.chargeID, AmountCents: in.AmountCents, Currency: c.currency})
	if err != nil {
		p.record(ctx, in.OrderID, "error", c.provider, c.chargeID, in.AmountCents, c.currency, in.Key, err.Error())
		return RefundResult{}, fmt.Errorf("refund part of %s: %w", in.OrderID, err)
	}
	err = db.InTx(ctx, p.DB, func(tx pgx.Tx) error {
		return appendTransaction(ctx, tx, in.OrderID, "refund", c.provider, rf.ID, in.AmountCents, c.currency, in.Key, "partial")
	})
	if err != nil {
		return RefundResult{}, fmt.Errorf("refund part of %s: record: %w", in.OrderID, err)
	}
	activity.GetLogger(ctx).Info("payment partly refunded", "order_id", in.OrderID, "provider", c.provider, "amount_cents", in.AmountCents)
	return RefundResult{Refunded: true}, nil
}
