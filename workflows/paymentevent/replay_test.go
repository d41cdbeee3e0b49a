package paymentevent_test

import (
	"testing"

	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/workflows/paymentevent"
)

// TestReplayCommittedHistories replays every history in testdata/ (a
// success the saga recorded, a late success refunded, a dispute), each
// exported from a real server, against the current workflow code.
func TestReplayCommittedHistories(t *testing.T) {
	testkit.ReplayHistories(t, paymentevent.Workflow, paymentevent.Handle)
}
