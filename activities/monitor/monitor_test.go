package monitor_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/monitor"
	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/activities/payment/paysim"
	"github.com/orderflow/orderflow/activities/payment/stripe"
	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/db"
	"github.com/orderflow/orderflow/schema"
	"github.com/orderflow/orderflow/workers"
	monitorflow "github.com/orderflow/orderflow/workflows/monitor"
)

// freshDB is a PostgreSQL cluster of the test's own (a real server on a
// port the kernel gave), with every migration applied: "no finding" is a
// claim about a whole database.
func freshDB(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pg := testkit.PostgresServer(t)
	ctx := context.Background()
	pool, err := db.Open(ctx, pg.URL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, schema.Migrate(ctx, pool))
	return pool
}

// fixture writes orders, their stock and their money the way the saga
// leaves them, and lets a test break one thing at a time.
type fixture struct {
	t      *testing.T
	pool   *pgxpool.Pool
	paysim *paysim.Client
	region string
	now    time.Time
}

const unit = 1000 // every product's price, in cents

func (f *fixture) exec(q string, args ...any) {
	f.t.Helper()
	_, err := f.pool.Exec(context.Background(), q, args...)
	require.NoError(f.t, err, q)
}

// accepted writes the acceptance record the gateway answered 202 with.
func (f *fixture) accepted(id string, at time.Time) {
	f.exec(`INSERT INTO idempotency_keys (customer_id, operation, idempotency_key, request_hash, order_id, response_status, response_body, created_at, expires_at)
		VALUES ('c-mon', $1, $2, '\x00', $3, 202, '{}', $4, now() + interval '1 day')`, monitor.OperationCreateOrder, "key-"+id, id, at)
}

// order writes an accepted order of qty units of sku in status, its
// reservation held or committed as that status leaves it (none for a
// cancelled one), and the stock moves that go with it.
func (f *fixture) order(status, sku string, qty int, placed time.Time) string {
	f.t.Helper()
	id := uuid.NewString()
	f.accepted(id, placed)
	f.exec(`INSERT INTO orders (order_id, customer_id, region, status, total_cents, currency, created_at, updated_at)
		VALUES ($1, 'c-mon', $2, $3, $4, 'USD', $5, $5)`, id, f.region, status, int64(qty*unit), placed)
	f.exec(`INSERT INTO order_items (order_id, line, sku, quantity, unit_price_cents) VALUES ($1, 1, $2, $3, $4)`, id, sku, qty, unit)
	switch status {
	case orderflow.StatusConfirmed:
		f.exec(`INSERT INTO reservations (order_id, sku, quantity, status) VALUES ($1, $2, $3, 'committed')`, id, sku, qty)
		f.exec(`INSERT INTO inventory_events (sku, delta_on_hand, delta_reserved, reason, order_id) VALUES ($1, 0, $2, 'reserve', $3), ($1, -$2, -$2, 'commit', $3)`, sku, qty, id)
		f.exec(`UPDATE inventory SET on_hand = on_hand - $2, updated_at = now() WHERE sku = $1`, sku, qty)
	case orderflow.StatusReserved:
		f.exec(`INSERT INTO reservations (order_id, sku, quantity, status) VALUES ($1, $2, $3, 'held')`, id, sku, qty)
		f.exec(`INSERT INTO inventory_events (sku, delta_on_hand, delta_reserved, reason, order_id) VALUES ($1, 0, $2, 'reserve', $3)`, sku, qty, id)
		f.exec(`UPDATE inventory SET reserved = reserved + $2, updated_at = now() WHERE sku = $1`, sku, qty)
	}
	return id
}

// charge charges the order's amount on the simulated provider under key.
func (f *fixture) charge(key string, amount int64) payment.Charge {
	f.t.Helper()
	ch, err := f.paysim.Charge(context.Background(), payment.ChargeRequest{IdempotencyKey: key, Token: payment.TokenVisa, AmountCents: amount, Currency: "USD"})
	require.NoError(f.t, err)
	return ch
}

// recordCharge writes the payment and its log row as the saga records a charge.
func (f *fixture) recordCharge(id, key, provider, chargeID string, amount int64, status string) {
	f.exec(`INSERT INTO payments (idempotency_key, order_id, provider, charge_id, amount_cents, currency, status) VALUES ($1, $2, $3, $4, $5, 'USD', $6)`,
		key, id, provider, chargeID, amount, status)
	f.exec(`INSERT INTO payment_transactions (order_id, kind, provider, provider_ref, amount_cents, currency, idempotency_key) VALUES ($1, 'charge', $2, $3, $4, 'USD', $5)`,
		id, provider, chargeID, amount, key)
}

// paid writes a CONFIRMED order charged once of its total on paysim.
func (f *fixture) paid(sku string, qty int, placed time.Time) (string, payment.Charge) {
	id := f.order(orderflow.StatusConfirmed, sku, qty, placed)
	key := payment.ChargeKey(id, 1)
	ch := f.charge(key, int64(qty*unit))
	f.recordCharge(id, key, f.paysim.Name(), ch.ID, ch.AmountCents, "charged")
	return id, ch
}

// monitorRun runs the monitor workflow on the real Temporal server, with
// the workers' registration on a task queue of the test's own.
func monitorRun(t *testing.T, tc client.Client, tq, region string, nightly bool) monitorflow.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "monitor-test-" + uuid.NewString(), TaskQueue: tq},
		monitorflow.Workflow, monitorflow.Input{Region: region, Nightly: nightly})
	require.NoError(t, err)
	var res monitorflow.Result
	require.NoError(t, run.Get(ctx, &res))
	return res
}

func open(t *testing.T, pool *pgxpool.Pool) map[[2]string]monitor.Row {
	t.Helper()
	page, err := monitor.Store{DB: pool}.List(context.Background(), monitor.Query{Limit: 10000})
	require.NoError(t, err)
	out := map[[2]string]monitor.Row{}
	for _, r := range page.Findings {
		out[[2]string{r.Kind, r.Subject}] = r
	}
	return out
}

// A clean database gives no finding; each kind of drift planted in it (a
// lost order, a double charge, a stuck saga, stock off by one, a refund
// over its charge, ledgers that disagree with payments on paysim and on
// Stripe) is found by the monitor's runs on the real Temporal server,
// kept as an open finding and counted by the gauge; the nightly run
// resolves the one repaired and keeps the others.
func TestTheMonitorFindsEveryKindOfPlantedDriftAndNothingInACleanDatabase(t *testing.T) {
	pool := freshDB(t)
	_, ps := testkit.Paysim(t, pool, "paysim-mon")
	sp, err := stripe.New(stripe.Config{Name: "stripe-mon", APIKey: "sk_test_123", BaseURL: testkit.StripeMock(t), Timeout: 10 * time.Second})
	require.NoError(t, err)
	tc := testkit.Temporal(t)
	region := "mon-" + uuid.NewString()[:8]
	f := &fixture{t: t, pool: pool, paysim: ps, region: region, now: time.Now()}

	tq := "monitor-test-" + uuid.NewString()
	w := worker.New(tc, tq, worker.Options{})
	workers.RegisterMonitor(w, workers.Deps{DB: pool, Payments: payment.NewRouter(testkit.Breaker(), ps, sp)}, tc)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	reader := sdkmetric.NewManualReader()
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	stop, err := monitor.ObserveFindings(monitor.Store{DB: pool}, 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(stop)

	// A clean order: placed, reserved, charged once of its total on paysim,
	// committed; its SKU's row, log and warehouses agree.
	recent := f.now.Add(-30 * time.Minute)
	cleanSKU := testkit.Product(t, pool, unit, 10)
	cleanID, cleanCharge := f.paid(cleanSKU, 2, recent)

	res := monitorRun(t, tc, tq, region, false)
	assert.Empty(t, res.Found, "a clean database: no finding")
	assert.Positive(t, res.Checked)
	res = monitorRun(t, tc, tq, region, true)
	assert.Empty(t, res.Found, "nightly: no finding either")
	assert.Empty(t, open(t, pool))

	// The drifts, one of each kind.
	lost := uuid.NewString()
	f.accepted(lost, recent) // accepted, its order never written

	stuck := f.order(orderflow.StatusReserved, testkit.Product(t, pool, unit, 5), 1, f.now.Add(-90*time.Minute))

	double, _ := f.paid(testkit.Product(t, pool, unit, 5), 1, recent)
	f.charge(payment.ChargeKey(double, 2), unit) // a second charge, which payments never recorded

	drift := testkit.Product(t, pool, unit, 5)
	f.exec(`UPDATE inventory SET on_hand = on_hand + 1, updated_at = now() WHERE sku = $1`, drift)

	over := f.order(orderflow.StatusCancelled, testkit.Product(t, pool, unit, 5), 2, recent)
	overCharge := f.charge(payment.ChargeKey(over, 1), 2*unit)
	f.recordCharge(over, payment.ChargeKey(over, 1), ps.Name(), overCharge.ID, 2*unit, "refunded")
	f.exec(`INSERT INTO payment_transactions (order_id, kind, provider, provider_ref, amount_cents, currency, idempotency_key) VALUES ($1, 'refund', $2, $3, $4, 'USD', $5)`,
		over, ps.Name(), "re_"+uuid.NewString(), 2*unit, payment.RefundKey(payment.ChargeKey(over, 1)))
	// The provider refunded more than it charged (its ledger, planted: the
	// simulator itself refuses such a refund).
	f.exec(`INSERT INTO paysim.ledger (instance, idempotency_key, kind, ref, charge_ref, amount_cents, currency) VALUES ($1, $2, 'refund', $3, $4, $5, 'USD')`,
		ps.Name(), payment.RefundKey(payment.ChargeKey(over, 1)), "re_"+uuid.NewString(), overCharge.ID, 2*unit+500)

	// Payments record another charge than the one paysim made.
	mismatch := f.order(orderflow.StatusConfirmed, testkit.Product(t, pool, unit, 5), 1, recent)
	realCharge := f.charge(payment.ChargeKey(mismatch, 1), unit)
	fake := "ch_" + uuid.NewString()
	f.recordCharge(mismatch, payment.ChargeKey(mismatch, 1), ps.Name(), fake, unit, "charged")

	// Payments record a Stripe charge Stripe does not list.
	onStripe := f.order(orderflow.StatusConfirmed, testkit.Product(t, pool, unit, 5), 1, recent)
	pi := "pi_" + strings.ReplaceAll(uuid.NewString(), "-", "")
	f.recordCharge(onStripe, payment.ChargeKey(onStripe, 1), sp.Name(), pi, unit, "charged")

	res = monitorRun(t, tc, tq, region, false)
	found := open(t, pool)
	for _, want := range [][2]string{
		{monitor.KindLostOrder, lost},
		{monitor.KindStuckSaga, stuck},
		{monitor.KindChargeMismatch, double},
		{monitor.KindStockDrift, drift},
		{monitor.KindRefundOverCharge, over},
		{monitor.KindLedgerMismatch, ps.Name() + ":" + realCharge.ID},
		{monitor.KindLedgerMismatch, ps.Name() + ":" + fake},
		{monitor.KindLedgerMismatch, sp.Name() + ":" + pi},
	} {
		r, ok := found[want]
		if assert.True(t, ok, "%s %s found; open findings: %v", want[0], want[1], found) {
			assert.Contains(t, r.Detail, strings.TrimPrefix(strings.TrimPrefix(want[1], ps.Name()+":"), sp.Name()+":"))
			assert.Nil(t, r.ResolvedAt)
		}
	}
	for k, r := range found {
		assert.NotContains(t, k[1], cleanID, "nothing about the clean order: %v", r)
		assert.NotContains(t, k[1], cleanCharge.ID, "nothing about the clean order's charge: %v", r)
		assert.NotEqual(t, cleanSKU, k[1], "nothing about the clean SKU: %v", r)
	}
	for _, k := range monitor.Kinds() {
		assert.Positive(t, res.Found[k], "the run counts %s", k)
	}

	// The gauge reports the open findings of each kind.
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	gauge := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if g, ok := m.Data.(metricdata.Gauge[int64]); ok && m.Name == "orderflow.invariant.findings" {
				for _, dp := range g.DataPoints {
					kind, _ := dp.Attributes.Value("kind")
					gauge[kind.AsString()] = dp.Value
				}
			}
		}
	}
	for _, k := range monitor.Kinds() {
		n := 0
		for key := range found {
			if key[0] == k {
				n++
			}
		}
		assert.Equal(t, int64(n), gauge[k], "orderflow_invariant_findings{kind=%q}", k)
	}

	// The stock repaired, the nightly run resolves its finding and keeps
	// the others open.
	f.exec(`UPDATE inventory SET on_hand = on_hand - 1, updated_at = now() WHERE sku = $1`, drift)
	res = monitorRun(t, tc, tq, region, true)
	assert.Equal(t, int64(1), res.Resolved, "only the repaired finding resolved")
	after := open(t, pool)
	assert.NotContains(t, after, [2]string{monitor.KindStockDrift, drift})
	assert.Contains(t, after, [2]string{monitor.KindLostOrder, lost})
	assert.Contains(t, after, [2]string{monitor.KindRefundOverCharge, over})
	assert.Len(t, after, len(found)-1)
}
