package chaos

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/payment"
	apiclient "github.com/orderflow/orderflow/client"
	"github.com/orderflow/orderflow/internal/auth"
)

// sku is a product the run creates, with the stock it started with.
type sku struct {
	SKU    string
	OnHand int
	Scarce bool
}

// placed is one order the run sent.
type placed struct {
	key      string
	customer string
	req      apiclient.OrderRequest
	orderID  string // set once a 2xx came back
	resent   string // the order id a re-send with the same key got
	resend   bool
	// resentAnswered: the re-send got a final answer (2xx or 4xx) before
	// its bound; one refused with 503s throughout says nothing of the key.
	resentAnswered bool
	cancel         bool
	// cancelLate: cancelled once confirmed and fulfilling, racing the
	// carrier's pickup (202, or 409 already_shipped once a parcel left).
	cancelLate bool
	// hook: the step after the charge that fails for good for this order
	// (its customer id names it; chaoshook.go), "" for none.
	hook string
	// giveBack: one unit of its first line is returned once delivered.
	giveBack bool
	// threeDS: paid with the 3-D Secure card, its step completed by the
	// run (payments.go); dispute: disputed once delivered.
	threeDS, dispute bool
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// gateway is the API as sub with role sees it, through the transport that
// records the gateway's 503s.
func (r *Runner) gateway(sub string, role auth.Role) *apiclient.Client {
	r.mu.Lock()
	if r.api == nil {
		// Over the run's own transport (the HA run records every placement).
		next := http.DefaultTransport
		if r.http != nil && r.http.Transport != nil {
			next = r.http.Transport
		}
		r.api = &http.Client{Timeout: httpClient.Timeout, Transport: recorder{next: next, r: r}}
	}
	c := r.api
	r.mu.Unlock()
	return apiclient.New(r.cfg.APIURL, apiclient.WithHTTPClient(c), apiclient.WithToken(r.cfg.Tokens.Bearer(sub, role)))
}

// setupCatalog creates the run's products through the admin API: plenty of
// stock on most, a few units on the scarce ones, so some orders run out.
func (r *Runner) setupCatalog(ctx context.Context) ([]sku, error) {
	run := uuid.NewString()[:6]
	var skus []sku
	for i := range 20 {
		skus = append(skus, sku{SKU: fmt.Sprintf("CHAOS-%s-%02d", run, i), OnHand: 100000})
	}
	for i := range 2 {
		skus = append(skus, sku{SKU: fmt.Sprintf("CHAOS-%s-SCARCE-%d", run, i), OnHand: 15, Scarce: true})
	}
	operator := r.gateway("chaos-operator", auth.RoleOperator)
	for _, s := range skus {
		req := apiclient.ProductRequest{Name: "chaos " + s.SKU, PriceCents: int64(500 + len(s.SKU)*10), OnHand: s.OnHand}
		if _, _, err := operator.PutProduct(ctx, s.SKU, req); err != nil {
			return nil, err
		}
	}
	return skus, nil
}

// load places orders at the configured rate until ctx ends, whether or not
// earlier ones were answered.
func (r *Runner) load(ctx context.Context, skus []sku) {
	tick := time.NewTicker(time.Duration(float64(time.Second) / r.cfg.Rate))
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		p := r.newOrder(skus)
		r.mu.Lock()
		r.placed = append(r.placed, p)
		r.sent++
		r.mu.Unlock()
		wg.Add(1)
		go func() { defer wg.Done(); r.drive(p) }()
	}
}

// newOrder draws an order: 1-3 lines, mostly plentiful SKUs, 2% of lines on
// a scarce one; 90% good cards, 5% declined; 5% re-sent with the same key;
// 5% cancelled right after they are accepted, 5% once they are fulfilling.
func (r *Runner) newOrder(skus []sku) *placed {
	n := 1 + r.intn(3)
	var items []apiclient.Item
	seen := map[string]bool{}
	for range n {
		s := skus[r.intn(20)]
		if r.float() < 0.02 {
			s = skus[20+r.intn(2)]
		}
		if seen[s.SKU] {
			continue
		}
		seen[s.SKU] = true
		items = append(items, apiclient.Item{SKU: s.SKU, Quantity: 1 + r.intn(2)})
	}
	token := "tok_visa"
	switch x := r.float(); {
	case x < 0.05:
		token = "tok_chargeDeclined"
	case x < 0.10:
		token = "tok_mastercard"
	}
	customer := "chaos-" + uuid.NewString()[:8]
	hook := ""
	if r.float() < r.cfg.HookShare {
		hook = hookSteps[r.intn(len(hookSteps))]
		customer = hookPrefix + hook + "-" + uuid.NewString()[:8]
	}
	req := apiclient.OrderRequest{CustomerID: customer, Email: "chaos@example.com", PaymentToken: token, Items: items,
		ShippingAddress: &apiclient.Address{Name: "Chaos Buyer", Line1: "2 Fault Lane", City: "Lyon", PostalCode: "69001", Country: "FR"}}
	p := &placed{key: "chaos-" + uuid.NewString(), customer: customer, req: req, resend: r.float() < 0.05, hook: hook}
	switch x := r.float(); {
	case x < 0.05:
		p.cancel = true
	case x < 0.10:
		p.cancelLate = true
	case x < 0.10+r.cfg.ReturnShare && hook == "" && len(items) > 0:
		p.giveBack = true
	}
	if hook == "" && r.threeDSChosen() {
		// Its own cancel, if any, comes while it waits for its step.
		p.req.PaymentToken, p.threeDS = payment.TokenThreeDSecure, true
		p.cancel, p.cancelLate, p.giveBack = false, false, false
	} else if hook == "" && !p.cancel && !p.cancelLate && !p.giveBack && token != "tok_chargeDeclined" {
		p.dispute = r.disputeChosen()
	}
	return p
}

// drive sends an order the way a careful client does: on a 5xx or a timeout
// it retries with the same Idempotency-Key, for up to a minute.
func (r *Runner) drive(p *placed) {
	id := r.place(p)
	if id == "" {
		return
	}
	r.mu.Lock()
	p.orderID = id
	r.mu.Unlock()
	if p.cancel {
		time.Sleep(time.Duration(r.intn(50)) * time.Millisecond)
		_, err := r.gateway(p.customer, auth.RoleCustomer).CancelOrder(context.Background(), id)
		r.count(err)
	}
	if p.cancelLate {
		r.cancelWhenFulfilling(p.customer, id)
	}
	if p.giveBack {
		r.returnWhenDelivered(p, id)
	}
	if p.threeDS {
		r.driveThreeDS(p, id)
	}
	if p.dispute {
		r.disputeWhenDelivered(p, id)
	}
	if p.resend {
		again, answered := r.placeWithin(p, 90*time.Second)
		r.mu.Lock()
		p.resent, p.resentAnswered = again, answered
		r.mu.Unlock()
	}
}

// cancelWhenFulfilling waits, for up to a minute, until the order is
// fulfilling, then cancels it: the saga withdraws its shipments, refunds
// and releases the stock, unless the carrier picked a parcel up first
// (409 already_shipped). An order that ended otherwise is left alone.
func (r *Runner) cancelWhenFulfilling(customer, id string) {
	gw := r.gateway(customer, auth.RoleCustomer)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	o, err := gw.AwaitStatus(ctx, id, 100*time.Millisecond, func(s string) bool {
		return s == orderflow.StatusFulfilling || orderflow.Terminal(s)
	})
	if err != nil || o.Status != orderflow.StatusFulfilling {
		return
	}
	_, err = gw.CancelOrder(context.Background(), id)
	r.count(err)
}

// returnWhenDelivered waits, for up to two minutes, until the order is
// delivered, then returns one unit of its first line as the customer does
// and receives it as the operator does: the goods are restocked and their
// amount refunded (a partial refund). Each request is retried on a 5xx or
// no answer for up to a minute; a 4xx is final (the line's parcel was
// lost, say: nothing delivered to return).
func (r *Runner) returnWhenDelivered(p *placed, id string) {
	gw := r.gateway(p.customer, auth.RoleCustomer)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if !r.awaitDelivered(ctx, p.customer, id) {
		return
	}
	line := p.req.Items[0]
	var ret apiclient.Return
	var err error
	if !r.retry(func() error {
		ret, err = gw.CreateReturn(context.Background(), id, []orderflow.Item{{SKU: line.SKU, Quantity: 1}}, "chaos: changed my mind")
		return err
	}) {
		return
	}
	operator := r.gateway("chaos-operator", auth.RoleOperator)
	r.retry(func() error { return operator.ReceiveReturn(context.Background(), ret.ReturnID) })
}

// awaitDelivered waits until the order is delivered (true) or ended
// otherwise, or ctx ends (false).
func (r *Runner) awaitDelivered(ctx context.Context, customer, id string) bool {
	o, err := r.gateway(customer, auth.RoleCustomer).AwaitStatus(ctx, id, time.Second, func(s string) bool {
		return s == orderflow.StatusDelivered || orderflow.Terminal(s)
	})
	return err == nil && o.Status == orderflow.StatusDelivered
}

// retry calls f until it succeeds (true), answers a 4xx (false), or a
// minute of 5xx and no answers passed (false).
func (r *Runner) retry(f func() error) bool {
	deadline := time.Now().Add(time.Minute)
	for backoff := 200 * time.Millisecond; ; backoff = min(2*backoff, 3*time.Second) {
		err := f()
		r.count(err)
		status := apiclient.StatusOf(err)
		switch {
		case err == nil:
			return true
		case status/100 == 4 && status != http.StatusTooManyRequests, time.Now().After(deadline):
			return false
		}
		time.Sleep(backoff)
	}
}

// place sends the order until it gets a final answer, for up to a minute;
// it returns the order id of a 2xx, "" otherwise. Between tries it waits
// as a careful client does: its own backoff, or the Retry-After the
// gateway asked for when that is longer.
func (r *Runner) place(p *placed) string {
	id, _ := r.placeWithin(p, time.Minute)
	return id
}

// placeWithin is place with its bound; answered says whether a final
// answer (2xx or 4xx) came before it.
func (r *Runner) placeWithin(p *placed, bound time.Duration) (id string, answered bool) {
	gw := r.gateway(p.customer, auth.RoleCustomer)
	deadline := time.Now().Add(bound)
	for backoff := 200 * time.Millisecond; ; backoff = min(2*backoff, 3*time.Second) {
		acc, status, err := gw.PlaceOrder(context.Background(), p.req, p.key)
		r.count(err)
		if err == nil && acc.OrderID != "" {
			return acc.OrderID, true
		}
		if status/100 == 4 && status != http.StatusTooManyRequests {
			return "", true // a final answer: the order was refused
		}
		if time.Now().After(deadline) {
			return "", false
		}
		var e *apiclient.Error
		if errors.As(err, &e) && e.RetryAfter > backoff {
			time.Sleep(min(e.RetryAfter, time.Until(deadline)+time.Millisecond))
			continue
		}
		time.Sleep(backoff)
	}
}

// count counts a client-visible error (no answer, or a 5xx) against the
// fault window it falls in.
func (r *Runner) count(err error) {
	switch status := apiclient.StatusOf(err); {
	case err == nil:
	case status >= 500:
		r.clientError("5xx")
	case status == 0 && (errors.Is(err, context.DeadlineExceeded) || isTimeout(err)):
		r.clientError("timeout")
	case status == 0:
		r.clientError("other")
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// clientError counts an error in the fault window open now, or outside any.
func (r *Runner) clientError(kind string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	for i := len(r.windows) - 1; i >= 0; i-- {
		w := r.windows[i]
		// A fault's effects outlast it a little (a restarted server takes
		// seconds to serve again, and workers back off their polls while
		// it is down): count 10 s after its end too.
		if !now.Before(w.Start) && (w.End.IsZero() || now.Before(w.End.Add(10*time.Second))) {
			w.Errors[kind]++
			return
		}
	}
	r.clientEr[kind]++
}

// quiesce waits until every accepted order has a terminal status, or until
// the configured bound, and returns the count of orders per status.
func (r *Runner) quiesce(ctx context.Context) (map[string]int, error) {
	ids := r.acceptedIDs()
	deadline := time.Now().Add(r.cfg.Quiesce)
	for {
		counts, open, err := r.statuses(ctx, ids, deadline.Add(-r.cfg.Quiesce/3))
		if err != nil && time.Now().After(deadline) {
			return nil, err
		}
		if err == nil && open == 0 {
			// Received returns are refunded by their own workflows.
			var refunding int
			err = r.db.QueryRow(ctx, `SELECT count(*) FROM returns WHERE order_id = ANY($1::uuid[]) AND status = 'received'`, ids).Scan(&refunding)
			if err == nil && refunding > 0 && time.Now().Before(deadline) {
				open = refunding
			}
		}
		if err == nil && (open == 0 || time.Now().After(deadline)) {
			return counts, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func (r *Runner) acceptedIDs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []string
	for _, p := range r.placed {
		if p.orderID != "" {
			ids = append(ids, p.orderID)
		}
	}
	return ids
}

func (r *Runner) statuses(ctx context.Context, ids []string, settleBy time.Time) (map[string]int, int, error) {
	rows, err := r.db.Query(ctx, `SELECT status, count(*) FROM orders WHERE order_id = ANY($1::uuid[]) GROUP BY status`, ids)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	counts := map[string]int{}
	seen, ended := 0, 0
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return nil, 0, err
		}
		counts[s] = n
		seen += n
		// Orders on their carrier's way end within seconds (the simulated
		// carrier's schedule): wait for them too, so the checks do not
		// race a lost parcel's refund; past the bound, settled is enough.
		// A disputed order (the run's disputes) has ended too.
		if orderflow.Terminal(s) || s == orderflow.StatusDisputed || orderflow.Settled(s) && time.Now().After(settleBy) {
			ended += n
		}
	}
	open := len(ids) - ended
	if missing := len(ids) - seen; missing > 0 {
		counts["(missing)"] = missing
	}
	return counts, open, rows.Err()
}
