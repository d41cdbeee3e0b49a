package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/orderflow/orderflow/internal/pii"
	"github.com/orderflow/orderflow/workflows/maintenance"
	"github.com/orderflow/orderflow/workflows/monitor"
	"github.com/orderflow/orderflow/workflows/order"
	"github.com/orderflow/orderflow/workflows/returns"
	"github.com/orderflow/orderflow/workflows/webhooks"
)

const replayUsage = `usage: orderflow replay <history.json> [more.json...]

Replays workflow histories exported with
  temporal workflow show --workflow-id <id> --output json > history.json
against the workflow code of this binary, and reports for each one OK or
where the code no longer makes the decisions the history recorded. Exits
non-zero when any history fails to replay. See docs/operations.md.

Histories hold their payloads encrypted: replay opens them with the keys of
PII_KEYS / PII_KEYS_FILE (every key that sealed one of them must be there).
`

// nondeterminismCode marks the SDK's non-determinism errors.
const nondeterminismCode = "TMPRL1100"

// runReplay is `orderflow replay`: it replays every history file in args
// against every workflow this build's workers run, prints one
// verdict per file to out, and returns an error when any of them failed.
func runReplay(out io.Writer, lookup env, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("replay: no history file given\n%s", replayUsage)
	}
	if args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(out, replayUsage)
		return nil
	}
	cfg, v := loadReplay(lookup)
	if err := v.Err(); err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	keys, err := pii.LoadOptional(cfg)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	var opts worker.WorkflowReplayerOptions
	if keys != nil {
		opts.DataConverter, opts.FailureConverter = pii.Converters(keys)
	}
	r, err := worker.NewWorkflowReplayerWithOptions(opts)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	r.RegisterWorkflowWithOptions(order.Saga, workflow.RegisterOptions{Name: order.Workflow})
	r.RegisterWorkflowWithOptions(maintenance.Run, workflow.RegisterOptions{Name: maintenance.Workflow})
	r.RegisterWorkflowWithOptions(monitor.Run, workflow.RegisterOptions{Name: monitor.Workflow})
	r.RegisterWorkflowWithOptions(returns.Receive, workflow.RegisterOptions{Name: returns.Workflow})
	r.RegisterWorkflowWithOptions(webhooks.Deliver, workflow.RegisterOptions{Name: webhooks.Workflow})
	r.RegisterWorkflowWithOptions(webhooks.Replay, workflow.RegisterOptions{Name: webhooks.ReplayWorkflow})
	// The SDK logs a replay's panic at ERROR; the verdict below says it better.
	quiet := log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))

	failed := 0
	for _, path := range args {
		ok, err := replayFile(r, keys, quiet, path)
		if err != nil {
			failed++
			fmt.Fprintln(out, err)
			continue
		}
		fmt.Fprintln(out, ok)
	}
	if failed > 0 {
		return fmt.Errorf("replay: %d of %d histories failed", failed, len(args))
	}
	fmt.Fprintf(out, "all %d histories replay against this build\n", len(args))
	return nil
}

// replayFile replays one exported history. It returns the OK line, or an
// error whose text is the verdict: the file, the workflow, what went wrong
// and, for non-determinism, what to do.
func replayFile(r worker.WorkflowReplayer, keys *pii.Keyring, logger log.Logger, path string) (string, error) {
	h, err := readHistory(path)
	if err != nil {
		return "", fmt.Errorf("FAIL %s: %w", path, err)
	}
	start := h.Events[0].GetWorkflowExecutionStartedEventAttributes()
	wid, wtype := start.GetWorkflowId(), start.GetWorkflowType().GetName()
	if wid == "" {
		wid = "(workflow id not in the export)"
	}
	if err := canOpen(keys, start.GetInput().GetPayloads()); err != nil {
		return "", fmt.Errorf("FAIL %s  %s %s: %w", path, wtype, wid, err)
	}
	last := h.Events[len(h.Events)-1]
	err = r.ReplayWorkflowHistoryWithOptions(logger, h, worker.ReplayWorkflowHistoryOptions{
		OriginalExecution: workflow.Execution{ID: start.GetWorkflowId(), RunID: start.GetOriginalExecutionRunId()},
	})
	switch {
	case err == nil:
		return fmt.Sprintf("OK   %s  %s %s (%d events, ends %s)", path, wtype, wid, len(h.Events), last.GetEventType()), nil
	case strings.Contains(err.Error(), nondeterminismCode):
		return "", fmt.Errorf(`FAIL %s  %s %s: NON-DETERMINISTIC%s
  what happened: %s
  what to do: the workflow code of this build does not make the decisions
  this history recorded, so a worker running it would fail every open
  workflow like this one. Put the change behind workflow.GetVersion (the
  old code for histories without the marker, the new code for new runs),
  commit a history of the new version to workflows/order/testdata, and replay
  again (docs/operations.md#versioning-workflow-changes).
  SDK error: %v`,
			path, wtype, wid, atEvent(h, err), summary(err), err)
	default:
		return "", fmt.Errorf("FAIL %s  %s %s: could not replay: %w", path, wtype, wid, err)
	}
}

// canOpen tells, before a replay that would fail obscurely, whether the
// keyring opens the workflow's input: an encrypted history needs the key
// that sealed it.
func canOpen(keys *pii.Keyring, input []*commonpb.Payload) error {
	const hint = "set PII_KEYS or PII_KEYS_FILE to the keys that sealed this history's payloads"
	if keys == nil {
		for _, p := range input {
			if string(p.GetMetadata()[converter.MetadataEncoding]) == pii.EncodingEncrypted {
				return errors.New("its payloads are encrypted and no key is configured: " + hint)
			}
		}
		return nil
	}
	if _, err := pii.NewCodec(keys).Decode(input); err != nil {
		return fmt.Errorf("cannot open its payloads (%w): %s", err, hint)
	}
	return nil
}

// readHistory reads a history exported by `temporal workflow show --output json`.
func readHistory(path string) (*historypb.History, error) {
	f, err := os.Open(path) // #nosec G304 -- the operator's own argument
	if err != nil {
		return nil, fmt.Errorf("open history: %w", err)
	}
	defer f.Close()
	h, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
	if err != nil {
		return nil, fmt.Errorf("not a history exported with `temporal workflow show --output json`: %w", err)
	}
	if len(h.Events) == 0 || h.Events[0].GetEventType() != enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED {
		return nil, errors.New("not a history exported with `temporal workflow show --output json`: it does not begin with WorkflowExecutionStarted")
	}
	return h, nil
}

// summary is the first clause of an SDK non-determinism error, before the
// dump of the event's attributes.
func summary(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "["+nondeterminismCode+"]"); i >= 0 {
		msg = msg[i:]
	}
	for _, cut := range []string{": (", ", markerData", "\n"} {
		if i := strings.Index(msg, cut); i > 0 {
			msg = msg[:i]
		}
	}
	return msg
}

// laMarkerRef finds the local activity a non-determinism error is about in
// the marker data it quotes (quotes may come escaped).
var laMarkerRef = regexp.MustCompile(`ActivityID\\*":\\*"([^"\\]+)\\*",\\*"ActivityType\\*":\\*"([^"\\]+)`)

// atEvent names the history event a non-determinism error is about, when the
// error quotes a local activity's marker (every saga step is one): " at
// event 6 (local activity Create, marker of activity 1)". It returns "" when
// it cannot tell; the SDK's error then says what it knows.
func atEvent(h *historypb.History, err error) string {
	m := laMarkerRef.FindStringSubmatch(err.Error())
	if m == nil {
		return ""
	}
	for _, e := range h.Events {
		attrs := e.GetMarkerRecordedEventAttributes()
		if attrs.GetMarkerName() != "LocalActivity" {
			continue
		}
		var data struct{ ActivityID, ActivityType string }
		p := attrs.GetDetails()["data"].GetPayloads()
		if len(p) == 0 || json.Unmarshal(p[0].GetData(), &data) != nil {
			continue
		}
		if data.ActivityID == m[1] {
			return fmt.Sprintf(" at event %d (%s: local activity %s, activity ID %s)",
				e.GetEventId(), e.GetEventType(), data.ActivityType, data.ActivityID)
		}
	}
	return ""
}
