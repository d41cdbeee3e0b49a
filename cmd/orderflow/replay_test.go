package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testdata holds the order saga's replay corpus: histories exported from a
// real server. Every workflow package keeps its own under testdata/.
const testdata = "../../workflows/order/testdata/"

// Every committed history of every workflow the workers run replays: a
// workflow the replayer does not register fails here as "unknown workflow".
func TestReplay_CommittedHistoriesReplayOK(t *testing.T) {
	files, err := filepath.Glob("../../workflows/*/testdata/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	var out bytes.Buffer
	require.NoError(t, runReplay(&out, os.LookupEnv, files), out.String())
	assert.Contains(t, out.String(), "OK   "+testdata+"order_confirmed.json  Order order-69df5177-a0d2-435e-aac6-de1ad27b3585")
	assert.Contains(t, out.String(), fmt.Sprintf("all %d histories replay against this build", len(files)))
	assert.NotContains(t, out.String(), "FAIL")
}

// A history whose first two steps were swapped (Reserve recorded before
// Create) stands for code that changed its steps without GetVersion: replay
// fails, naming the file, the workflow ID, the event that did not match and
// what to do, and the other histories are still checked.
func TestReplay_TamperedHistoryIsReportedNonDeterministic(t *testing.T) {
	b, err := os.ReadFile(testdata + "order_confirmed.json")
	require.NoError(t, err)
	var h struct {
		Events []map[string]any `json:"events"`
	}
	require.NoError(t, json.Unmarshal(b, &h))
	var markers []int
	for i, e := range h.Events {
		if e["eventType"] == "EVENT_TYPE_MARKER_RECORDED" {
			markers = append(markers, i)
		}
	}
	require.GreaterOrEqual(t, len(markers), 2)
	a, c := h.Events[markers[0]], h.Events[markers[1]]
	a["markerRecordedEventAttributes"], c["markerRecordedEventAttributes"] = c["markerRecordedEventAttributes"], a["markerRecordedEventAttributes"]
	tampered, err := json.Marshal(h)
	require.NoError(t, err)
	bad := filepath.Join(t.TempDir(), "tampered.json")
	require.NoError(t, os.WriteFile(bad, tampered, 0o600))

	var out bytes.Buffer
	err = runReplay(&out, os.LookupEnv, []string{bad, testdata + "order_declined.json"})
	require.EqualError(t, err, "replay: 1 of 2 histories failed")
	got := out.String()
	t.Log(got)
	assert.Contains(t, got, "FAIL "+bad+"  Order order-69df5177-a0d2-435e-aac6-de1ad27b3585: NON-DETERMINISTIC")
	assert.Contains(t, got, "NON-DETERMINISTIC at event 6 (MarkerRecorded: local activity Create", "names the event")
	assert.Contains(t, got, "what happened: [TMPRL1100] nondeterministic workflow: missing replay command for MarkerRecorded\n")
	assert.Contains(t, got, "workflow.GetVersion")
	assert.Contains(t, got, "OK   "+testdata+"order_declined.json")
}

func TestReplay_NotAHistoryIsAClearError(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "orders.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"orders": []}`), 0o600))
	var out bytes.Buffer
	require.Error(t, runReplay(&out, os.LookupEnv, []string{bad}))
	assert.Contains(t, out.String(), "FAIL "+bad+": not a history exported with `temporal workflow show --output json`")

	require.ErrorContains(t, runReplay(&out, os.LookupEnv, nil), "no history file given")
}
