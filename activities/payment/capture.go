package payment

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/activity"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities"
	"github.com/orderflow/orderflow/activities/orders"
	"github.com/orderflow/orderflow/internal/db"
)

// AuthorizeInput is what to authorize for an order. Renewal 0 is the order's
// first authorization; n > 0 re-authorizes the uncaptured remainder of the
// order's authorization once it nears expiry: a new authorization under a
// new key, after which the previous one is voided.
type AuthorizeInput struct {
	ChargeInput
	Renewal int `json:"renewal"`
}

// AuthorizeResult identifies the authorization: its provider and ID, the
// amount it holds and when the provider lets it expire.
type AuthorizeResult struct {
	Provider    string    `json:"provider"`
	ChargeID    string    `json:"charge_id"`
	AmountCents int64     `json:"amount_cents"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// CaptureInput captures AmountCents of the order's authorization for one
// shipment. Final releases the rest of the authorization.
type CaptureInput struct {
	OrderID     string `json:"order_id"`
	ShipmentID  string `json:"shipment_id"`
	AmountCents int64  `json:"amount_cents"`
	Final       bool   `json:"final"`
}

// CaptureResult is the capture: its provider ID, what it took and, for a
// final capture, what it released.
type CaptureResult struct {
	CaptureID     string `json:"capture_id"`
	CapturedCents int64  `json:"captured_cents"`
	ReleasedCents int64  `json:"released_cents"`
}

// VoidResult says whether an authorization was voided and how much it released.
type VoidResult struct {
	Voided        bool  `json:"voided"`
	ReleasedCents int64 `json:"released_cents"`
}

// AuthorizationKey is the idempotency key of an order's authorization that
// is its n-th payment (n counts charges and authorizations alike): a
// renewal is the next one, under a new key.
func AuthorizationKey(orderID string, n int) string { return seqKey("auth", orderID, n) }

// CaptureKey is the idempotency key of the capture for one shipment of an
// order: capture-<order>-<shipment>.
func CaptureKey(orderID, shipmentID string) string { return "capture-" + orderID + "-" + shipmentID }

// VoidKey is the idempotency key of the void of the authorization made
// with authorizationKey.
func VoidKey(authorizationKey string) string {
	return "void-" + strings.TrimPrefix(authorizationKey, "auth-")
}

// Authorize holds the order's total on the card and marks the order
// AUTHORIZED, through the providers in failover order with Charge's
// semantics: the same attempt log, decline (a non-retryable
// PaymentDeclined error), parking (a non-retryable PaymentUnavailable
// error) and retries of an ambiguous answer under the same key. An order
// that already holds an open authorization gets it back.
//
// Renewal n > 0 re-authorizes what is left uncaptured of the order's
// authorization before it expires: a new authorization under a new key (the
// order's next payment), on the first provider that takes it, after which
// the previous one is voided. A retry finds renewal n recorded and only
// finishes the void. With nothing left uncaptured, or the previous
// authorization closed (voided, finally captured, refunded), it authorizes
// nothing and answers AmountCents 0. in.AmountCents is used only when the
// order has no authorization to renew.
func (p *Activities) Authorize(ctx context.Context, in AuthorizeInput) (AuthorizeResult, error) {
	st, avail, err := p.begin(ctx, in.OrderID)
	if err != nil {
		return AuthorizeResult{}, fmt.Errorf("authorize %s: %w", in.OrderID, err)
	}
	var prev *charge // the authorization this one renews
	for i := len(st.auths) - 1; i >= 0; i-- {
		a := st.auths[i]
		open := a.status == statusAuthorized || a.status == statusCaptured
		if open && a.renewal >= in.Renewal {
			// Done before: finish what the first attempt may have left.
			if err := p.voidOlder(ctx, in.OrderID, st, a); err != nil {
				return AuthorizeResult{}, err
			}
			if in.Renewal == 0 {
				if err := p.recordStatus(ctx, in.OrderID, orderflow.StatusAuthorized); err != nil {
					return AuthorizeResult{}, fmt.Errorf("authorize %s: %w", in.OrderID, err)
				}
			}
			return authorized(a), nil
		}
		if prev == nil && a.renewal < in.Renewal {
			prev = &st.auths[i]
		}
	}
	ci := in.ChargeInput
	if in.Renewal > 0 && prev != nil {
		ci.Currency, ci.AmountCents = prev.currency, 0
		if prev.status == statusAuthorized || prev.status == statusExpired {
			ci.AmountCents = prev.amount - prev.captured
		}
		if ci.AmountCents <= 0 {
			activity.GetLogger(ctx).Info("nothing left to re-authorize", "order_id", in.OrderID, "renewal", in.Renewal)
			return AuthorizeResult{Provider: prev.provider, ChargeID: prev.chargeID}, nil
		}
	}
	key, provider, ch, err := p.obtain(ctx, ci, st, avail, true)
	if err != nil {
		return AuthorizeResult{}, err
	}
	a := charge{key: key, provider: provider, chargeID: ch.ID, currency: ch.Currency, amount: ch.AmountCents,
		kind: kindAuthorization, status: statusAuthorized, renewal: in.Renewal, expiresAt: ch.ExpiresAt}
	if err := p.recordAuthorization(ctx, in.OrderID, a); err != nil {
		return AuthorizeResult{}, err
	}
	if err := p.voidOlder(ctx, in.OrderID, st, a); err != nil {
		return AuthorizeResult{}, err
	}
	return authorized(a), nil
}

func authorized(a charge) AuthorizeResult {
	res := AuthorizeResult{Provider: a.provider, ChargeID: a.chargeID, AmountCents: a.amount - a.captured}
	if a.expiresAt.Unix() > 0 {
		res.ExpiresAt = a.expiresAt.UTC()
	}
	return res
}

// recordAuthorization stores an authorization and its audit row and, for
// the order's first, the AUTHORIZED status, in one batch.
func (p *Activities) recordAuthorization(ctx context.Context, orderID string, a charge) error {
	const q = `INSERT INTO payments (idempotency_key, order_id, provider, charge_id, amount_cents, currency, status, kind, renewal, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, 'authorized', 'authorization', $7, $8) ON CONFLICT (idempotency_key) DO NOTHING`
	var expires *time.Time
	if !a.expiresAt.IsZero() {
		expires = &a.expiresAt
	}
	detail := ""
	if a.renewal > 0 {
		detail = fmt.Sprintf("renewal %d", a.renewal)
	}
	b := &pgx.Batch{}
	b.Queue(q, a.key, orderID, a.provider, a.chargeID, a.amount, a.currency, a.renewal, expires)
	b.Queue(qAppendTransaction, orderID, "authorization", a.provider, a.chargeID, a.amount, a.currency, a.key, detail)
	if a.renewal == 0 {
		orders.QueueStatus(b, orderID, orderflow.StatusAuthorized, "")
	}
	if err := p.send(ctx, b); err != nil {
		return fmt.Errorf("authorize %s: record: %w", orderID, err)
	}
	activities.Invalidate(ctx, p.Cache, orderID, nil)
	return nil
}

// voidOlder voids the order's open authorizations other than current:
// those a renewal replaced.
func (p *Activities) voidOlder(ctx context.Context, orderID string, st paymentState, current charge) error {
	for _, a := range st.auths {
		if a.key != current.key && a.status == statusAuthorized {
			if _, err := p.void(ctx, orderID, a); err != nil {
				return err
			}
		}
	}
	return nil
}

// Capture captures in.AmountCents of the order's open authorization for a
// shipment, once per (order, shipment): a retry, or the same shipment
// again, gets the first capture. Final releases what is left uncaptured
// and closes the authorization. A capture of more than is left uncaptured
// is a non-retryable CaptureExceedsAuthorization error naming the excess;
// an order with no open authorization, or one its provider says is
// expired or closed, a non-retryable AuthorizationExpired error. An
// authorization lives on its provider, so a provider that cannot be asked
// is a plain error, retried there.
func (p *Activities) Capture(ctx context.Context, in CaptureInput) (CaptureResult, error) {
	key := CaptureKey(in.OrderID, in.ShipmentID)
	if res, found, err := p.captured(ctx, key); err != nil || found {
		return res, err
	}
	st, err := p.load(ctx, in.OrderID, "")
	if err != nil {
		return CaptureResult{}, fmt.Errorf("capture %s: %w", key, err)
	}
	var a *charge
	for i := range st.auths {
		if st.auths[i].status == statusAuthorized {
			a = &st.auths[i] // the latest open one: a renewal's
		}
	}
	if a == nil {
		return CaptureResult{}, activities.Business(orderflow.AuthorizationExpired,
			fmt.Sprintf("capture %s: order %s holds no open authorization", key, in.OrderID))
	}
	left := a.amount - a.captured
	if in.AmountCents < 0 || in.AmountCents > left {
		excess := in.AmountCents - left
		return CaptureResult{}, activities.Business(orderflow.CaptureExceedsAuthorization,
			fmt.Sprintf("capture %s: %d asked, %d of %d left uncaptured: %d over the authorization", key, in.AmountCents, left, a.amount, excess), excess)
	}
	g, ok := p.Providers.Get(a.provider)
	if !ok {
		return CaptureResult{}, fmt.Errorf("capture %s: authorization %s was made on %s, which is not configured", key, a.chargeID, a.provider)
	}
	cp, err := g.Capture(ctx, CaptureRequest{IdempotencyKey: key, ChargeID: a.chargeID, AmountCents: in.AmountCents, Currency: a.currency, Final: in.Final})
	switch {
	case errors.Is(err, ErrExceedsAuthorization):
		return CaptureResult{}, activities.Business(orderflow.CaptureExceedsAuthorization, fmt.Sprintf("capture %s: %v", key, err), in.AmountCents-left)
	case errors.Is(err, ErrAuthorizationClosed):
		// Payments thought it open: it expired at the provider.
		p.expire(ctx, in.OrderID, a.key)
		return CaptureResult{}, activities.Business(orderflow.AuthorizationExpired, fmt.Sprintf("capture %s: %v", key, err))
	case err != nil:
		p.record(ctx, in.OrderID, "error", a.provider, a.chargeID, in.AmountCents, a.currency, key, err.Error())
		return CaptureResult{}, fmt.Errorf("capture %s: %w", key, err)
	}
	res := CaptureResult{CaptureID: cp.ID, CapturedCents: in.AmountCents}
	if in.Final {
		res.ReleasedCents = left - in.AmountCents
	}
	const (
		qCapture = `INSERT INTO payment_captures (idempotency_key, order_id, shipment_id, payment_key, provider, capture_id, amount_cents, released_cents, final, currency)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (idempotency_key) DO NOTHING`
		qClose = `UPDATE payments SET status = 'captured', updated_at = now() WHERE idempotency_key = $1 AND status = 'authorized'`
	)
	b := &pgx.Batch{}
	b.Queue(qCapture, key, in.OrderID, in.ShipmentID, a.key, a.provider, cp.ID, in.AmountCents, res.ReleasedCents, in.Final, a.currency)
	b.Queue(qAppendTransaction, in.OrderID, "capture", a.provider, cp.ID, in.AmountCents, a.currency, key, "shipment "+in.ShipmentID)
	if in.Final {
		b.Queue(qClose, a.key)
	}
	if err := p.send(ctx, b); err != nil {
		return CaptureResult{}, fmt.Errorf("capture %s: record: %w", key, err)
	}
	activity.GetLogger(ctx).Info("payment captured", "order_id", in.OrderID, "shipment_id", in.ShipmentID,
		"amount_cents", in.AmountCents, "released_cents", res.ReleasedCents)
	return res, nil
}

// captured returns the capture recorded under key, if any.
func (p *Activities) captured(ctx context.Context, key string) (CaptureResult, bool, error) {
	const q = `SELECT capture_id, amount_cents, released_cents FROM payment_captures WHERE idempotency_key = $1`
	ctx, cancel := context.WithTimeout(ctx, db.StatementTimeout)
	defer cancel()
	var res CaptureResult
	err := p.DB.QueryRow(ctx, q, key).Scan(&res.CaptureID, &res.CapturedCents, &res.ReleasedCents)
	if errors.Is(err, pgx.ErrNoRows) {
		return CaptureResult{}, false, nil
	}
	if err != nil {
		return CaptureResult{}, false, fmt.Errorf("capture %s: %w", key, err)
	}
	return res, true, nil
}

// expire records that an authorization payments thought open has expired
// at its provider. A failure only costs the next capture the same answer.
func (p *Activities) expire(ctx context.Context, orderID, key string) {
	dctx, cancel := activities.Detached(ctx)
	defer cancel()
	const q = `UPDATE payments SET status = 'expired', updated_at = now() WHERE idempotency_key = $1 AND status = 'authorized'`
	if _, err := p.DB.Exec(dctx, q, key); err != nil {
		activity.GetLogger(ctx).Warn("authorization expiry not recorded", "order_id", orderID, "key", key, "error", err)
	}
}

// Void releases the order's open authorizations, and one a provider holds
// whose answer was lost. Voided says the order's latest authorization is
// voided (also when an earlier call voided it); ReleasedCents is what this
// call released. An order with nothing authorized is a no-op. A provider
// that cannot be asked is a plain error, retried.
func (p *Activities) Void(ctx context.Context, in orderflow.OrderRef) (VoidResult, error) {
	st, lost, err := p.loadAll(ctx, in.OrderID)
	if err != nil {
		return VoidResult{}, fmt.Errorf("void %s: %w", in.OrderID, err)
	}
	var res VoidResult
	for _, a := range append(st.auths, lost...) {
		if a.kind != kindAuthorization || a.status != statusAuthorized {
			continue
		}
		released, err := p.void(ctx, in.OrderID, a)
		if err != nil {
			return VoidResult{}, err
		}
		res.Voided, res.ReleasedCents = true, res.ReleasedCents+released
	}
	if n := len(st.auths); !res.Voided && n > 0 {
		res.Voided = st.auths[n-1].status == statusVoided
	}
	return res, nil
}

// void releases what is left uncaptured of an open authorization and
// records it voided; it answers what was released.
func (p *Activities) void(ctx context.Context, orderID string, a charge) (int64, error) {
	key := VoidKey(a.key)
	g, ok := p.Providers.Get(a.provider)
	if !ok {
		return 0, fmt.Errorf("void %s: authorization %s was made on %s, which is not configured", orderID, a.chargeID, a.provider)
	}
	released := a.amount - a.captured
	if err := g.Void(ctx, VoidRequest{IdempotencyKey: key, ChargeID: a.chargeID}); err != nil {
		p.record(ctx, orderID, "error", a.provider, a.chargeID, released, a.currency, key, err.Error())
		return 0, fmt.Errorf("void %s: %w", orderID, err)
	}
	b := &pgx.Batch{}
	p.queueClosed(b, orderID, a, statusVoided)
	b.Queue(qAppendTransaction, orderID, "void", a.provider, a.chargeID, released, a.currency, key, "")
	if err := p.send(ctx, b); err != nil {
		return 0, fmt.Errorf("void %s: record: %w", orderID, err)
	}
	activity.GetLogger(ctx).Info("authorization voided", "order_id", orderID, "provider", a.provider, "released_cents", released)
	return released, nil
}

// queueClosed records an authorization's new status (and, when its answer
// was lost, the authorization itself with its audit row).
func (p *Activities) queueClosed(b *pgx.Batch, orderID string, a charge, status string) {
	const q = `INSERT INTO payments (idempotency_key, order_id, provider, charge_id, amount_cents, currency, status, kind, renewal, refunded_cents)
		VALUES ($1, $2, $3, $4, $5, $6, $7, 'authorization', $8, $9)
		ON CONFLICT (idempotency_key) DO UPDATE SET status = EXCLUDED.status, refunded_cents = EXCLUDED.refunded_cents, updated_at = now()`
	b.Queue(q, a.key, orderID, a.provider, a.chargeID, a.amount, a.currency, status, a.renewal, a.refunded)
	if a.unrecorded {
		b.Queue(qAppendTransaction, orderID, "authorization", a.provider, a.chargeID, a.amount, a.currency, a.key, "recovered from provider")
	}
}

// settle is the full refund of an authorization: what was captured and
// not yet refunded goes back, and what is left uncaptured is voided.
func (p *Activities) settle(ctx context.Context, orderID string, a charge) error {
	g, ok := p.Providers.Get(a.provider)
	if !ok {
		return fmt.Errorf("refund %s: authorization %s was made on %s, which is not configured", orderID, a.chargeID, a.provider)
	}
	if a.status == statusAuthorized {
		if _, err := p.void(ctx, orderID, a); err != nil {
			return err
		}
		a.unrecorded = false
	}
	amount := a.refundable()
	if amount <= 0 {
		return nil
	}
	key := RefundKey(a.key)
	rf, err := g.Refund(ctx, RefundRequest{IdempotencyKey: key, ChargeID: a.chargeID, AmountCents: amount, Currency: a.currency})
	if err != nil {
		p.record(ctx, orderID, "error", a.provider, a.chargeID, amount, a.currency, key, err.Error())
		return fmt.Errorf("refund %s: %w", orderID, err)
	}
	a.refunded = a.captured
	b := &pgx.Batch{}
	p.queueClosed(b, orderID, a, statusRefunded)
	b.Queue(qAppendTransaction, orderID, "refund", a.provider, rf.ID, amount, a.currency, key, "")
	if err := p.send(ctx, b); err != nil {
		return fmt.Errorf("refund %s: record: %w", orderID, err)
	}
	activity.GetLogger(ctx).Info("authorization refunded", "order_id", orderID, "provider", a.provider, "amount_cents", amount)
	return nil
}
