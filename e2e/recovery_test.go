package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/notify"
	"github.com/orderflow/orderflow/activities/orders"
	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/api"
	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/workers"
	"github.com/orderflow/orderflow/workflows/order"
)

// faultyConfirm stands in for Orders.Confirm in the test's worker, under the
// same activity name: while fault is set it fails every call with a
// non-retryable error, as a broken write of our own would; otherwise it runs
// the real Confirm and counts, per order, the calls that succeeded.
type faultyConfirm struct {
	real  *orders.Activities
	fault atomic.Bool

	mu        sync.Mutex
	confirmed map[string]int
}

func (f *faultyConfirm) Confirm(ctx context.Context, in orderflow.OrderRef) error {
	if f.fault.Load() {
		return temporal.NewNonRetryableApplicationError("injected fault: the confirming write is refused", "InjectedFault", nil)
	}
	if err := f.real.Confirm(ctx, in); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.confirmed[in.OrderID]++
	return nil
}

func (f *faultyConfirm) confirms(orderID string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.confirmed[orderID]
}

// startFaultyWorker starts the region's worker, as startWorker does, with
// Confirm replaced by a faultyConfirm.
func (s *stack) startFaultyWorker() *faultyConfirm {
	_, provider := testkit.Paysim(s.t, s.pool, "paysim-recovery")
	p := workers.New(s.temporal, workers.Deps{DB: s.pool, Cache: s.rc, PII: testkit.PII(s.t), Payments: payment.NewRouter(e2eBreaker, provider)},
		workers.Config{Region: s.region})
	f := &faultyConfirm{real: &orders.Activities{DB: s.pool, Cache: s.rc, PII: testkit.PII(s.t)}, confirmed: map[string]int{}}
	p.Orders.RegisterActivityWithOptions(f.Confirm, activity.RegisterOptions{Name: "Confirm", DisableAlreadyRegisteredCheck: true})
	if err := p.Start(); err != nil {
		s.t.Fatalf("start worker: %v", err)
	}
	s.t.Cleanup(p.Stop)
	return f
}

// temporalCLI runs the real temporal CLI against the suite's server and
// returns its output, failing the test when it exits non-zero.
func temporalCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, err := temporalCLIErr(t, args...)
	require.NoError(t, err, "temporal %s:\n%s", strings.Join(args, " "), out)
	return out
}

// requireConfirmFailed waits for the order's saga to end and requires that it
// failed with ConfirmFailed; it returns the failed run's ID.
func (s *stack) requireConfirmFailed(orderID string) string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run := s.temporal.GetWorkflow(ctx, order.WorkflowID(orderID), "")
	err := run.Get(ctx, nil)
	var app *temporal.ApplicationError
	require.True(s.t, errors.As(err, &app), "order %s: want the saga failed with ConfirmFailed, got %v", orderID, err)
	require.Equal(s.t, string(orderflow.ConfirmFailed), app.Type(), "order %s: %v", orderID, err)
	require.Contains(s.t, app.Error(), orderID, "the failure names the order")
	return run.GetRunID()
}

// waitNewRunCompleted waits until the order's current run is not failedRun
// (the reset made a new one) and that run has completed, and returns its ID.
func (s *stack) waitNewRunCompleted(orderID, failedRun string) string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	wid := order.WorkflowID(orderID)
	for {
		d, err := s.temporal.DescribeWorkflow(ctx, wid, "")
		require.NoError(s.t, err)
		if run := d.RawResponse.WorkflowExecutionInfo.Execution.RunId; run != failedRun {
			var v order.View
			require.NoError(s.t, s.temporal.GetWorkflow(ctx, wid, run).Get(ctx, &v), "the reset run of %s", wid)
			require.Equal(s.t, orderflow.StatusConfirmed, v.Status)
			return run
		}
		require.NoError(s.t, ctx.Err(), "no new run of %s after the reset", wid)
		time.Sleep(100 * time.Millisecond)
	}
}

// waitListed runs `temporal workflow list --query q` until it lists every
// one of wids (visibility is eventually consistent).
func waitListed(t *testing.T, q string, wids ...string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := temporalCLI(t, "workflow", "list", "--query", q)
		missing := 0
		for _, w := range wids {
			if !strings.Contains(out, w) {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("`temporal workflow list --query '%s'` never listed %v:\n%s", q, wids, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// paymentsOf counts an order's rows in payments by status and its
// payment_transactions by kind; an authorization captured in full counts
// as charged, its final capture as the charge.
func paymentsOf(t *testing.T, s *stack, orderID string) (charged, refunded, txCharges, txRefunds int) {
	t.Helper()
	require.NoError(t, s.pool.QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM payments WHERE order_id = $1 AND status IN ('charged', 'captured')),
		(SELECT count(*) FROM payments WHERE order_id = $1 AND status = 'refunded'),
		(SELECT count(*) FROM payment_transactions WHERE order_id = $1 AND kind IN ('charge', 'capture')),
		(SELECT count(*) FROM payment_transactions WHERE order_id = $1 AND kind = 'refund')`, orderID).
		Scan(&charged, &refunded, &txCharges, &txRefunds))
	return
}

// requireChargedOnce audits our payments table and the provider's ledger: one
// charge for the order, nothing refunded.
func requireChargedOnce(t *testing.T, s *stack, orderID string) {
	t.Helper()
	charged, refunded, txCharges, txRefunds := paymentsOf(t, s, orderID)
	assert.Equal(t, [4]int{1, 0, 1, 0}, [4]int{charged, refunded, txCharges, txRefunds},
		"order %s: payments charged/refunded, transactions charge/refund", orderID)
	byInstance, refunds := ledgerCharges(t, s, orderID)
	assert.Equal(t, map[string]int{"paysim-recovery": 1}, byInstance, "order %s: the provider holds one charge", orderID)
	assert.Zero(t, refunds, "order %s: the provider refunded nothing", orderID)
}

// stockEvents counts an order's inventory_events by reason.
func stockEvents(t *testing.T, s *stack, orderID string) map[string]int {
	t.Helper()
	rows, err := s.pool.Query(context.Background(), `SELECT reason, count(*) FROM inventory_events WHERE order_id = $1 GROUP BY reason`, orderID)
	require.NoError(t, err)
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var reason string
		var n int
		require.NoError(t, rows.Scan(&reason, &n))
		out[reason] = n
	}
	require.NoError(t, rows.Err())
	return out
}

// The recovery: a saga stopped by a non-retryable fault in Confirm
// is held PAID (charged once, stock held, nothing refunded) and fails for an
// operator; once the fault is cleared, the real temporal CLI resets it, one
// by workflow ID and one through a batch reset by query, and each order is
// confirmed exactly once with still exactly one charge.
func TestRecovery_ConfirmFaultHeldThenCLIResetConfirmsOnceWithoutASecondCharge(t *testing.T) {
	testkit.Require(t, testkit.EnvCLI)
	s := newStack(t, false, withCodec(t))
	f := s.startFaultyWorker()
	sku := testkit.Product(t, s.pool, 1999, 10)

	f.fault.Store(true)
	single := s.placeOK(newOrder(customer(), payment.TokenVisa, api.OrderItem{SKU: sku, Quantity: 2}))
	batchCustomer := customer()
	batched := s.placeOK(newOrder(batchCustomer, payment.TokenVisa, api.OrderItem{SKU: sku, Quantity: 1}))

	failedRun := map[string]string{}
	for _, id := range []string{single, batched} {
		failedRun[id] = s.requireConfirmFailed(id)
		o, status := s.order(id)
		require.Equal(t, http.StatusOK, status)
		assert.Equal(t, orderflow.StatusPaid, o.Status, "the record stays PAID while the saga waits for an operator")
		assert.Nil(t, o.FailureReason)
		requireChargedOnce(t, s, id)
		assert.Equal(t, map[string]int{"reserve": 1}, stockEvents(t, s, id), "stock held, not released")
		assert.Zero(t, f.confirms(id))
	}
	assert.Equal(t, testkit.Stock{OnHand: 10, Reserved: 3, Version: 3}, testkit.StockOf(t, s.pool, sku))

	// The runbook's query for paid orders held for an operator finds both.
	held := fmt.Sprintf(`ExecutionStatus="Failed" AND OrderStatus="PAID" AND Region="%s"`, s.region)
	waitListed(t, held, order.WorkflowID(single), order.WorkflowID(batched))
	// Its saga has ended, so a customer's cancel is refused.
	r := s.do(http.MethodPost, "/v1/orders/"+single+"/cancel", nil, nil)
	assert.Equal(t, http.StatusConflict, r.status, string(r.body))
	// The runbook's status query answers from the failed run, sealed, and
	// decoded through the codec server for an operator.
	out := temporalCLI(t, "workflow", "query", "--workflow-id", order.WorkflowID(single), "--name", order.StatusQuery)
	assert.NotContains(t, out, `"status":"PAID"`)
	out = temporalCLI(t, "workflow", "query", "--workflow-id", order.WorkflowID(single), "--name", order.StatusQuery,
		"--codec-endpoint", s.url+"/codec", "--codec-auth", s.tok.Operator())
	assert.Contains(t, out, `"status":"PAID"`)

	f.fault.Store(false)

	// One saga, by workflow ID.
	resetRun := map[string]string{}
	temporalCLI(t, "workflow", "reset", "--workflow-id", order.WorkflowID(single),
		"--type", "LastWorkflowTask", "--reason", "confirm fault fixed")
	resetRun[single] = s.waitNewRunCompleted(single, failedRun[single])

	// Many sagas, by query: here the batch narrowed to the second order's
	// customer, so that the first order's failed run, which still matches
	// the broad query, is not reset a second time.
	temporalCLI(t, "workflow", "reset", "--query", held+fmt.Sprintf(` AND CustomerId="%s"`, batchCustomer),
		"--type", "LastWorkflowTask", "--reason", "confirm fault fixed", "--yes")
	resetRun[batched] = s.waitNewRunCompleted(batched, failedRun[batched])

	requireConfirmedOnce := func(id string) {
		t.Helper()
		o := s.waitTerminal(id)
		assert.Equal(t, orderflow.StatusConfirmed, o.Status, "order %s", id)
		requireChargedOnce(t, s, id)
		assert.Equal(t, map[string]int{"reserve": 1, "commit": 1}, stockEvents(t, s, id), "order %s: stock committed once", id)
		var notes int
		require.NoError(t, s.pool.QueryRow(context.Background(),
			`SELECT count(*) FROM notifications WHERE order_id = $1 AND kind = $2`, id, notify.OrderConfirmed).Scan(&notes))
		assert.Equal(t, 1, notes, "order %s: one confirmation message", id)
		assert.Equal(t, testkit.Stock{OnHand: 7, Reserved: 0, Version: 5}, testkit.StockOf(t, s.pool, sku))
		onHand, reserved, violated := testkit.ReplayEvents(t, s.pool, sku)
		assert.NoError(t, violated)
		assert.Equal(t, [2]int{7, 0}, [2]int{onHand, reserved}, "inventory_events replays to the row")
	}
	for _, id := range []string{single, batched} {
		requireConfirmedOnce(id)
		assert.Equal(t, 1, f.confirms(id), "order %s confirmed exactly once", id)
	}

	// A failed run that was reset keeps matching the broad query, so a
	// batch run again resets both a second time. Every step is idempotent
	// by order: the new runs find the charge and the commit already made.
	temporalCLI(t, "workflow", "reset", "--query", held,
		"--type", "LastWorkflowTask", "--reason", "the same batch, repeated", "--yes")
	for _, id := range []string{single, batched} {
		s.waitNewRunCompleted(id, resetRun[id])
		requireConfirmedOnce(id)
	}

	// The runbook's export and replay: both runs of the first order, as the
	// CLI exports them, replay against this build.
	dir := t.TempDir()
	var exported []string
	for _, run := range []string{failedRun[single], ""} {
		args := []string{"workflow", "show", "--workflow-id", order.WorkflowID(single), "--output", "json"}
		if run != "" {
			args = append(args, "--run-id", run)
		}
		f := filepath.Join(dir, fmt.Sprintf("history-%d.json", len(exported)))
		require.NoError(t, os.WriteFile(f, []byte(temporalCLI(t, args...)), 0o600))
		exported = append(exported, f)
	}
	replayed, err := exec.Command(testkit.Binary(t), append([]string{"replay"}, exported...)...).CombinedOutput()
	require.NoError(t, err, "orderflow replay:\n%s", replayed)
	assert.Contains(t, string(replayed), "ends WorkflowExecutionFailed")
	assert.Contains(t, string(replayed), "ends WorkflowExecutionCompleted")

	// The failed runs stay in history as Failed; the new ones completed.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, id := range []string{single, batched} {
		d, err := s.temporal.DescribeWorkflow(ctx, order.WorkflowID(id), failedRun[id])
		require.NoError(t, err)
		assert.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, d.RawResponse.WorkflowExecutionInfo.Status)
		d, err = s.temporal.DescribeWorkflow(ctx, order.WorkflowID(id), "")
		require.NoError(t, err)
		assert.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, d.RawResponse.WorkflowExecutionInfo.Status)
	}
}
