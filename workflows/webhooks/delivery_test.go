package webhooks_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	hooks "github.com/orderflow/orderflow/activities/webhooks"
	"github.com/orderflow/orderflow/workflows/webhooks"
)

// TestReplayCommittedHistories replays every history in testdata/, each
// exported from a real server with `temporal workflow show --output json`,
// against the current workflows: a change that would break running
// deliveries fails here.
func TestReplayCommittedHistories(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(webhooks.Deliver, workflow.RegisterOptions{Name: webhooks.Workflow})
			r.RegisterWorkflowWithOptions(webhooks.Replay, workflow.RegisterOptions{Name: webhooks.ReplayWorkflow})
			require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(nil, f))
		})
	}
}

// The replay above can fail: a delivery that no longer drops a repeated
// signal schedules one send more than the history holds.
func TestReplayCatchesADeliveryThatSendsDuplicates(t *testing.T) {
	noDedupe := func(ctx workflow.Context, in hooks.DeliveryInput) error {
		ch := workflow.GetSignalChannel(ctx, hooks.SignalEvent)
		var acts *hooks.Activities
		actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
		for {
			var it hooks.Item
			if !ch.ReceiveAsync(&it) {
				return nil
			}
			_ = workflow.ExecuteActivity(actx, acts.Send, hooks.SendInput{EndpointID: in.EndpointID, EventID: it.EventID}).Get(ctx, nil)
		}
	}
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(noDedupe, workflow.RegisterOptions{Name: webhooks.Workflow})
	err := r.ReplayWorkflowHistoryFromJSONFile(nil, "testdata/delivery_retried_duplicate_forced.json")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "TMPRL1100")
}

// An event given up (its endpoint gone, or retried past RetryFor) does not
// hold up the order's next event, which is sent after it; the workflow then
// completes when idle.
func TestAnEventGivenUpLetsTheNextOneGoAndTheWorkflowCompletesWhenIdle(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(webhooks.Deliver, workflow.RegisterOptions{Name: webhooks.Workflow})
	var acts *hooks.Activities
	var sent []int64
	env.OnActivity(acts.Send, mock.Anything, mock.Anything).Return(func(_ context.Context, in hooks.SendInput) (hooks.SendResult, error) {
		sent = append(sent, in.EventID)
		if in.EventID == 1 {
			return hooks.SendResult{}, temporal.NewNonRetryableApplicationError("gone", hooks.ErrTypeEventGone, nil)
		}
		return hooks.SendResult{StatusCode: 200}, nil
	})
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(hooks.SignalEvent, hooks.Item{EventID: 2})
		env.SignalWorkflow(hooks.SignalEvent, hooks.Item{EventID: 1})
	}, time.Second)
	env.ExecuteWorkflow(webhooks.Workflow, hooks.DeliveryInput{EndpointID: "e", Partition: "p",
		Pending: []hooks.Item{{EventID: 1}}, Policy: hooks.Policy{Idle: time.Minute}})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	assert.Equal(t, []int64{1, 2}, sent, "1 given up, 2 sent after it, the repeated 1 dropped")
}
