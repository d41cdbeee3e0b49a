// Package maintenance is a region's housekeeping workflow, started every
// minute by a Temporal Schedule on the region's admin task queue.
package maintenance

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/orderflow/orderflow/activities/orders"
)

// Workflow is the registered type of the region's housekeeping
// workflow, which a Temporal Schedule starts every minute.
const Workflow = "Maintenance"

// AdminTaskQueue is a region's admin task queue: housekeeping and operator
// work, polled by the worker's admin pool (10% of its activity slots by
// default), so it never takes a slot from the saga.
func AdminTaskQueue(region string) string { return "admin-" + region }

// ScheduleID is the ID of the Schedule that runs Maintenance in a
// region; operators pause, trigger or inspect it with `temporal schedule`.
func ScheduleID(region string) string { return "maintenance-" + region }

// Result reports what a run did.
type Result struct {
	ExpiredKeys int64 `json:"expired_keys"`
}

// Run expires idempotency keys past their TTL. Its activities run on
// the admin task queue it was started on.
func Run(ctx workflow.Context) (Result, error) {
	var admin *orders.Admin
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 3},
	})
	var res orders.ExpireKeysResult
	if err := workflow.ExecuteActivity(ctx, admin.ExpireIdempotencyKeys, orders.ExpireKeysInput{}).Get(ctx, &res); err != nil {
		return Result{}, err
	}
	return Result{ExpiredKeys: res.Deleted}, nil
}
