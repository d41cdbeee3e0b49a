package monitor

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities"
)

// OperationCreateOrder is the operation under which the gateway keeps an
// order's acceptance record in idempotency_keys (api's opCreateOrder).
const OperationCreateOrder = "create_order"

const (
	qOrdersByID = `SELECT order_id::text, status, total_cents, created_at FROM orders WHERE order_id = ANY($1::uuid[])`
	// The window's orders, through orders_created (schema/0017).
	qOrdersInWindow = `SELECT order_id::text, status, total_cents, created_at FROM orders
		WHERE created_at >= $1 AND created_at < $2 AND ($3 = '' OR region = $3)`
	// Acceptance records of the window whose order was never written,
	// through idempotency_keys_accepted (schema/0017).
	// The operation is in the text, not a parameter, so that a generic plan
	// can use that partial index.
	qLostInWindow = `SELECT k.order_id::text, k.created_at FROM idempotency_keys k
		WHERE k.operation = '` + OperationCreateOrder + `' AND k.order_id IS NOT NULL AND k.response_status BETWEEN 200 AND 299
		  AND k.created_at >= $1 AND k.created_at < $2
		  AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.order_id = k.order_id)
		ORDER BY k.created_at`
)

// CheckOrders reads the scope's orders and checks that every accepted one
// exists (KindLostOrder) and has settled (KindStuckSaga): ended, or paid
// and waiting on its carrier. With OrderIDs every order named was
// accepted and every one must have settled; over a window, an acceptance
// record (the gateway's 2xx) whose order row is missing is lost, and an
// order placed before StuckBefore that has not settled is stuck. It
// returns the orders read, for the checks that follow.
func CheckOrders(ctx context.Context, q activities.Querier, s Scope) ([]Order, Report, error) {
	var rows pgx.Rows
	var err error
	if s.byID() {
		rows, err = q.Query(ctx, qOrdersByID, s.OrderIDs)
	} else {
		rows, err = q.Query(ctx, qOrdersInWindow, s.Since, s.Until, s.Region)
	}
	if err != nil {
		return nil, Report{}, fmt.Errorf("read orders: %w", err)
	}
	var orders []Order
	placed := map[string]time.Time{}
	for rows.Next() {
		var o Order
		var at time.Time
		if err := rows.Scan(&o.ID, &o.Status, &o.Total, &at); err != nil {
			rows.Close()
			return nil, Report{}, fmt.Errorf("read orders: %w", err)
		}
		orders = append(orders, o)
		placed[o.ID] = at
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, Report{}, fmt.Errorf("read orders: %w", err)
	}
	var rep Report
	if s.byID() {
		rep.Checked = len(s.OrderIDs)
		for _, id := range s.OrderIDs {
			if _, ok := placed[id]; !ok {
				rep.add(finding(KindLostOrder, id, "%s: missing", id))
			}
		}
	} else {
		lost, err := lostInWindow(ctx, q, s)
		if err != nil {
			return nil, Report{}, err
		}
		rep.Checked = len(orders) + len(lost)
		rep.Findings = lost
	}
	for _, o := range orders {
		if orderflow.Settled(o.Status) || !s.StuckBefore.IsZero() && !placed[o.ID].Before(s.StuckBefore) {
			continue
		}
		rep.add(finding(KindStuckSaga, o.ID, "%s: still %s (placed %s)", o.ID, o.Status, placed[o.ID].UTC().Format(time.RFC3339)))
	}
	return orders, rep, nil
}

func lostInWindow(ctx context.Context, q activities.Querier, s Scope) ([]Finding, error) {
	rows, err := q.Query(ctx, qLostInWindow, s.Since, s.Until)
	if err != nil {
		return nil, fmt.Errorf("read acceptance records: %w", err)
	}
	defer rows.Close()
	var out []Finding
	for rows.Next() {
		var id string
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			return nil, fmt.Errorf("read acceptance records: %w", err)
		}
		out = append(out, finding(KindLostOrder, id, "%s: accepted %s, no order row", id, at.UTC().Format(time.RFC3339)))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read acceptance records: %w", err)
	}
	return out, nil
}

// SagaQuery is the visibility query of the Order sagas still running but
// those waiting on their carrier: of one region when region is set, and
// started before startedBefore when it is not zero.
func SagaQuery(region string, startedBefore time.Time) string {
	q := `WorkflowType = "Order" AND ExecutionStatus = "Running" AND OrderStatus NOT IN ("` +
		strings.Join(StatusesAwaitingCarrier(), `", "`) + `")`
	if region != "" {
		q += ` AND Region = "` + strings.ReplaceAll(region, `"`, ``) + `"`
	}
	if !startedBefore.IsZero() {
		q += ` AND StartTime < "` + startedBefore.UTC().Format(time.RFC3339Nano) + `"`
	}
	return q
}

// maxSagasListed bounds how many stuck sagas one check lists.
const maxSagasListed = 1000

// CheckSagas lists, in Temporal's visibility, the Order sagas still running
// but those waiting on their carrier (the scope's region's, started before
// StuckBefore when set): each is a KindStuckSaga finding about its order.
func CheckSagas(ctx context.Context, tc client.Client, s Scope) (Report, error) {
	rep := Report{Checked: 1}
	req := &workflowservice.ListWorkflowExecutionsRequest{Query: SagaQuery(s.Region, s.StuckBefore), PageSize: 100}
	for n := 0; n < maxSagasListed; {
		res, err := tc.ListWorkflow(ctx, req)
		if err != nil {
			return Report{}, fmt.Errorf("list running sagas: %w", err)
		}
		for _, ex := range res.GetExecutions() {
			id := strings.TrimPrefix(ex.GetExecution().GetWorkflowId(), "order-")
			rep.add(finding(KindStuckSaga, id, "%s: saga %s still running since %s", id, ex.GetExecution().GetWorkflowId(),
				ex.GetStartTime().AsTime().UTC().Format(time.RFC3339)))
			n++
		}
		if len(res.GetNextPageToken()) == 0 {
			break
		}
		req.NextPageToken = res.GetNextPageToken()
	}
	return rep, nil
}
