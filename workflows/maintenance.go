package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/orderflow/orderflow/activities"
)

// MaintenanceWorkflow is the registered type of the region's housekeeping
// workflow, which a Temporal Schedule starts every minute.
const MaintenanceWorkflow = "Maintenance"

// AdminTaskQueue is a region's admin task queue: housekeeping and operator
// work, polled by the worker's admin pool (10% of its activity slots by
// default), so it never takes a slot from the saga.
func AdminTaskQueue(region string) string { return "admin-" + region }

// MaintenanceScheduleID is the ID of the Schedule that runs Maintenance in a
// region; operators pause, trigger or inspect it with `temporal schedule`.
func MaintenanceScheduleID(region string) string { return "maintenance-" + region }

// MaintenanceResult reports what a run did.
type MaintenanceResult struct {
	ExpiredKeys int64 `json:"expired_keys"`
}

// Maintenance expires idempotency keys past their TTL. Its activities run on
// the admin task queue it was started on.
func Maintenance(ctx workflow.Context) (MaintenanceResult, error) {
	var admin *activities.Admin
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 3},
	})
	var res activities.ExpireKeysResult
	if err := workflow.ExecuteActivity(ctx, admin.ExpireIdempotencyKeys, activities.ExpireKeysInput{}).Get(ctx, &res); err != nil {
		return MaintenanceResult{}, err
	}
	return MaintenanceResult{ExpiredKeys: res.Deleted}, nil
}
