package activities_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.uber.org/zap/zaptest"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/catalog"
	"github.com/orderflow/orderflow/activities/notify"
	"github.com/orderflow/orderflow/activities/orders"
	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/activities/payment/paysim"
	"github.com/orderflow/orderflow/devtools/testkit"
)

// fixture holds the activity structs wired to the real test database and Redis.
type fixture struct {
	t    *testing.T
	pool *pgxpool.Pool
	env  *testsuite.TestActivityEnvironment
	ord  *orders.Activities
	inv  *catalog.Inventory
	pay  *payment.Activities
	sim  *paysim.Client
}

func newFixture(t *testing.T) *fixture {
	pool, rc := testkit.DB(t), testkit.Redis(t)
	var suite testsuite.WorkflowTestSuite
	f := &fixture{t: t, pool: pool, env: suite.NewTestActivityEnvironment()}
	_, f.sim = testkit.Paysim(t, pool, "paysim-test")
	f.ord = &orders.Activities{DB: pool, Cache: rc, PII: testkit.PII(t)}
	f.inv = &catalog.Inventory{DB: pool, Cache: rc, SetStatus: orders.RecordStatus}
	f.pay = &payment.Activities{DB: pool, Providers: payment.NewRouter(testkit.Breaker(), f.sim)}
	f.env.RegisterActivity(f.ord)
	f.env.RegisterActivity(f.inv)
	f.env.RegisterActivity(f.pay)
	return f
}

func (f *fixture) run(fn any, arg any) error {
	_, err := f.env.ExecuteActivity(fn, arg)
	return err
}

// order creates an order for the given SKU quantities and returns its id and lines.
func (f *fixture) order(items ...orderflow.Item) (string, []orderflow.Line) {
	f.t.Helper()
	id := uuid.NewString()
	v, err := f.env.ExecuteActivity(f.ord.Create, orders.CreateOrderInput{OrderID: id, CustomerID: "c-act", Email: "a@b.co", Region: "test", Items: items})
	require.NoError(f.t, err)
	var res orders.CreateOrderResult
	require.NoError(f.t, v.Get(&res))
	return id, res.Lines
}

func appType(err error) orderflow.Kind { return orderflow.KindOf(err) }

func nonRetryable(err error) bool {
	var app *temporal.ApplicationError
	return errors.As(err, &app) && app.NonRetryable()
}

func TestCreatePricesFromTheCatalogAndIsIdempotent(t *testing.T) {
	f := newFixture(t)
	a := testkit.Product(t, f.pool, 1999, 5)
	id, lines := f.order(orderflow.Item{SKU: a, Quantity: 2}, orderflow.Item{SKU: a, Quantity: 1})
	require.Len(t, lines, 2)
	assert.Equal(t, int64(1999), lines[0].UnitPriceCents)

	v, err := f.env.ExecuteActivity(f.ord.Create, orders.CreateOrderInput{OrderID: id, CustomerID: "c-act", Email: "a@b.co", Region: "test",
		Items: []orderflow.Item{{SKU: a, Quantity: 2}, {SKU: a, Quantity: 1}}})
	require.NoError(t, err, "a retried create succeeds")
	var again orders.CreateOrderResult
	require.NoError(t, v.Get(&again))
	assert.Equal(t, int64(3*1999), again.TotalCents)
	var n int
	require.NoError(t, f.pool.QueryRow(context.Background(), `SELECT count(*) FROM order_items WHERE order_id = $1`, id).Scan(&n))
	assert.Equal(t, 2, n)
}

func TestCreateRefusesAnUnknownSKUAsInvalidOrder(t *testing.T) {
	f := newFixture(t)
	err := f.run(f.ord.Create, orders.CreateOrderInput{OrderID: uuid.NewString(), CustomerID: "c", Email: "a@b.co", Region: "test",
		Items: []orderflow.Item{{SKU: "NOPE-" + uuid.NewString()[:6], Quantity: 1}}})
	assert.Equal(t, orderflow.InvalidOrder, appType(err))
	assert.True(t, nonRetryable(err))
}

func TestReserveIsAllOrNothingAndIdempotentUnderRetry(t *testing.T) {
	f := newFixture(t)
	plenty := testkit.Product(t, f.pool, 100, 10)
	scarce := testkit.Product(t, f.pool, 100, 1)

	t.Run("a short line fails the whole reservation as OutOfStock", func(t *testing.T) {
		id, lines := f.order(orderflow.Item{SKU: plenty, Quantity: 3}, orderflow.Item{SKU: scarce, Quantity: 2})
		err := f.run(f.inv.Reserve, catalog.ReserveInput{OrderID: id, Lines: lines})
		assert.Equal(t, orderflow.OutOfStock, appType(err))
		assert.True(t, nonRetryable(err))
		assert.Equal(t, testkit.Stock{OnHand: 10, Version: 1}, testkit.StockOf(t, f.pool, plenty))
	})
	t.Run("a retried reserve holds the stock once", func(t *testing.T) {
		id, lines := f.order(orderflow.Item{SKU: plenty, Quantity: 2}, orderflow.Item{SKU: plenty, Quantity: 1})
		require.NoError(t, f.run(f.inv.Reserve, catalog.ReserveInput{OrderID: id, Lines: lines}))
		require.NoError(t, f.run(f.inv.Reserve, catalog.ReserveInput{OrderID: id, Lines: lines}))
		assert.Equal(t, testkit.Stock{OnHand: 10, Reserved: 3, Version: 2}, testkit.StockOf(t, f.pool, plenty))
		require.NoError(t, f.run(f.inv.Release, orderflow.OrderRef{OrderID: id}))
	})
}

func TestReleaseReturnsExactlyWhatTheOrderStillHolds(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name  string
		steps func(f *fixture, id string, lines []orderflow.Line)
		want  testkit.Stock
	}{
		{"release after reserve returns the stock", func(f *fixture, id string, lines []orderflow.Line) {
			require.NoError(t, f.run(f.inv.Reserve, catalog.ReserveInput{OrderID: id, Lines: lines}))
		}, testkit.Stock{OnHand: 10, Reserved: 0, Version: 3}},
		{"release without a reservation changes nothing", func(f *fixture, id string, lines []orderflow.Line) {},
			testkit.Stock{OnHand: 10, Reserved: 0, Version: 1}},
		{"release after confirm keeps the sale", func(f *fixture, id string, lines []orderflow.Line) {
			require.NoError(t, f.run(f.inv.Reserve, catalog.ReserveInput{OrderID: id, Lines: lines}))
			require.NoError(t, f.run(f.ord.Confirm, orderflow.OrderRef{OrderID: id}))
			require.NoError(t, f.run(f.ord.Confirm, orderflow.OrderRef{OrderID: id}), "a retried confirm")
		}, testkit.Stock{OnHand: 6, Reserved: 0, Version: 3}},
		{"revert then release puts the sale back on the shelf", func(f *fixture, id string, lines []orderflow.Line) {
			require.NoError(t, f.run(f.inv.Reserve, catalog.ReserveInput{OrderID: id, Lines: lines}))
			require.NoError(t, f.run(f.ord.Confirm, orderflow.OrderRef{OrderID: id}))
			require.NoError(t, f.run(f.ord.Revert, orderflow.OrderRef{OrderID: id}))
			require.NoError(t, f.run(f.ord.Revert, orderflow.OrderRef{OrderID: id}), "a retried revert")
		}, testkit.Stock{OnHand: 10, Reserved: 0, Version: 5}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sku := testkit.Product(t, f.pool, 100, 10)
			id, lines := f.order(orderflow.Item{SKU: sku, Quantity: 4})
			tc.steps(f, id, lines)
			require.NoError(t, f.run(f.inv.Release, orderflow.OrderRef{OrderID: id}))
			require.NoError(t, f.run(f.inv.Release, orderflow.OrderRef{OrderID: id}), "a retried release")
			assert.Equal(t, tc.want, testkit.StockOf(t, f.pool, sku))
			onHand, reserved, violated := testkit.ReplayEvents(t, f.pool, sku)
			assert.NoError(t, violated)
			assert.Equal(t, [2]int{tc.want.OnHand, tc.want.Reserved}, [2]int{onHand, reserved}, "the event log replays to the row")
		})
	}
}

func TestChargeAndRefundAreIdempotent(t *testing.T) {
	f := newFixture(t)
	sku := testkit.Product(t, f.pool, 2500, 100)
	ctx := context.Background()
	ledger := func(key string) (n int) {
		require.NoError(t, f.pool.QueryRow(ctx, `SELECT count(*) FROM paysim.ledger WHERE idempotency_key = $1`, key).Scan(&n))
		return n
	}
	txs := func(id, kind string) (n int) {
		require.NoError(t, f.pool.QueryRow(ctx, `SELECT count(*) FROM payment_transactions WHERE order_id = $1 AND kind = $2`, id, kind).Scan(&n))
		return n
	}

	cases := []struct {
		name          string
		charge        bool
		chargeTwice   bool
		forgetPayment bool // the charge happened at the provider but its answer never reached the payments table
		wantRefunded  bool
	}{
		{name: "charge then refund", charge: true, wantRefunded: true},
		{name: "a retried charge charges once", charge: true, chargeTwice: true, wantRefunded: true},
		{name: "refund without a charge is a no-op", wantRefunded: false},
		{name: "refund finds a charge whose answer was lost", forgetPayment: true, wantRefunded: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, _ := f.order(orderflow.Item{SKU: sku, Quantity: 2})
			in := payment.ChargeInput{OrderID: id, Token: payment.TokenVisa, AmountCents: 5000, Currency: "USD"}
			if tc.charge {
				require.NoError(t, f.run(f.pay.Charge, in))
			}
			if tc.chargeTwice {
				require.NoError(t, f.run(f.pay.Charge, in))
			}
			if tc.forgetPayment {
				// What Charge does before it sends: the attempt row. Then the
				// provider charges, and the answer never comes back.
				_, err := f.pool.Exec(ctx, `INSERT INTO payment_attempts (order_id, seq, provider) VALUES ($1, 1, $2)`, id, f.sim.Name())
				require.NoError(t, err)
				_, err = f.sim.Charge(ctx, payment.ChargeRequest{IdempotencyKey: payment.ChargeKey(id, 1), Token: payment.TokenVisa, AmountCents: 5000, Currency: "USD"})
				require.NoError(t, err)
			}
			v, err := f.env.ExecuteActivity(f.pay.Refund, orderflow.OrderRef{OrderID: id})
			require.NoError(t, err)
			var res payment.RefundResult
			require.NoError(t, v.Get(&res))
			assert.Equal(t, tc.wantRefunded, res.Refunded)
			require.NoError(t, f.run(f.pay.Refund, orderflow.OrderRef{OrderID: id}), "a retried refund")

			want := 0
			if tc.wantRefunded {
				want = 1
			}
			assert.Equal(t, want, ledger(payment.ChargeKey(id, 1)), "provider charges")
			assert.Equal(t, want, ledger(payment.RefundKey(payment.ChargeKey(id, 1))), "provider refunds")
			assert.Equal(t, want, txs(id, "charge"), "audited charges")
			assert.Equal(t, want, txs(id, "refund"), "audited refunds")
		})
	}
}

func TestChargeDeclineIsNonRetryableAndAudited(t *testing.T) {
	f := newFixture(t)
	sku := testkit.Product(t, f.pool, 100, 10)
	id, _ := f.order(orderflow.Item{SKU: sku, Quantity: 1})
	err := f.run(f.pay.Charge, payment.ChargeInput{OrderID: id, Token: payment.TokenChargeDeclined, AmountCents: 100, Currency: "USD"})
	assert.Equal(t, orderflow.PaymentDeclined, appType(err))
	assert.True(t, nonRetryable(err))
	var declines int
	require.NoError(t, f.pool.QueryRow(context.Background(), `SELECT count(*) FROM payment_transactions WHERE order_id = $1 AND kind = 'decline'`, id).Scan(&declines))
	assert.Equal(t, 1, declines)
	var attempts int
	require.NoError(t, f.pool.QueryRow(context.Background(), `SELECT count(*) FROM payment_attempts WHERE order_id = $1`, id).Scan(&attempts))
	assert.Zero(t, attempts, "a declined charge leaves no provider for the refund to ask")
}

func TestConfirmAndFailureEnqueueTheirNotificationOnce(t *testing.T) {
	f := newFixture(t)
	sku := testkit.Product(t, f.pool, 100, 10)
	confirmed, lines := f.order(orderflow.Item{SKU: sku, Quantity: 1})
	require.NoError(t, f.run(f.inv.Reserve, catalog.ReserveInput{OrderID: confirmed, Lines: lines}))
	require.NoError(t, f.run(f.ord.Confirm, orderflow.OrderRef{OrderID: confirmed}))
	require.NoError(t, f.run(f.ord.Confirm, orderflow.OrderRef{OrderID: confirmed}), "a retried confirm")
	failed, _ := f.order(orderflow.Item{SKU: sku, Quantity: 1})
	for range 2 {
		require.NoError(t, f.run(f.ord.SetStatus, orders.SetStatusInput{OrderID: failed, Status: orderflow.StatusFailed, FailureReason: "out_of_stock"}))
	}

	kinds := func(id string) []string {
		rows, err := f.pool.Query(context.Background(), `SELECT kind || ':' || status FROM notifications WHERE order_id = $1`, id)
		require.NoError(t, err)
		out, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		return out
	}
	assert.Equal(t, []string{"order_confirmed:pending"}, kinds(confirmed))
	assert.Equal(t, []string{"order_failed:pending"}, kinds(failed))
}

// mailbox is the mail provider's side of the outbox: it records what
// arrives and refuses the first failFirst messages.
type mailbox struct {
	mu        sync.Mutex
	got       map[int64]int
	failFirst int
}

func (m *mailbox) Send(_ context.Context, msg notify.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failFirst > 0 {
		m.failFirst--
		return errors.New("mail provider answered 503")
	}
	m.got[msg.ID]++
	return nil
}

func TestOutboxDeliversEachMessageOnceAndRetriesFailures(t *testing.T) {
	f := newFixture(t)
	sku := testkit.Product(t, f.pool, 100, 10)
	var ids []string
	for range 5 {
		id, _ := f.order(orderflow.Item{SKU: sku, Quantity: 1})
		require.NoError(t, f.run(f.ord.SetStatus, orders.SetStatusInput{OrderID: id, Status: orderflow.StatusFailed, FailureReason: "x"}))
		ids = append(ids, id)
	}
	box := &mailbox{got: map[int64]int{}, failFirst: 2}
	ob := &notify.Outbox{DB: f.pool, PII: testkit.PII(t), Region: "test", Mailer: box, Log: zaptest.NewLogger(t), Workers: 2, Poll: 20 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); ob.Run(ctx) }()
	defer func() { cancel(); <-done }()

	// The two refused messages come back after their backoff (1-2 s).
	require.Eventually(t, func() bool {
		var sent int
		require.NoError(t, f.pool.QueryRow(context.Background(),
			`SELECT count(*) FROM notifications WHERE order_id = ANY($1::uuid[]) AND status = 'sent'`, ids).Scan(&sent))
		return sent == len(ids)
	}, 15*time.Second, 50*time.Millisecond)
	box.mu.Lock()
	defer box.mu.Unlock()
	for id, n := range box.got {
		assert.Equal(t, 1, n, "message %d delivered once", id)
	}
	assert.GreaterOrEqual(t, ob.Failed(), int64(2))
}

// An operator who resets a compensated saga re-runs its steps: the stock is
// held again and the order is charged anew, once, under the next charge key.
func TestRerunAfterCompensationReservesAndChargesAgainOnce(t *testing.T) {
	f := newFixture(t)
	sku := testkit.Product(t, f.pool, 500, 10)
	id, lines := f.order(orderflow.Item{SKU: sku, Quantity: 2})
	in := payment.ChargeInput{OrderID: id, Token: payment.TokenVisa, AmountCents: 1000, Currency: "USD"}

	require.NoError(t, f.run(f.inv.Reserve, catalog.ReserveInput{OrderID: id, Lines: lines}))
	require.NoError(t, f.run(f.pay.Charge, in))
	require.NoError(t, f.run(f.pay.Refund, orderflow.OrderRef{OrderID: id}))
	require.NoError(t, f.run(f.inv.Release, orderflow.OrderRef{OrderID: id}))
	assert.Equal(t, 0, testkit.StockOf(t, f.pool, sku).Reserved)

	// the re-run
	require.NoError(t, f.run(f.inv.Reserve, catalog.ReserveInput{OrderID: id, Lines: lines}))
	require.NoError(t, f.run(f.pay.Charge, in))
	require.NoError(t, f.run(f.pay.Charge, in), "a retried charge in the re-run")
	require.NoError(t, f.run(f.ord.Confirm, orderflow.OrderRef{OrderID: id}))
	assert.Equal(t, testkit.Stock{OnHand: 8, Reserved: 0, Version: 5}, testkit.StockOf(t, f.pool, sku))

	var charged, refunded int
	require.NoError(t, f.pool.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE status = 'charged'), count(*) FILTER (WHERE status = 'refunded')
		FROM payments WHERE order_id = $1`, id).Scan(&charged, &refunded))
	assert.Equal(t, [2]int{1, 1}, [2]int{charged, refunded}, "one net charge")

	// A re-run of a confirmed order changes nothing and charges nothing more.
	require.NoError(t, f.run(f.inv.Reserve, catalog.ReserveInput{OrderID: id, Lines: lines}))
	require.NoError(t, f.run(f.pay.Charge, in))
	require.NoError(t, f.run(f.ord.Confirm, orderflow.OrderRef{OrderID: id}))
	assert.Equal(t, testkit.Stock{OnHand: 8, Reserved: 0, Version: 5}, testkit.StockOf(t, f.pool, sku))
	var rows int
	require.NoError(t, f.pool.QueryRow(context.Background(), `SELECT count(*) FROM payments WHERE order_id = $1`, id).Scan(&rows))
	assert.Equal(t, 2, rows)
}

// The primary charges the order but its answer is lost, then it dies. The
// charge must not go to the secondary while the primary may hold it: the
// order waits (PaymentUnavailable, which parks it) until the primary is back
// and says it holds the charge, which the order then keeps. The secondary
// never sees a request.
func TestFailoverNeverChargesAnOrderOnTwoProvidersAfterALostAnswer(t *testing.T) {
	f := newFixture(t)
	a := testkit.StartPaysim(t, "lost-a-"+uuid.NewString()[:6], "PAYSIM_LOST_ANSWER_RATE=1")
	b := testkit.StartPaysim(t, "lost-b-"+uuid.NewString()[:6])
	breaker := payment.BreakerSettings{Window: 10 * time.Second, FailureRatio: 0.5, MinRequests: 10, OpenTimeout: time.Second, HalfOpenSuccesses: 1}
	pay := &payment.Activities{DB: f.pool, Providers: payment.NewRouter(breaker, a.Client(2*time.Second), b.Client(2*time.Second)),
		FailoverQuiet: 300 * time.Millisecond}
	f.env.RegisterActivity(pay)
	sku := testkit.Product(t, f.pool, 700, 5)
	id, _ := f.order(orderflow.Item{SKU: sku, Quantity: 1})
	in := payment.ChargeInput{OrderID: id, Token: payment.TokenVisa, AmountCents: 700, Currency: "USD"}

	err := f.run(pay.Charge, in)
	require.Error(t, err, "the answer was lost")
	assert.False(t, nonRetryable(err), "a lost answer is a plain, retryable error: %v", err)

	a.Kill()
	err = f.run(pay.Charge, in)
	require.Error(t, err)
	if appType(err) != orderflow.PaymentUnavailable {
		// The request went out on the kept-alive connection before the
		// client saw it close, and was then re-sent on a dial that was
		// refused: it counts as possibly sent, a plain retryable error, and
		// the order waits all the same.
		assert.False(t, nonRetryable(err), "possibly sent to the primary: %v", err)
		err = f.run(pay.Charge, in)
	}
	assert.Equal(t, orderflow.PaymentUnavailable, appType(err), "refused by the primary, and the secondary must wait: %v", err)
	time.Sleep(400 * time.Millisecond) // past the quiet period: the primary is asked, and cannot answer
	err = f.run(pay.Charge, in)
	assert.Equal(t, orderflow.PaymentUnavailable, appType(err), "%v", err)

	a.Start() // with its answers no longer lost
	req, err := http.NewRequest(http.MethodPut, a.URL+"/admin/faults", strings.NewReader(`{}`))
	require.NoError(t, err)
	res0, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = res0.Body.Close()
	require.Equal(t, http.StatusOK, res0.StatusCode)
	time.Sleep(1100 * time.Millisecond) // past an open breaker's timeout
	v, err := f.env.ExecuteActivity(pay.Charge, in)
	require.NoError(t, err)
	var res payment.ChargeResult
	require.NoError(t, v.Get(&res))
	assert.Equal(t, a.Name, res.Provider, "the order keeps the charge the primary made")

	var onA, onB int
	require.NoError(t, f.pool.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE instance = $2), count(*) FILTER (WHERE instance = $3)
		FROM paysim.ledger WHERE idempotency_key = $1 AND kind = 'charge'`, payment.ChargeKey(id, 1), a.Name, b.Name).Scan(&onA, &onB))
	assert.Equal(t, 1, onA)
	assert.Equal(t, 0, onB, "the secondary never charged the order")
}
