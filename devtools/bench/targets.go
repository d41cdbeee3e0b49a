package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/workflow"

	apiclient "github.com/orderflow/orderflow/client"
	"github.com/orderflow/orderflow/internal/auth"
)

// target is what a run drives: the order API or the bare-Temporal baseline.
type target interface {
	// fire sends one request and records when it was accepted.
	fire(ctx context.Context, s *sample)
	// complete fills in done for the samples whose end is known now.
	complete(ctx context.Context, samples []*sample) error
}

// orderTarget places orders through the gateway's HTTP API and reads their
// terminal time from the status history the saga writes in PostgreSQL, so
// measuring adds no polling load to the system under test.
type orderTarget struct {
	api     *apiclient.Client
	db      *pgxpool.Pool
	skus    []string
	scarce  []string
	lines   int
	decline float64
	scarceP float64
	run     string
	tokens  *auth.Minter
}

func (t *orderTarget) fire(ctx context.Context, s *sample) {
	customer, req := t.newOrder(s)
	as := t.api.With(apiclient.WithToken(t.tokens.Bearer(customer, auth.RoleCustomer)))
	acc, status, err := as.PlaceOrder(ctx, req, t.run+"-"+uuid.NewString())
	switch {
	case status == 0:
		s.errKind = "transport"
		return
	case status != http.StatusAccepted:
		s.errKind = fmt.Sprintf("http_%d", status)
		return
	case err != nil || acc.OrderID == "":
		s.errKind = "bad_response"
		return
	}
	s.accepted, s.id = time.Now(), acc.OrderID
}

// newOrder draws one order of the mix: a random customer, t.lines distinct
// lines, a declined card for a share of them (marked on s).
func (t *orderTarget) newOrder(s *sample) (customer string, req apiclient.OrderRequest) {
	customer = fmt.Sprintf("bench-%d", rand.IntN(100000))
	req = apiclient.OrderRequest{CustomerID: customer, PaymentToken: "tok_visa", Email: "bench@example.com",
		ShippingAddress: &apiclient.Address{Name: "Bench Buyer", Line1: "1 Load Street", City: "Springfield", PostalCode: "62701", State: "IL", Country: "US"}}
	if rand.Float64() < t.decline {
		req.PaymentToken, s.declined = "tok_chargeDeclined", true
	}
	used := map[string]bool{}
	for len(req.Items) < t.lines {
		sku := t.skus[rand.IntN(len(t.skus))]
		if len(t.scarce) > 0 && rand.Float64() < t.scarceP {
			sku = t.scarce[rand.IntN(len(t.scarce))]
		}
		if used[sku] {
			continue
		}
		used[sku] = true
		req.Items = append(req.Items, apiclient.Item{SKU: sku, Quantity: 1 + rand.IntN(3)})
	}
	return customer, req
}

func (t *orderTarget) complete(ctx context.Context, samples []*sample) error {
	byID := map[string]*sample{}
	var ids []string
	for _, s := range samples {
		if s.id != "" && s.done.IsZero() {
			byID[s.id] = s
			ids = append(ids, s.id)
		}
	}
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 5000)]
		ids = ids[len(chunk):]
		const q = `SELECT order_id::text, at FROM order_status_history
			WHERE order_id = ANY($1::uuid[]) AND status IN ('CONFIRMED', 'FAILED', 'CANCELLED')`
		rows, err := t.db.Query(ctx, q, chunk)
		if err != nil {
			return fmt.Errorf("read completions: %w", err)
		}
		for rows.Next() {
			var id string
			var at time.Time
			if err := rows.Scan(&id, &at); err != nil {
				rows.Close()
				return fmt.Errorf("read completions: %w", err)
			}
			byID[id].done = at
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read completions: %w", err)
		}
	}
	return nil
}

// BaselineWorkflow is the yardstick: four no-op local activities, nothing
// else, on the same server and with the same worker settings as the saga.
func BaselineWorkflow(ctx workflow.Context) error {
	ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: 3 * time.Second})
	var b *baselineActivities
	for i := range 4 {
		if err := workflow.ExecuteLocalActivity(ctx, b.Noop, i).Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

// baselineActivities records when each baseline workflow's last step ran,
// the baseline's equivalent of the saga's terminal status row.
type baselineActivities struct {
	done sync.Map // workflow id -> time.Time
}

// Noop does nothing; the fourth call records the workflow as done.
func (b *baselineActivities) Noop(ctx context.Context, step int) error {
	if step == 3 {
		b.done.Store(activity.GetInfo(ctx).WorkflowExecution.ID, time.Now())
	}
	return nil
}

type baselineTarget struct {
	temporal  client.Client
	taskQueue string
	acts      *baselineActivities
	run       string
	eager     bool
}

func (t *baselineTarget) fire(ctx context.Context, s *sample) {
	id := t.run + "-" + uuid.NewString()
	_, err := t.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: t.taskQueue, EnableEagerStart: t.eager}, "BenchBaseline")
	if err != nil {
		s.errKind = "start_failed"
		return
	}
	s.accepted, s.id = time.Now(), id
}

// lastIDs returns up to n ids of baseline workflows that finished.
func (t *baselineTarget) lastIDs(n int) []string {
	var ids []string
	t.acts.done.Range(func(k, _ any) bool {
		ids = append(ids, k.(string))
		return len(ids) < n
	})
	return ids
}

func (t *baselineTarget) complete(_ context.Context, samples []*sample) error {
	for _, s := range samples {
		if s.id != "" && s.done.IsZero() {
			if v, ok := t.acts.done.Load(s.id); ok {
				s.done = v.(time.Time)
			}
		}
	}
	return nil
}
