package testkit

import (
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// ReplayHistories replays every history in the package's testdata/ (each
// exported from a real server with `temporal workflow show --output json`)
// against fn registered as the workflow type name, one subtest a file, and
// returns how many files it replayed. A package without histories fails: a
// replay test that replays nothing would pass whatever the code does.
func ReplayHistories(t *testing.T, name string, fn any) int {
	t.Helper()
	files, err := filepath.Glob("testdata/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no committed histories in testdata/ to replay")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(fn, workflow.RegisterOptions{Name: name})
			if err := r.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
				t.Fatalf("replay %s: %v", f, err)
			}
		})
	}
	return len(files)
}
