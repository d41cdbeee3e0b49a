package workflows_test

import (
	"testing"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/orderflow/orderflow/activities"
	"github.com/orderflow/orderflow/workflows"
)

func TestMaintenance_ReportsTheKeysItExpired(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(workflows.Maintenance, workflow.RegisterOptions{Name: workflows.MaintenanceWorkflow})
	var admin *activities.Admin
	env.RegisterActivity(admin)
	env.OnActivity(admin.ExpireIdempotencyKeys, mock.Anything, mock.Anything).Return(activities.ExpireKeysResult{Deleted: 42}, nil).Once()
	env.ExecuteWorkflow(workflows.MaintenanceWorkflow)
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res workflows.MaintenanceResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.EqualValues(t, 42, res.ExpiredKeys)
}
