package monitor_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	checks "github.com/orderflow/orderflow/activities/monitor"
	"github.com/orderflow/orderflow/workflows/monitor"
)

// TestReplayCommittedHistories replays every history in testdata/, each
// exported from a real server with `temporal workflow show --output json`
// (a recent run, and a nightly run over three days of orders), against
// the current InvariantMonitor code. A change that would break running
// monitors fails here; put it behind workflow.GetVersion.
func TestReplayCommittedHistories(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	require.NoError(t, err)
	require.Len(t, files, 2, "the recent and the nightly run's histories")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(monitor.Run, workflow.RegisterOptions{Name: monitor.Workflow})
			require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(nil, f))
		})
	}
}

// TestReplayCatchesAChangedMonitor shows the replay above can fail: the
// recent run's history replayed against a monitor that checks stock first
// is reported as non-deterministic.
func TestReplayCatchesAChangedMonitor(t *testing.T) {
	stockFirst := func(ctx workflow.Context, in monitor.Input) (monitor.Result, error) {
		var a *checks.Activities
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
		err := workflow.ExecuteActivity(ctx, a.MonitorStock, checks.CheckInput{}).Get(ctx, nil)
		return monitor.Result{}, err
	}
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(stockFirst, workflow.RegisterOptions{Name: monitor.Workflow})
	err := r.ReplayWorkflowHistoryFromJSONFile(nil, "testdata/monitor-recent.json")
	require.Error(t, err)
	require.Contains(t, err.Error(), "TMPRL1100")
}
