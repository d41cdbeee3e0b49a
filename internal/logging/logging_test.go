package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/log"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// capture returns a JSON zap logger at debug level writing into the buffer.
func capture() (*zap.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(&buf), zapcore.DebugLevel), zap.AddCaller()), &buf
}

// lines decodes every JSON line, failing on one that does not decode or
// holds a key twice.
func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		dec := json.NewDecoder(strings.NewReader(l))
		tok, err := dec.Token()
		if err != nil || tok != json.Delim('{') {
			t.Fatalf("not a JSON object: %q", l)
		}
		seen := map[string]bool{}
		for dec.More() {
			k, _ := dec.Token()
			if seen[k.(string)] {
				t.Errorf("key %q twice in %s", k, l)
			}
			seen[k.(string)] = true
			var v any
			if err := dec.Decode(&v); err != nil {
				t.Fatalf("decode %q: %v", l, err)
			}
		}
		m := map[string]any{}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func TestTemporalLoggerWritesSnakeCaseKeysOnceAndHexTraceIDs(t *testing.T) {
	zl, buf := capture()
	tid, _ := trace.TraceIDFromHex("0af7651916cd43dd8448eb211c80319c")
	sid, _ := trace.SpanIDFromHex("b7ad6b7169203331")
	l := log.With(Temporal(zl), "WorkflowID", "order-42", "RunID", "r1", KeyOrderID, "42")
	l = log.With(l, "TraceID", tid, "SpanID", sid)
	l.Info("stock released", KeyOrderID, "42", "skus", 2)
	l.Warn("odd", "LocalActivityType", "Charge", "error", "boom")

	got := lines(t, buf)
	if len(got) != 2 {
		t.Fatalf("got %d lines, want 2", len(got))
	}
	want := map[string]any{"workflow_id": "order-42", "run_id": "r1", "order_id": "42",
		"trace_id": "0af7651916cd43dd8448eb211c80319c", "span_id": "b7ad6b7169203331"}
	for _, line := range got {
		for k, v := range want {
			if line[k] != v {
				t.Errorf("%q: %s = %v, want %v", line["msg"], k, line[k], v)
			}
		}
		for k := range line {
			if strings.ToLower(k) != k {
				t.Errorf("%q: key %q is not snake_case", line["msg"], k)
			}
		}
	}
	if got[0]["skus"] != float64(2) || got[1]["local_activity_type"] != "Charge" {
		t.Errorf("a line's own fields were lost: %v", got)
	}
}

func TestTemporalLoggerReportsTheCallerNotTheAdapter(t *testing.T) {
	zl, buf := capture()
	log.Skip(Temporal(zl), 0).Info("here")
	caller, _ := lines(t, buf)[0]["caller"].(string)
	if !strings.HasPrefix(caller, "logging/logging_test.go") {
		t.Errorf("caller = %q, want this test file", caller)
	}
}

func TestSnake(t *testing.T) {
	for in, want := range map[string]string{
		"WorkflowID": "workflow_id", "RunID": "run_id", "TaskFirstEventID": "task_first_event_id",
		"ActivityType": "activity_type", "Error": "error", "ID": "id", "order_id": "order_id", "skus": "skus",
	} {
		if got := snake(in); got != want {
			t.Errorf("snake(%q) = %q, want %q", in, got, want)
		}
	}
}

type header map[string]*commonpb.Payload

func (h header) Set(k string, v *commonpb.Payload) { h[k] = v }
func (h header) Get(k string) (*commonpb.Payload, bool) {
	v, ok := h[k]
	return v, ok
}
func (h header) ForEachKey(fn func(string, *commonpb.Payload) error) error {
	for k, v := range h {
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

func TestRequestIDCrossesTemporalHeaders(t *testing.T) {
	p := Propagators()[0]
	h := header{}
	if err := p.Inject(WithRequestID(context.Background(), "req-7"), h); err != nil {
		t.Fatal(err)
	}
	ctx, err := p.Extract(context.Background(), h)
	if err != nil {
		t.Fatal(err)
	}
	if got := RequestID(ctx); got != "req-7" {
		t.Errorf("extracted request id %q, want req-7", got)
	}

	empty := header{}
	if err := p.Inject(context.Background(), empty); err != nil || len(empty) != 0 {
		t.Errorf("a context without a request id wrote %v (err %v)", empty, err)
	}
	h[requestIDHeader] = &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("bogus")}}
	if ctx, err := p.Extract(context.Background(), h); err != nil || RequestID(ctx) != "" {
		t.Errorf("an undecodable header gave %q, %v; want it ignored", RequestID(ctx), err)
	}
}
