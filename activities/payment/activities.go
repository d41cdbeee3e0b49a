package payment

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.temporal.io/sdk/activity"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities"
	"github.com/orderflow/orderflow/activities/orders"
	"github.com/orderflow/orderflow/internal/db"
)

// Activities charge and refund orders through the providers in failover order
// and keeps the audit trail: one payments row per charge and an append-only
// payment_transactions log. Before a charge request goes to a provider, a
// payment_attempts row says it may hold a charge under that key, so that a
// refund looks there and a failover never charges an order on two providers.
type Activities struct {
	DB        *pgxpool.Pool
	Providers *Router
	// FailoverQuiet is how long an ambiguous charge attempt on one provider
	// (a timeout, a 5xx) must lie in the past before the order's charge may
	// go to another provider once the first says it holds no charge: a
	// request still inside the first provider could otherwise land after
	// the lookup. Zero means 20 s.
	FailoverQuiet time.Duration
	// Cache holds the order views that the PAID status write invalidates.
	Cache *redis.Client
}

// Results of a charge attempt, the result label of
// orderflow_payment_attempts_total.
const (
	AttemptCharged  = "charged"  // the provider took the charge
	AttemptDeclined = "declined" // the provider declined the card
	// AttemptNotSent: the request never reached the provider (breaker open,
	// connection refused); the charge went on to the next provider.
	AttemptNotSent = "not_sent"
	// AttemptAmbiguous: a timeout or 5xx; the provider may hold a charge
	// and the attempt is retried under the same key.
	AttemptAmbiguous = "ambiguous"
	// AttemptUnavailable: no provider could take the charge; the order parks.
	// Its provider label is "none".
	AttemptUnavailable = "unavailable"
)

// chargeAttempts counts charge attempts by provider and result. A charge
// that fails over counts one attempt per provider asked.
var chargeAttempts, _ = otel.Meter("github.com/orderflow/orderflow/activities/payment").Int64Counter("orderflow.payment.attempts",
	metric.WithDescription("payment charge attempts by provider and result (charged, declined, not_sent, ambiguous, unavailable)"))

// ZeroAttempts exports a zero for every provider and result of r, so that
// each kind's first attempt shows in rate() and increase() (a series that
// starts at 1 hides its first increase) and the family exists from the
// start. Call it once the MeterProvider is installed, when the worker starts.
func ZeroAttempts(r *Router) {
	ctx := context.Background()
	if r != nil {
		for _, g := range r.Providers() {
			for _, result := range []string{AttemptCharged, AttemptDeclined, AttemptNotSent, AttemptAmbiguous} {
				chargeAttempts.Add(ctx, 0, metric.WithAttributes(attribute.String("provider", g.Name()), attribute.String("result", result)))
			}
		}
	}
	chargeAttempts.Add(ctx, 0, metric.WithAttributes(attribute.String("provider", "none"), attribute.String("result", AttemptUnavailable)))
}

func countAttempt(ctx context.Context, provider, result string) {
	chargeAttempts.Add(ctx, 1, metric.WithAttributes(attribute.String("provider", provider), attribute.String("result", result)))
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
func ChargeKey(orderID string, n int) string { return seqKey("charge", orderID, n) }

// seqKey is <kind>-<order> for the order's first payment, <kind>-<order>-<n>
// for its n-th.
func seqKey(kind, orderID string, n int) string {
	if n <= 1 {
		return kind + "-" + orderID
	}
	return fmt.Sprintf("%s-%s-%d", kind, orderID, n)
}

// RefundKey is the idempotency key of the refund of the charge made with chargeKey.
func RefundKey(chargeKey string) string { return "refund-" + strings.TrimPrefix(chargeKey, "charge-") }

// Charge takes the order's total and marks it PAID. An order that already has
// a charge that was not refunded gets that charge back: one order, one net
// charge. Providers are tried in failover order, skipping those whose breaker
// is open and those that refuse the connection. A decline is a non-retryable
// PaymentDeclined error; no provider able to take the charge is a
// non-retryable PaymentUnavailable error, which parks the order; a provider
// answering ambiguously (timeout, 5xx) is a plain error, retried with the
// same idempotency key on the same provider.
func (p *Activities) Charge(ctx context.Context, in ChargeInput) (ChargeResult, error) {
	st, avail, err := p.begin(ctx, in.OrderID)
	if err != nil {
		return ChargeResult{}, fmt.Errorf("charge %s: %w", in.OrderID, err)
	}
	if len(st.open) > 0 {
		res := ChargeResult{Provider: st.open[0].provider, ChargeID: st.open[0].chargeID}
		if err := p.recordStatus(ctx, in.OrderID, orderflow.StatusPaid); err != nil {
			return ChargeResult{}, fmt.Errorf("charge %s: %w", in.OrderID, err)
		}
		return res, nil
	}
	key, provider, ch, err := p.obtain(ctx, in, st, avail, false)
	if err != nil {
		return ChargeResult{}, err
	}
	return p.recordCharge(ctx, in.OrderID, key, provider, ch)
}

// begin loads the order's payment state before its next payment, noting
// that the first available provider may be asked for it, and returns the
// providers available in failover order.
func (p *Activities) begin(ctx context.Context, orderID string) (paymentState, []*Guarded, error) {
	avail := p.Providers.Available()
	first := ""
	if len(avail) > 0 {
		first = avail[0].Name()
	}
	st, err := p.load(ctx, orderID, first)
	return st, avail, err
}

// recordStatus records the order's status in a transaction of its own.
func (p *Activities) recordStatus(ctx context.Context, orderID, status string) error {
	_, err := activities.Commit(ctx, p.DB, p.Cache, orderID, func(tx pgx.Tx) ([]orderflow.Item, error) {
		return nil, orders.RecordStatus(ctx, tx, orderID, status, "")
	})
	return err
}

// obtain takes the order's next payment, a charge or (authorize) an
// authorization of in.AmountCents, from the providers in failover order
// (avail), and answers its key, its provider and the provider's record.
// Another provider that may hold a payment under the key is asked first
// (clearOthers): never a payment on two providers. A decline is a
// non-retryable PaymentDeclined error; no provider able to take it a
// non-retryable PaymentUnavailable error; an ambiguous answer (timeout,
// 5xx) a plain error, retried with the same key on the same provider.
func (p *Activities) obtain(ctx context.Context, in ChargeInput, st paymentState, avail []*Guarded, authorize bool) (string, string, Charge, error) {
	what, seq := "charge", st.n+1
	key := ChargeKey(in.OrderID, seq)
	if authorize {
		what, key = "authorize", AuthorizationKey(in.OrderID, seq)
	}
	first := ""
	if len(avail) > 0 {
		first = avail[0].Name()
	}
	req := ChargeRequest{IdempotencyKey: key, Token: in.Token, AmountCents: in.AmountCents, Currency: in.Currency,
		Description: "order " + in.OrderID}
	var refused []string
	for _, g := range avail {
		// Another provider that may hold a payment under this key must be
		// cleared before this one is asked: never a payment on two providers.
		if ch, owner, err := p.clearOthers(ctx, key, st.attempts[seq], g.Name()); err != nil {
			return "", "", Charge{}, err
		} else if owner != "" {
			return key, owner, ch, nil
		}
		fresh := freshOn(st.attempts[seq], g.Name())
		if g.Name() != first {
			var err error
			if fresh, err = p.attempt(ctx, in.OrderID, seq, g.Name()); err != nil {
				return "", "", Charge{}, fmt.Errorf("%s %s: %w", what, in.OrderID, err)
			}
		}
		var ch Charge
		var err error
		if authorize {
			ch, err = g.Authorize(ctx, req)
		} else {
			ch, err = g.Charge(ctx, req)
		}
		var declined *DeclinedError
		switch {
		case err == nil:
			countAttempt(ctx, g.Name(), AttemptCharged)
			return key, g.Name(), ch, nil
		case errors.As(err, &declined):
			countAttempt(ctx, g.Name(), AttemptDeclined)
			// A decline under this key means the provider holds no payment
			// under it, so the refund need not ask there.
			p.forget(ctx, in.OrderID, seq, g.Name())
			p.record(ctx, in.OrderID, "decline", g.Name(), "", in.AmountCents, in.Currency, key, declined.Code)
			return "", "", Charge{}, activities.Business(orderflow.PaymentDeclined, "payment declined: "+declined.Code, declined.Code)
		case errors.Is(err, ErrNotSent):
			countAttempt(ctx, g.Name(), AttemptNotSent)
			// Nothing reached this provider this time. Unless an earlier
			// request under the key went there, it holds no payment.
			if fresh {
				p.forget(ctx, in.OrderID, seq, g.Name())
				st.attempts[seq] = without(st.attempts[seq], g.Name())
			}
			refused = append(refused, err.Error())
			continue
		default:
			countAttempt(ctx, g.Name(), AttemptAmbiguous)
			p.touch(ctx, in.OrderID, seq, g.Name())
			p.record(ctx, in.OrderID, "error", g.Name(), "", in.AmountCents, in.Currency, key, err.Error())
			return "", "", Charge{}, fmt.Errorf("%s %s: %w", what, in.OrderID, err)
		}
	}
	countAttempt(ctx, "none", AttemptUnavailable)
	msg := "no payment provider can take the " + what
	if len(refused) > 0 {
		msg += ": " + strings.Join(refused, "; ")
	} else if len(avail) == 0 {
		msg += ": every provider's breaker is open"
	}
	return "", "", Charge{}, activities.Business(orderflow.PaymentUnavailable, msg)
}

// clearOthers makes sure no provider other than next holds a charge made
// under key by an earlier attempt. It returns the charge and its provider
// when one does, so the order keeps that charge; an error when a provider
// that may hold one cannot be asked, or was asked too recently.
func (p *Activities) clearOthers(ctx context.Context, key string, attempts []attempt, next string) (Charge, string, error) {
	quiet := p.FailoverQuiet
	if quiet == 0 {
		quiet = 20 * time.Second
	}
	for _, a := range attempts {
		if a.provider == next {
			continue
		}
		g, ok := p.Providers.Get(a.provider)
		if !ok {
			return Charge{}, "", activities.Business(orderflow.PaymentUnavailable,
				fmt.Sprintf("charge %s may have been made on %s, which is no longer configured", key, a.provider))
		}
		if age := time.Since(a.at); age < quiet {
			return Charge{}, "", activities.Business(orderflow.PaymentUnavailable,
				fmt.Sprintf("charge %s on %s is %s old; failover waits %s", key, a.provider, age.Round(time.Millisecond), quiet))
		}
		ch, found, err := g.FindCharge(ctx, key)
		if err != nil {
			return Charge{}, "", activities.Business(orderflow.PaymentUnavailable,
				fmt.Sprintf("charge %s may have been made on %s, which cannot be asked: %v", key, a.provider, err))
		}
		if found {
			return ch, a.provider, nil
		}
	}
	return Charge{}, "", nil
}

// recordCharge stores a charge, its audit row and the PAID status in one
// batch: one round trip, which PostgreSQL runs as one implicit transaction.
func (p *Activities) recordCharge(ctx context.Context, orderID, key, provider string, ch Charge) (ChargeResult, error) {
	const qPayment = `INSERT INTO payments (idempotency_key, order_id, provider, charge_id, amount_cents, currency, status)
		VALUES ($1, $2, $3, $4, $5, $6, 'charged') ON CONFLICT (idempotency_key) DO NOTHING`
	b := &pgx.Batch{}
	b.Queue(qPayment, key, orderID, provider, ch.ID, ch.AmountCents, ch.Currency)
	b.Queue(qAppendTransaction, orderID, "charge", provider, ch.ID, ch.AmountCents, ch.Currency, key, "")
	orders.QueueStatus(b, orderID, orderflow.StatusPaid, "")
	if err := p.send(ctx, b); err != nil {
		return ChargeResult{}, fmt.Errorf("charge %s: record: %w", orderID, err)
	}
	activities.Invalidate(ctx, p.Cache, orderID, nil)
	return ChargeResult{Provider: provider, ChargeID: ch.ID}, nil
}

// send sends a batch in one round trip, which PostgreSQL runs as one
// implicit transaction.
func (p *Activities) send(ctx context.Context, b *pgx.Batch) error {
	ctx, cancel := context.WithTimeout(ctx, db.StatementTimeout)
	defer cancel()
	return p.DB.SendBatch(ctx, b).Close()
}

// charge is an order's payment as payments record it: a charge, or an
// authorization with what was captured of it. refunded is what was
// refunded of it.
type charge struct {
	key, provider, chargeID, currency string
	amount                            int64
	unrecorded                        bool
	kind, status                      string
	renewal                           int
	expiresAt                         time.Time
	captured, refunded                int64
}

// paid is what the customer paid of the payment: a charge's amount, what
// was captured of an authorization.
func (c charge) paid() int64 {
	if c.kind == kindAuthorization {
		return c.captured
	}
	return c.amount
}

// refundable is what is left to refund of the payment: of an
// authorization, also of one a renewal voided after captures.
func (c charge) refundable() int64 { return c.paid() - c.refunded }

// Kinds and statuses of payments rows.
const (
	kindCharge        = "charge"
	kindAuthorization = "authorization"

	statusCharged    = "charged"
	statusRefunded   = "refunded"
	statusAuthorized = "authorized" // open: captures may follow
	statusCaptured   = "captured"   // closed by a final capture
	statusVoided     = "voided"
	statusExpired    = "expired"
)

// attempt says a charge request may have gone to a provider under the key of
// an order's seq-th charge.
type attempt struct {
	provider string
	at       time.Time // when a request under the key last went out
	// fresh: recorded by this activity attempt, so no earlier request under
	// the key went to this provider.
	fresh bool
}

// paymentState is what the payment tables say about an order: its charges
// that are not refunded, its authorizations (whatever their status), how
// many payments it has recorded in all, and the providers each payment
// key may have been sent to.
type paymentState struct {
	open     []charge
	auths    []charge
	n        int
	attempts map[int][]attempt
}

const qAttempt = `INSERT INTO payment_attempts (order_id, seq, provider) VALUES ($1, $2, $3)
	ON CONFLICT (order_id, seq, provider) DO NOTHING`

// load reads the order's payment state in one round trip. With a provider
// named, it first records that the order's next charge may go there; the
// batch runs as one implicit transaction, so the sequence number it takes is
// the one the reads see.
func (p *Activities) load(ctx context.Context, orderID, provider string) (paymentState, error) {
	const (
		qNext = `INSERT INTO payment_attempts (order_id, seq, provider)
			SELECT $1::uuid, count(*) + 1, $2::text FROM payments WHERE order_id = $1::uuid
			ON CONFLICT (order_id, seq, provider) DO NOTHING`
		qPayments = `SELECT p.idempotency_key, p.provider, p.charge_id, p.currency, p.amount_cents, p.status, p.kind, p.renewal,
				coalesce(p.expires_at, 'epoch'), p.refunded_cents,
				coalesce((SELECT sum(c.amount_cents) FROM payment_captures c WHERE c.payment_key = p.idempotency_key), 0)::bigint
			FROM payments p WHERE p.order_id = $1 ORDER BY p.created_at, p.idempotency_key`
		qAttempts = `SELECT seq, provider, attempted_at, attempted_at = now() FROM payment_attempts WHERE order_id = $1 ORDER BY attempted_at`
	)
	ctx, cancel := context.WithTimeout(ctx, db.StatementTimeout)
	defer cancel()
	b := &pgx.Batch{}
	if provider != "" {
		b.Queue(qNext, orderID, provider)
	}
	b.Queue(qPayments, orderID)
	b.Queue(qAttempts, orderID)
	br := p.DB.SendBatch(ctx, b)
	defer br.Close()
	if provider != "" {
		if _, err := br.Exec(); err != nil {
			return paymentState{}, fmt.Errorf("record attempt: %w", err)
		}
	}
	st := paymentState{attempts: map[int][]attempt{}}
	rows, err := br.Query()
	if err != nil {
		return paymentState{}, fmt.Errorf("load payments: %w", err)
	}
	for rows.Next() {
		var c charge
		if err := rows.Scan(&c.key, &c.provider, &c.chargeID, &c.currency, &c.amount, &c.status, &c.kind, &c.renewal,
			&c.expiresAt, &c.refunded, &c.captured); err != nil {
			rows.Close()
			return paymentState{}, fmt.Errorf("load payments: %w", err)
		}
		st.n++
		switch {
		case c.kind == kindAuthorization:
			st.auths = append(st.auths, c)
		case c.status == statusCharged:
			st.open = append(st.open, c)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return paymentState{}, fmt.Errorf("load payments: %w", err)
	}
	rows, err = br.Query()
	if err != nil {
		return paymentState{}, fmt.Errorf("load attempts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq int
		var a attempt
		if err := rows.Scan(&seq, &a.provider, &a.at, &a.fresh); err != nil {
			return paymentState{}, fmt.Errorf("load attempts: %w", err)
		}
		st.attempts[seq] = append(st.attempts[seq], a)
	}
	if err := rows.Err(); err != nil {
		return paymentState{}, fmt.Errorf("load attempts: %w", err)
	}
	return st, nil
}

// attempt records, before the request is sent, that the order's seq-th
// charge may go to provider.
func (p *Activities) attempt(ctx context.Context, orderID string, seq int, provider string) (fresh bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, db.StatementTimeout)
	defer cancel()
	tag, err := p.DB.Exec(ctx, qAttempt, orderID, seq, provider)
	if err != nil {
		return false, fmt.Errorf("record attempt on %s: %w", provider, err)
	}
	return tag.RowsAffected() == 1, nil
}

// touch moves an attempt's time to now after an ambiguous answer: the
// failover quiet period counts from the last request that went out.
func (p *Activities) touch(ctx context.Context, orderID string, seq int, provider string) {
	dctx, cancel := activities.Detached(ctx)
	defer cancel()
	const q = `UPDATE payment_attempts SET attempted_at = now() WHERE order_id = $1 AND seq = $2 AND provider = $3`
	if _, err := p.DB.Exec(dctx, q, orderID, seq, provider); err != nil {
		activity.GetLogger(ctx).Warn("payment attempt time not updated", "order_id", orderID, "provider", provider, "error", err)
	}
}

func freshOn(attempts []attempt, provider string) bool {
	for _, a := range attempts {
		if a.provider == provider {
			return a.fresh
		}
	}
	return false
}

func without(attempts []attempt, provider string) []attempt {
	out := attempts[:0:0]
	for _, a := range attempts {
		if a.provider != provider {
			out = append(out, a)
		}
	}
	return out
}

// forget drops an attempt whose request certainly never reached the
// provider. Failing to drop it costs only a lookup later, so it is logged.
func (p *Activities) forget(ctx context.Context, orderID string, seq int, provider string) {
	dctx, cancel := activities.Detached(ctx)
	defer cancel()
	const q = `DELETE FROM payment_attempts WHERE order_id = $1 AND seq = $2 AND provider = $3`
	if _, err := p.DB.Exec(dctx, q, orderID, seq, provider); err != nil {
		activity.GetLogger(ctx).Warn("dropping payment attempt failed", "order_id", orderID, "provider", provider, "error", err)
	}
}

// RefundResult says whether money went back.
type RefundResult struct {
	Refunded bool `json:"refunded"`
}

// Refund returns the order's open payments: its charges, and of its
// authorizations what was captured and not yet refunded, voiding what is
// left uncaptured. When a payment's answer was lost before it was recorded,
// the one a provider holds under the next key is found (every provider the
// attempt log says it may have gone to is asked) and refunded, or voided
// if it is an authorization. An order that was never charged is a no-op; a
// retried refund returns the first refund. A provider that cannot be asked
// is a plain error: the compensation retries until it answers.
func (p *Activities) Refund(ctx context.Context, in orderflow.OrderRef) (RefundResult, error) {
	st, lost, err := p.loadAll(ctx, in.OrderID)
	if err != nil {
		return RefundResult{}, fmt.Errorf("refund %s: %w", in.OrderID, err)
	}
	open := append(st.open, lost...)
	for _, a := range st.auths {
		if a.status == statusAuthorized || a.refundable() > 0 {
			open = append(open, a)
		}
	}
	for _, c := range open {
		if c.kind == kindAuthorization {
			err = p.settle(ctx, in.OrderID, c)
		} else {
			err = p.refund(ctx, in.OrderID, c)
		}
		if err != nil {
			return RefundResult{}, err
		}
	}
	return RefundResult{Refunded: len(open) > 0}, nil
}

// loadAll is load, and the payments providers hold that it does not
// record (lost).
func (p *Activities) loadAll(ctx context.Context, orderID string) (paymentState, []charge, error) {
	st, err := p.load(ctx, orderID, "")
	if err != nil {
		return paymentState{}, nil, err
	}
	lost, err := p.lost(ctx, orderID, st)
	return st, lost, err
}

// lost finds the payment a provider holds under the order's next key that
// payments do not record (its answer was lost): a charge or an
// authorization, asked of every provider the attempt log says the request
// may have gone to.
func (p *Activities) lost(ctx context.Context, orderID string, st paymentState) ([]charge, error) {
	var out []charge
	seq := st.n + 1
	for _, a := range st.attempts[seq] {
		g, ok := p.Providers.Get(a.provider)
		if !ok {
			return nil, fmt.Errorf("payment %d may be held by %s, which is not configured", seq, a.provider)
		}
		for _, kind := range []string{kindCharge, kindAuthorization} {
			key := ChargeKey(orderID, seq)
			if kind == kindAuthorization {
				key = AuthorizationKey(orderID, seq)
			}
			ch, found, err := g.FindCharge(ctx, key)
			if err != nil {
				return nil, fmt.Errorf("find %s on %s: %w", key, a.provider, err)
			}
			if found {
				out = append(out, charge{key: key, provider: a.provider, chargeID: ch.ID, currency: ch.Currency, amount: ch.AmountCents,
					unrecorded: true, kind: kind, status: statusAuthorized, expiresAt: ch.ExpiresAt})
			}
		}
	}
	return out, nil
}

func (p *Activities) refund(ctx context.Context, orderID string, c charge) error {
	key := RefundKey(c.key)
	g, ok := p.Providers.Get(c.provider)
	if !ok {
		return fmt.Errorf("refund %s: charge %s was made on %s, which is not configured", orderID, c.chargeID, c.provider)
	}
	amount := c.amount - c.refunded // what partial refunds left
	var rf Refund
	if amount > 0 {
		var err error
		rf, err = g.Refund(ctx, RefundRequest{IdempotencyKey: key, ChargeID: c.chargeID, AmountCents: amount, Currency: c.currency})
		if err != nil {
			p.record(ctx, orderID, "error", c.provider, c.chargeID, amount, c.currency, key, err.Error())
			return fmt.Errorf("refund %s: %w", orderID, err)
		}
	}
	err := db.InTx(ctx, p.DB, func(tx pgx.Tx) error {
		const q = `INSERT INTO payments (idempotency_key, order_id, provider, charge_id, amount_cents, currency, status, refunded_cents)
			VALUES ($1, $2, $3, $4, $5, $6, 'refunded', $5)
			ON CONFLICT (idempotency_key) DO UPDATE SET status = 'refunded', refunded_cents = payments.amount_cents, updated_at = now()`
		if _, err := tx.Exec(ctx, q, c.key, orderID, c.provider, c.chargeID, c.amount, c.currency); err != nil {
			return fmt.Errorf("update payment: %w", err)
		}
		if c.unrecorded {
			if err := appendTransaction(ctx, tx, orderID, "charge", c.provider, c.chargeID, c.amount, c.currency, c.key, "recovered from provider"); err != nil {
				return err
			}
		}
		if amount <= 0 {
			return nil
		}
		return appendTransaction(ctx, tx, orderID, "refund", c.provider, rf.ID, amount, c.currency, key, "")
	})
	if err != nil {
		return fmt.Errorf("refund %s: record: %w", orderID, err)
	}
	activity.GetLogger(ctx).Info("payment refunded", "order_id", orderID, "provider", c.provider, "amount_cents", amount)
	return nil
}

// record appends a decline or error to the audit log. It runs even when the
// activity's context is done, and a failure to write it only gets logged:
// the outcome it describes is what the activity returns either way.
func (p *Activities) record(ctx context.Context, orderID, kind, provider, ref string, amount int64, currency, key, detail string) {
	dctx, cancel := activities.Detached(ctx)
	defer cancel()
	err := db.InTx(dctx, p.DB, func(tx pgx.Tx) error {
		return appendTransaction(dctx, tx, orderID, kind, provider, ref, amount, currency, key, detail)
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
