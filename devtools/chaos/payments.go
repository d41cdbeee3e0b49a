package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/devtools/paysim"
	"github.com/orderflow/orderflow/internal/auth"
)

// The provider-webhook part of a run: paysim's webhooks are late, sent
// twice and out of order; a share of the orders pay with a card that needs
// 3-D Secure, whose step the run completes after a random wait (succeeded
// or failed, some after the saga's payment deadline or a cancel: late
// successes); and the run opens disputes on a few delivered orders. The
// invariants: no charge without an order, every dispute recorded once,
// every 3-D Secure order consistent.

// payRun is what the run did through the providers' admin endpoints.
type payRun struct {
	mu       sync.Mutex
	threeDS  map[string]*threeDSOrder // order id -> its step
	disputes []openedDispute
	planned  int // disputes planned so far
}

// threeDSOrder is one order paid with payment.TokenThreeDSecure.
type threeDSOrder struct {
	Outcome      string        // succeeded or failed; "" when the step was never completed
	Wait         time.Duration // after the order parked
	Cancelled    bool          // the customer cancelled while it waited
	PastDeadline bool          // completed after the saga's payment deadline
}

// openedDispute is a dispute the run opened on an order's charge.
type openedDispute struct {
	Provider, ID, OrderID string
}

// PaymentReport counts the provider-webhook part of a run.
type PaymentReport struct {
	Webhooks           paysim.Webhooks `json:"webhooks"`
	ThreeDS            int             `json:"three_ds_orders"`
	ThreeDSSucceeded   int             `json:"three_ds_succeeded"`
	ThreeDSFailed      int             `json:"three_ds_failed"`
	ThreeDSUncompleted int             `json:"three_ds_uncompleted"`
	AfterCancel        int             `json:"three_ds_after_cancel"`
	AfterDeadline      int             `json:"three_ds_after_deadline"`
	LateSuccesses      int             `json:"late_successes_refunded"`
	DisputesOpened     int             `json:"disputes_opened"`
	ProviderEvents     int             `json:"provider_events_received"`
}

// threeDSChosen says whether the next order pays with the 3-D Secure card.
func (r *Runner) threeDSChosen() bool {
	return r.cfg.ThreeDSShare > 0 && r.float() < r.cfg.ThreeDSShare
}

// disputeChosen says whether the order is one of the few disputed once
// delivered.
func (r *Runner) disputeChosen() bool {
	r.pay.mu.Lock()
	defer r.pay.mu.Unlock()
	if r.pay.planned >= r.cfg.Disputes || r.float() >= 0.05 {
		return false
	}
	r.pay.planned++
	return true
}

// setWebhookFaults makes every provider's webhooks late, twice and out of
// order, keeping the endpoint and secret the stack gave it.
func (r *Runner) setWebhookFaults(ctx context.Context) error {
	if r.cfg.Webhooks == (paysim.Webhooks{}) {
		return nil
	}
	for _, base := range r.cfg.Providers {
		var h paysim.Webhooks
		if err := adminJSON(ctx, http.MethodGet, base+"/admin/webhooks", nil, &h); err != nil {
			return fmt.Errorf("provider webhooks: %w", err)
		}
		if h.URL == "" {
			return fmt.Errorf("provider %s sends no webhooks: the stack gives it no PAYSIM_WEBHOOK_URL", base)
		}
		h.Delay, h.Jitter, h.DuplicateRate = r.cfg.Webhooks.Delay, r.cfg.Webhooks.Jitter, r.cfg.Webhooks.DuplicateRate
		if err := adminJSON(ctx, http.MethodPut, base+"/admin/webhooks", h, &h); err != nil {
			return fmt.Errorf("provider webhooks: %w", err)
		}
	}
	return nil
}

// driveThreeDS completes a 3-D Secure order's step once it parked: after a
// random wait up to ThreeDSWait, succeeded mostly, failed otherwise; a
// quarter of them are cancelled by their customer first and then succeed
// (a late success orderflow must refund).
func (r *Runner) driveThreeDS(p *placed, id string) {
	st := &threeDSOrder{}
	r.pay.mu.Lock()
	r.pay.threeDS[id] = st
	r.pay.mu.Unlock()
	gw := r.gateway(p.customer, auth.RoleCustomer)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	o, err := gw.AwaitStatus(ctx, id, 200*time.Millisecond, func(s string) bool {
		return s == orderflow.StatusPaymentPending || orderflow.Terminal(s)
	})
	if err != nil || o.Status != orderflow.StatusPaymentPending {
		return
	}
	parked := time.Now()
	ref, err := r.pendingCharge(ctx, id)
	if err != nil {
		fmt.Fprintf(r.out, "chaos: 3-D Secure order %s: %v\n", id, err)
		return
	}
	outcome := "succeeded"
	cancelFirst := r.float() < 0.25
	if !cancelFirst && r.float() < 0.3 {
		outcome = "failed"
	}
	if cancelFirst {
		r.retry(func() error { _, err := gw.CancelOrder(context.Background(), id); return err })
		_, _ = gw.AwaitStatus(ctx, id, 200*time.Millisecond, orderflow.Terminal)
	}
	if r.cfg.ThreeDSWait > 0 {
		time.Sleep(time.Duration(r.intn(int(r.cfg.ThreeDSWait/time.Millisecond))) * time.Millisecond)
	}
	if err := r.completeThreeDS(ctx, ref, outcome); err != nil {
		fmt.Fprintf(r.out, "chaos: 3-D Secure order %s: %v\n", id, err)
		return
	}
	r.pay.mu.Lock()
	st.Outcome, st.Wait, st.Cancelled = outcome, time.Since(parked), cancelFirst
	st.PastDeadline = r.cfg.PaymentDeadline > 0 && st.Wait > r.cfg.PaymentDeadline
	r.pay.mu.Unlock()
}

// pendingCharge is the charge an order's saga waits on, from paysim's
// table of charges waiting for their 3-D Secure step (it may take a
// moment to appear: the order parks as the charge answers).
func (r *Runner) pendingCharge(ctx context.Context, orderID string) (string, error) {
	const q = `SELECT ref FROM paysim.pending WHERE description = 'order ' || $1::text ORDER BY created_at DESC LIMIT 1`
	for {
		var ref string
		err := r.ledgerDB().QueryRow(ctx, q, orderID).Scan(&ref)
		if err == nil {
			return ref, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) && ctx.Err() != nil {
			return "", fmt.Errorf("its pending charge: %w", err)
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no pending charge: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// completeThreeDS ends the step of the pending charge ref on whichever
// provider holds it (another one answers resource_missing).
func (r *Runner) completeThreeDS(ctx context.Context, ref, outcome string) error {
	return r.onItsProvider(ctx, "/admin/3ds/complete", paysim.CompleteRequest{Charge: ref, Outcome: outcome}, nil)
}

// onItsProvider posts body to path on each provider in turn until one
// takes it, retrying a round for up to a minute (a provider's faults).
func (r *Runner) onItsProvider(ctx context.Context, path string, body, out any) (err error) {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		for _, base := range r.cfg.Providers {
			if err = adminJSON(ctx, http.MethodPost, base+path, body, out); err == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return err
}

// disputeWhenDelivered waits, for up to two minutes, until the order is
// delivered, then opens a dispute on its charge, as the customer's bank
// would: paysim sends charge.dispute.created.
func (r *Runner) disputeWhenDelivered(p *placed, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if !r.awaitDelivered(ctx, p.customer, id) {
		return
	}
	var provider, charge string
	const q = `SELECT provider, charge_id FROM payments WHERE order_id = $1::uuid ORDER BY created_at DESC LIMIT 1`
	if err := r.db.QueryRow(ctx, q, id).Scan(&provider, &charge); err != nil {
		fmt.Fprintf(r.out, "chaos: dispute of %s: its charge: %v\n", id, err)
		return
	}
	var opened struct {
		Dispute string `json:"id"`
	}
	if err := r.onItsProvider(ctx, "/admin/disputes", paysim.DisputeRequest{Charge: charge, Reason: "fraudulent"}, &opened); err != nil {
		fmt.Fprintf(r.out, "chaos: dispute of %s: %v\n", id, err)
		return
	}
	r.pay.mu.Lock()
	r.pay.disputes = append(r.pay.disputes, openedDispute{Provider: provider, ID: opened.Dispute, OrderID: id})
	r.pay.mu.Unlock()
}

// adminJSON sends body as JSON to a paysim admin endpoint and reads its
// 2xx answer into out.
func adminJSON(ctx context.Context, method, url string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK { // every paysim admin answer
		return fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, bytes.TrimSpace(b))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

// qProviderEventsOpen counts what the providers' late webhooks have yet
// to settle: the disputes $1 (provider and id) not recorded, and the 3-D
// Secure steps of the orders $2 that succeeded but whose charge payments
// do not record yet (taken by the saga, or refunded or voided once it
// ended).
const qProviderEventsOpen = `SELECT
	  (SELECT count(*) FROM unnest($1::text[]) AS k(key) WHERE NOT EXISTS (
	      SELECT 1 FROM payment_disputes d WHERE d.provider || ' ' || d.dispute_id = k.key))
	+ (SELECT count(*) FROM paysim.pending pd WHERE pd.status = 'succeeded' AND substr(pd.description, 7) = ANY($2::text[])
	      AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.provider = pd.instance AND p.charge_id = pd.ref))`

// waitProviderEvents waits, for up to two minutes (the webhooks are late
// and re-sent), until every dispute opened is recorded and every 3-D
// Secure success is settled, so that the checks do not race them.
func (r *Runner) waitProviderEvents(ctx context.Context) {
	if r.cfg.Ledger != nil {
		return // the ledger is kept apart: checkPayments does not run
	}
	keys, orders := []string{}, []string{}
	r.pay.mu.Lock()
	for _, d := range r.pay.disputes {
		keys = append(keys, d.Provider+" "+d.ID)
	}
	for id := range r.pay.threeDS {
		orders = append(orders, id)
	}
	r.pay.mu.Unlock()
	deadline := time.Now().Add(2 * time.Minute)
	for len(keys)+len(orders) > 0 && time.Now().Before(deadline) {
		var n int
		if err := r.db.QueryRow(ctx, qProviderEventsOpen, keys, orders).Scan(&n); err == nil && n == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// checkPayments runs the provider-webhook invariants and counts what the
// run did.
func (r *Runner) checkPayments(ctx context.Context, ids []string) ([]Invariant, *PaymentReport, error) {
	r.pay.mu.Lock()
	rep := &PaymentReport{Webhooks: r.cfg.Webhooks, ThreeDS: len(r.pay.threeDS), DisputesOpened: len(r.pay.disputes)}
	threeDS := make([]string, 0, len(r.pay.threeDS))
	for id, st := range r.pay.threeDS {
		threeDS = append(threeDS, id)
		switch st.Outcome {
		case "succeeded":
			rep.ThreeDSSucceeded++
		case "failed":
			rep.ThreeDSFailed++
		default:
			rep.ThreeDSUncompleted++
		}
		if st.Outcome != "" && st.Cancelled {
			rep.AfterCancel++
		}
		if st.Outcome != "" && st.PastDeadline {
			rep.AfterDeadline++
		}
	}
	disputes := append([]openedDispute(nil), r.pay.disputes...)
	r.pay.mu.Unlock()

	var out []Invariant
	inv, err := checkNoChargeWithoutOrder(ctx, r.db, ids)
	if err != nil {
		return nil, nil, err
	}
	out = append(out, inv)
	if inv, err = checkDisputesRecordedOnce(ctx, r.db, disputes); err != nil {
		return nil, nil, err
	}
	out = append(out, inv)
	if inv, rep.LateSuccesses, err = checkThreeDSConsistent(ctx, r.db, threeDS); err != nil {
		return nil, nil, err
	}
	out = append(out, inv)
	const qEvents = `SELECT count(*) FROM payment_provider_events WHERE order_id = ANY($1::uuid[])`
	if err := r.db.QueryRow(ctx, qEvents, ids).Scan(&rep.ProviderEvents); err != nil {
		return nil, nil, fmt.Errorf("provider events: %w", err)
	}
	return out, rep, nil
}

// qChargesOfOrders is every charge and authorization paysim made for the
// orders $1 (its description names the order, as orderflow writes it),
// whether orderflow's payments record it for that order, and whether it
// was refunded or voided.
const qChargesOfOrders = `SELECT l.instance, l.ref, l.kind, l.amount_cents, substr(l.description, 7),
	       EXISTS (SELECT 1 FROM payments p WHERE p.provider = l.instance AND p.charge_id = l.ref
	                                          AND p.order_id::text = substr(l.description, 7)) AS recorded,
	       EXISTS (SELECT 1 FROM paysim.ledger x WHERE x.instance = l.instance AND x.charge_ref = l.ref
	                                              AND x.kind IN ('refund', 'void')) AS released
	FROM paysim.ledger l
	WHERE l.kind IN ('charge', 'authorization') AND substr(l.description, 7) = ANY($1::text[])
	ORDER BY l.instance, l.ref`

// checkNoChargeWithoutOrder: every charge or authorization in each paysim
// ledger is recorded in orderflow's payments for its order, or was
// refunded or voided.
func checkNoChargeWithoutOrder(ctx context.Context, pool *pgxpool.Pool, ids []string) (Invariant, error) {
	inv := Invariant{Name: "no charge without an order (each paysim charge or authorization recorded in payments for its order, or refunded/voided)"}
	type charge struct {
		Instance, Ref, Kind string
		Amount              int64
		Order               string
		Recorded, Released  bool
	}
	list, err := collect[charge](pool.Query(ctx, qChargesOfOrders, ids))
	if err != nil {
		return inv, fmt.Errorf("charges of orders: %w", err)
	}
	for _, c := range list {
		inv.Checked++
		if !c.Recorded && !c.Released {
			inv.Counterexamples = append(inv.Counterexamples, fmt.Sprintf("%s %s %s of %d for order %s: not in payments, never refunded or voided",
				c.Instance, c.Kind, c.Ref, c.Amount, c.Order))
		}
	}
	return done(inv), nil
}

// qDispute is how often a dispute is recorded for its order, the order's
// status and its order.disputed events.
const qDispute = `SELECT (SELECT count(*) FROM payment_disputes WHERE provider = $1 AND dispute_id = $2 AND order_id = $3::uuid),
	       coalesce((SELECT status FROM orders WHERE order_id = $3::uuid), ''),
	       (SELECT count(*) FROM event_outbox WHERE order_id = $3::uuid AND type = 'order.disputed')`

// checkDisputesRecordedOnce: every dispute the run opened is recorded
// exactly once, for its order, which is DISPUTED with one order.disputed
// event.
func checkDisputesRecordedOnce(ctx context.Context, pool *pgxpool.Pool, disputes []openedDispute) (Invariant, error) {
	inv := Invariant{Name: "every dispute opened recorded exactly once (payment_disputes, the order DISPUTED, one order.disputed event)"}
	for _, d := range disputes {
		inv.Checked++
		var rows, events int
		var status string
		if err := pool.QueryRow(ctx, qDispute, d.Provider, d.ID, d.OrderID).Scan(&rows, &status, &events); err != nil {
			return inv, fmt.Errorf("dispute %s: %w", d.ID, err)
		}
		if rows != 1 || status != orderflow.StatusDisputed || events != 1 {
			inv.Counterexamples = append(inv.Counterexamples, fmt.Sprintf("%s %s of order %s: recorded %d times, order %s, %d order.disputed events",
				d.Provider, d.ID, d.OrderID, rows, status, events))
		}
	}
	return done(inv), nil
}

// qThreeDS is each order of $1 with its 3-D Secure charge at paysim: its
// step's status, whether the charge was made, recorded in payments for the
// order, and refunded or voided.
const qThreeDS = `SELECT o.order_id::text, o.status, coalesce(pd.ref, ''), coalesce(pd.status, ''),
	       EXISTS (SELECT 1 FROM paysim.ledger l WHERE l.instance = pd.instance AND l.ref = pd.ref) AS made,
	       EXISTS (SELECT 1 FROM payments p WHERE p.order_id = o.order_id AND p.charge_id = pd.ref) AS recorded,
	       EXISTS (SELECT 1 FROM paysim.ledger x WHERE x.instance = pd.instance AND x.charge_ref = pd.ref
	                                              AND x.kind IN ('refund', 'void')) AS released
	FROM orders o
	LEFT JOIN paysim.pending pd ON pd.description = 'order ' || o.order_id::text
	WHERE o.order_id::text = ANY($1::text[])
	ORDER BY o.order_id`

// checkThreeDSConsistent: each 3-D Secure order ended consistently: paid
// (its step succeeded, the charge made and recorded for it), or failed or
// cancelled with nothing held (the step failed or never completed, or the
// late success was refunded or voided). It also counts the late successes
// refunded.
func checkThreeDSConsistent(ctx context.Context, pool *pgxpool.Pool, ids []string) (Invariant, int, error) {
	inv := Invariant{Name: "each 3-D Secure order consistent (paid: step succeeded, charge recorded; failed/cancelled: nothing held)"}
	type row struct {
		ID, Status, Ref, Step    string
		Made, Recorded, Released bool
	}
	list, err := collect[row](pool.Query(ctx, qThreeDS, ids))
	if err != nil {
		return inv, 0, fmt.Errorf("3-D Secure orders: %w", err)
	}
	// An order may have more than one pending charge (a step retried on
	// another provider): the ones never completed hold nothing.
	byOrder := map[string][]row{}
	var order []string
	for _, o := range list {
		if _, ok := byOrder[o.ID]; !ok {
			order = append(order, o.ID)
		}
		byOrder[o.ID] = append(byOrder[o.ID], o)
	}
	late := 0
	for _, id := range order {
		inv.Checked++
		rows := byOrder[id]
		status := rows[0].Status
		var problems []string
		paid := false
		for _, o := range rows {
			switch {
			case o.Step == "succeeded" && o.Made && o.Recorded:
				paid = paid || !o.Released
			case o.Made && !o.Released:
				problems = append(problems, fmt.Sprintf("step %q: charge %s held (recorded %t), never refunded or voided", o.Step, o.Ref, o.Recorded))
			}
			if o.Made && o.Released && (status == orderflow.StatusFailed || status == orderflow.StatusCancelled) {
				late++
			}
		}
		switch s := status; {
		case s == orderflow.StatusConfirmed || s == orderflow.StatusDelivered || s == orderflow.StatusDisputed || orderflow.AwaitingCarrier(s):
			if !paid {
				o := rows[0]
				for _, r := range rows {
					if r.Made {
						o = r
					}
				}
				problems = []string{fmt.Sprintf("step %q, charge made %t, recorded %t", o.Step, o.Made, o.Recorded)}
			}
		case s == orderflow.StatusFailed || s == orderflow.StatusCancelled:
		default:
			problems = append(problems, "did not end")
		}
		for _, p := range problems {
			inv.Counterexamples = append(inv.Counterexamples, fmt.Sprintf("order %s %s: %s", id, status, p))
		}
	}
	return done(inv), late, nil
}

// printPayments writes the provider-webhook counts.
func printPayments(w io.Writer, p *PaymentReport) {
	if p == nil {
		return
	}
	fmt.Fprintf(w, "\nprovider webhooks (delay %s, jitter %s, sent twice %.0f%%): %d events received for the run's orders\n",
		time.Duration(p.Webhooks.Delay), time.Duration(p.Webhooks.Jitter), 100*p.Webhooks.DuplicateRate, p.ProviderEvents)
	fmt.Fprintf(w, "3-D Secure orders %d: %d succeeded, %d failed, %d never completed; %d after a cancel, %d after the payment deadline; %d late successes refunded\n",
		p.ThreeDS, p.ThreeDSSucceeded, p.ThreeDSFailed, p.ThreeDSUncompleted, p.AfterCancel, p.AfterDeadline, p.LateSuccesses)
	fmt.Fprintf(w, "disputes opened %d\n", p.DisputesOpened)
}
