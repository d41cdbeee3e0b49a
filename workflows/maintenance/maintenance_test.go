// Package maintenance is a region's housekeeping workflow, started every
// minute by a Temporal Schedule on the region's admin task queue.
package maintenance_test

import (
	"testing"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/orderflow/orderflow/activities/orders"
	"github.com/orderflow/orderflow/workflows/maintenance"
)

func TestMaintenance_ReportsTheKeysItExpired(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(maintenance.Run, workflow.RegisterOptions{Name: maintenance.Workflow})
	var admin *orders.Admin
	env.RegisterActivity(admin)
	env.OnActivity(admin.ExpireIdempotencyKeys, mock.Anything, mock.Anything).Return(orders.ExpireKeysResult{Deleted: 42}, nil).Once()
	env.ExecuteWorkflow(maintenance.Workflow)
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res maintenance.Result
	require.NoError(t, env.GetWorkflowResult(&res))
	require.EqualValues(t, 42, res.ExpiredKeys)
}
