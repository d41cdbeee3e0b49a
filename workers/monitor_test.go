package workers_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/workers"
	"github.com/orderflow/orderflow/workflows/maintenance"
	monitorflow "github.com/orderflow/orderflow/workflows/monitor"
)

// Worker start-up creates the region's two monitor Schedules on the admin
// task queue (every 5 minutes, and nightly at 03:30 UTC), and a later
// start-up brings a Schedule someone changed back to this build's spec,
// without failing on the Schedules that exist.
func TestWorkerStartUpInstallsTheMonitorSchedulesIdempotently(t *testing.T) {
	tc := testkit.Temporal(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	region := "mon-" + uuid.NewString()[:8]
	require.NoError(t, workers.EnsureMonitorSchedules(ctx, tc, region))
	recent := tc.ScheduleClient().GetHandle(ctx, monitorflow.ScheduleID(region, false))
	nightly := tc.ScheduleClient().GetHandle(ctx, monitorflow.ScheduleID(region, true))
	t.Cleanup(func() {
		_ = recent.Delete(context.Background())
		_ = nightly.Delete(context.Background())
	})

	// Someone slows the recent runs down; the next start-up restores them.
	require.NoError(t, recent.Update(ctx, client.ScheduleUpdateOptions{DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
		s := in.Description.Schedule
		s.Spec = &client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: time.Hour}}}
		return &client.ScheduleUpdate{Schedule: &s}, nil
	}}))
	require.NoError(t, workers.EnsureMonitorSchedules(ctx, tc, region))

	d, err := recent.Describe(ctx)
	require.NoError(t, err)
	require.Len(t, d.Schedule.Spec.Intervals, 1)
	assert.Equal(t, monitorflow.RecentEvery, d.Schedule.Spec.Intervals[0].Every)
	action, ok := d.Schedule.Action.(*client.ScheduleWorkflowAction)
	require.True(t, ok)
	assert.Equal(t, monitorflow.Workflow, action.Workflow)
	assert.Equal(t, maintenance.AdminTaskQueue(region), action.TaskQueue)

	d, err = nightly.Describe(ctx)
	require.NoError(t, err)
	action, ok = d.Schedule.Action.(*client.ScheduleWorkflowAction)
	require.True(t, ok)
	assert.Equal(t, monitorflow.Workflow, action.Workflow)
	require.NotEmpty(t, d.Info.NextActionTimes)
	next := d.Info.NextActionTimes[0].UTC()
	assert.Equal(t, []int{3, 30}, []int{next.Hour(), next.Minute()}, "nightly at 03:30 UTC")
}
