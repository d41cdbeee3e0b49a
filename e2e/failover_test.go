package e2e

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/api"
	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/workers"
)

// failoverBreaker has the design's thresholds (50% of at least 10 calls in
// 10 s, 3 trial successes) with a 3 s open state instead of 30 s.
var failoverBreaker = breakerOpenFor(3 * time.Second)

// providerStack is the e2e stack with a worker charging through real paysim
// processes in failover order.
type providerStack struct {
	*stack
	router *payment.Router
}

func newProviderStack(t *testing.T, parking api.PaymentSchedule, providers ...*testkit.PaysimProc) *providerStack {
	s := newStack(t, false, func(srv *api.Server) { srv.Payment = parking })
	var ps []payment.Provider
	for _, p := range providers {
		ps = append(ps, p.Client(2*time.Second))
	}
	router := payment.NewRouter(failoverBreaker, ps...)
	w := workers.New(s.temporal, workers.Deps{DB: s.pool, Cache: s.rc, PII: testkit.PII(t), Payments: router, FailoverQuiet: 2 * time.Second,
		Log: zaptest.NewLogger(t)}, workers.Config{Region: s.region})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	return &providerStack{stack: s, router: router}
}

// placeAll places n orders of one unit of sku, every ~interval, from several
// clients at once, and returns their ids. Every answer must be a 202.
func (s *providerStack) placeAll(n int, sku string, interval time.Duration, during func(i int)) []string {
	s.t.Helper()
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		if during != nil {
			during(i)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := s.place(uuid.NewString(), newOrder(customer(), payment.TokenVisa, api.OrderItem{SKU: sku, Quantity: 1}))
			if r.status != http.StatusAccepted {
				s.t.Errorf("order %d: %d %s", i, r.status, r.body)
				return
			}
			var a api.Accepted
			r.json(s.t, &a)
			ids[i] = a.OrderID
		}()
		time.Sleep(interval)
	}
	wg.Wait()
	return ids
}

// ledgerCharges is what both providers' ledgers hold for an order: charges
// per instance and refunds in all. An authorization (a saga that
// authorizes, then captures) counts as a charge and its void as a refund:
// an order holds one net payment either way.
func ledgerCharges(t *testing.T, s *stack, orderID string) (byInstance map[string]int, refunds int) {
	t.Helper()
	rows, err := s.pool.Query(context.Background(), `SELECT instance, kind FROM paysim.ledger
		WHERE idempotency_key = 'charge-' || $1 OR idempotency_key LIKE 'charge-' || $1 || '-%'
		   OR idempotency_key = 'auth-' || $1 OR idempotency_key LIKE 'auth-' || $1 || '-%'
		   OR idempotency_key = 'void-' || $1 OR idempotency_key LIKE 'void-' || $1 || '-%'
		   OR idempotency_key = 'refund-' || $1 OR idempotency_key LIKE 'refund-' || $1 || '-%'`, orderID)
	require.NoError(t, err)
	type row struct{ Instance, Kind string }
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
	require.NoError(t, err)
	byInstance = map[string]int{}
	for _, r := range got {
		if r.Kind == "charge" || r.Kind == "authorization" {
			byInstance[r.Instance]++
		} else {
			refunds++
		}
	}
	return byInstance, refunds
}

// requireOneNetCharge audits both ledgers: a CONFIRMED order holds exactly
// one charge that was not refunded, on one provider; a FAILED one nets none.
func requireOneNetCharge(t *testing.T, s *stack, id, status string) (provider string) {
	t.Helper()
	charges, refunds := ledgerCharges(t, s, id)
	total := 0
	for inst, n := range charges {
		total += n
		provider = inst
	}
	assert.LessOrEqual(t, len(charges), 1, "order %s charged on %v", id, charges)
	switch status {
	case orderflow.StatusConfirmed:
		assert.Equal(t, 1, total-refunds, "order %s: charges %v, refunds %d", id, charges, refunds)
	default:
		assert.Equal(t, 0, total-refunds, "order %s (%s): charges %v, refunds %d", id, status, charges, refunds)
	}
	return provider
}

func (s *stack) waitAllTerminal(ids []string, within time.Duration) map[string]string {
	s.t.Helper()
	out := map[string]string{}
	deadline := time.Now().Add(within)
	for _, id := range ids {
		out[id] = s.waitTerminalUntil(id, deadline).Status
	}
	return out
}

// Kill -9 the primary provider while orders are being charged through it
// (each charge takes it 150 ms, so several are inside it at the kill). The
// breaker opens, charges move to the secondary, and no order is charged
// twice: the orders whose request died inside the primary wait, parked,
// until it is back and says whether it charged them.
func TestKillingThePrimaryProviderMidLoadMovesChargesToTheSecondaryAndChargesNoOrderTwice(t *testing.T) {
	a := testkit.StartPaysim(t, "fo-a-"+uuid.NewString()[:6], "PAYSIM_LATENCY=150ms")
	b := testkit.StartPaysim(t, "fo-b-"+uuid.NewString()[:6])
	s := newProviderStack(t, api.PaymentSchedule{Deadline: 2 * time.Minute, RetryInitial: 500 * time.Millisecond, RetryMax: time.Second}, a, b)
	sku := testkit.Product(t, s.pool, 250, 1000)

	ids := s.placeAll(60, sku, 40*time.Millisecond, func(i int) {
		if i == 30 {
			a.Kill()
		}
	})
	// Everything placed after the kill is charged on the secondary while
	// the primary is down; then the primary comes back.
	time.Sleep(3 * time.Second)
	ga, _ := s.router.Get(a.Name)
	assert.GreaterOrEqual(t, ga.Opened(), int64(1), "the primary's breaker opened")
	a.Start()

	final := s.waitAllTerminal(ids, 60*time.Second)
	onB := 0
	for _, id := range ids {
		assert.Equal(t, orderflow.StatusConfirmed, final[id], "order %s", id)
		if requireOneNetCharge(t, s.stack, id, final[id]) == b.Name {
			onB++
		}
	}
	var parked int
	require.NoError(t, s.pool.QueryRow(context.Background(), `SELECT count(*) FROM order_status_history
		WHERE order_id = ANY($1::uuid[]) AND status = 'PAYMENT_PENDING'`, ids).Scan(&parked))
	t.Logf("%d of %d orders charged on the secondary, %d parked until the primary answered", onB, len(ids), parked)
	assert.GreaterOrEqual(t, onB, 25, "charges after the kill went to the secondary")
	assert.Less(t, onB, len(ids), "charges before the kill went to the primary")
	assert.Equal(t, 0, testkit.StockOf(t, s.pool, sku).Reserved)
	assert.Equal(t, 1000-len(ids), testkit.StockOf(t, s.pool, sku).OnHand)
}

// With every provider down, orders are accepted and park in
// PAYMENT_PENDING, visible in the API; when one provider comes back, every
// parked order completes with no operator action.
func TestAllProvidersDownParksOrdersAndTheyConfirmWhenOneReturns(t *testing.T) {
	a := testkit.StartPaysim(t, "pk-a-"+uuid.NewString()[:6])
	b := testkit.StartPaysim(t, "pk-b-"+uuid.NewString()[:6])
	s := newProviderStack(t, api.PaymentSchedule{Deadline: 2 * time.Minute, RetryInitial: 500 * time.Millisecond, RetryMax: time.Second}, a, b)
	sku := testkit.Product(t, s.pool, 300, 100)
	a.Kill()
	b.Kill()

	ids := s.placeAll(8, sku, 20*time.Millisecond, nil)
	for _, id := range ids {
		require.Eventually(t, func() bool {
			o, code := s.order(id)
			return code == http.StatusOK && o.Status == orderflow.StatusPaymentPending
		}, 20*time.Second, 100*time.Millisecond, "order %s parks in PAYMENT_PENDING", id)
	}
	assert.Equal(t, len(ids), testkit.StockOf(t, s.pool, sku).Reserved, "parked orders keep their stock held")

	b.Start()
	final := s.waitAllTerminal(ids, 30*time.Second)
	for _, id := range ids {
		assert.Equal(t, orderflow.StatusConfirmed, final[id], "order %s", id)
		assert.Equal(t, b.Name, requireOneNetCharge(t, s.stack, id, final[id]))
	}
	assert.Equal(t, 0, testkit.StockOf(t, s.pool, sku).Reserved)
}

// With every provider down past the payment deadline, parked orders end
// FAILED payment_unavailable and their stock goes back on the shelf.
func TestAllProvidersDownPastTheDeadlineFailsPaymentUnavailableAndReleasesStock(t *testing.T) {
	a := testkit.StartPaysim(t, "dl-a-"+uuid.NewString()[:6])
	s := newProviderStack(t, api.PaymentSchedule{Deadline: 2 * time.Second, RetryInitial: 500 * time.Millisecond, RetryMax: time.Second}, a)
	sku := testkit.Product(t, s.pool, 300, 10)
	a.Kill()

	ids := s.placeAll(3, sku, 20*time.Millisecond, nil)
	final := s.waitAllTerminal(ids, 30*time.Second)
	for _, id := range ids {
		o, _ := s.order(id)
		assert.Equal(t, orderflow.StatusFailed, final[id])
		require.NotNil(t, o.FailureReason)
		assert.Equal(t, "payment_unavailable", *o.FailureReason)
		requireOneNetCharge(t, s.stack, id, final[id])
	}
	st := testkit.StockOf(t, s.pool, sku)
	assert.Equal(t, 0, st.Reserved)
	assert.Equal(t, 10, st.OnHand)
}

// A cancel of a parked order is accepted at once even when its refund must
// wait: the provider answers every call 500, so the charge may exist and the
// refund keeps asking. The chaos run saw such cancels answered 503 after the
// gateway's 5 s, because the Update completes only with the workflow task
// that runs the compensations.
func TestCancelOfAParkedOrderIsAcceptedWhileItsRefundWaitsForTheProvider(t *testing.T) {
	a := testkit.StartPaysim(t, "cx-a-"+uuid.NewString()[:6], "PAYSIM_ERROR_RATE=1")
	s := newProviderStack(t, api.PaymentSchedule{Deadline: 2 * time.Minute, RetryInitial: 500 * time.Millisecond, RetryMax: time.Second}, a)
	sku := testkit.Product(t, s.pool, 300, 5)
	id := s.placeOK(newOrder(customer(), payment.TokenVisa, api.OrderItem{SKU: sku, Quantity: 2}))
	require.Eventually(t, func() bool {
		o, code := s.order(id)
		return code == http.StatusOK && o.Status == orderflow.StatusPaymentPending
	}, 20*time.Second, 100*time.Millisecond)

	r := s.do(http.MethodPost, "/v1/orders/"+id+"/cancel", nil, nil)
	require.Equal(t, http.StatusAccepted, r.status, string(r.body))
	var c api.CancelAccepted
	r.json(t, &c)
	assert.True(t, c.CancelRequested)

	// The provider recovers: the refund finds no charge and the order ends.
	req, err := http.NewRequest(http.MethodPut, a.URL+"/admin/faults", strings.NewReader(`{}`))
	require.NoError(t, err)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = res.Body.Close()
	final := s.waitAllTerminal([]string{id}, 30*time.Second)
	assert.Equal(t, orderflow.StatusCancelled, final[id])
	requireOneNetCharge(t, s.stack, id, final[id])
	assert.Equal(t, testkit.Stock{OnHand: 5, Reserved: 0}, stockNoVersion(testkit.StockOf(t, s.pool, sku)))
}

func stockNoVersion(st testkit.Stock) testkit.Stock { st.Version = 0; return st }
