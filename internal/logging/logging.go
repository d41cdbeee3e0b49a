// Package logging builds the zap logger every orderflow process uses, adapts
// it for the Temporal SDK and carries the request correlation id from the
// gateway into workflows and activities.
//
// Keys are snake_case everywhere: the adapter renames the SDK's own keys
// (WorkflowID, RunID, ActivityType, TraceID, ...) to workflow_id, run_id,
// activity_type, trace_id, so one query finds a key across the gateway's,
// the workflows' and the activities' lines.
package logging

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"unicode"

	"go.opentelemetry.io/otel/trace"
	"go.temporal.io/sdk/log"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// New returns a logger writing JSON ("json", production) or human-readable
// lines ("console", make run) at the given level ("debug", "info", "warn",
// "error").
func New(format, level string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	var cfg zap.Config
	if format == "json" {
		cfg = zap.NewProductionConfig()
	} else {
		cfg = zap.NewDevelopmentConfig()
		cfg.DisableStacktrace = true
	}
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	return cfg.Build()
}

// Temporal adapts a zap logger to the Temporal SDK's logger interface so the
// SDK's own lines, and those of workflow.GetLogger and activity.GetLogger,
// land in the same stream with the same encoding and snake_case keys.
//
// It writes straight into zap rather than through log/slog (zapslog and
// log.NewStructuredLogger): the lines and levels are the same, without a
// second conversion of every field, and the adapter can rename the SDK's keys
// and drop a key a caller repeats (an activity passing order_id on a logger
// that already has it) so a JSON line never holds one key twice.
func Temporal(l *zap.Logger) log.Logger {
	return &temporalLogger{s: l.WithOptions(zap.AddCallerSkip(1)).Sugar()}
}

type temporalLogger struct {
	s *zap.SugaredLogger
	// keys are those With added; a line's own pairs with these keys are dropped.
	keys []string
}

var (
	_ log.Logger          = (*temporalLogger)(nil)
	_ log.WithLogger      = (*temporalLogger)(nil)
	_ log.WithSkipCallers = (*temporalLogger)(nil)
)

func (t *temporalLogger) Debug(msg string, kv ...any) { t.s.Debugw(msg, t.fields(kv)...) }
func (t *temporalLogger) Info(msg string, kv ...any)  { t.s.Infow(msg, t.fields(kv)...) }
func (t *temporalLogger) Warn(msg string, kv ...any)  { t.s.Warnw(msg, t.fields(kv)...) }
func (t *temporalLogger) Error(msg string, kv ...any) { t.s.Errorw(msg, t.fields(kv)...) }

// With returns a logger that adds kv to every line, as log.WithLogger asks.
// A key the logger already has is not added again.
func (t *temporalLogger) With(kv ...any) log.Logger {
	kv = t.fields(kv)
	keys := append([]string(nil), t.keys...)
	for i := 0; i+1 < len(kv); i += 2 {
		if k, ok := kv[i].(string); ok {
			keys = append(keys, k)
		}
	}
	return &temporalLogger{s: t.s.With(kv...), keys: keys}
}

// WithCallerSkip lets the SDK's replay-aware workflow logger report the
// workflow's line as the caller rather than its own.
func (t *temporalLogger) WithCallerSkip(depth int) log.Logger {
	return &temporalLogger{s: t.s.WithOptions(zap.AddCallerSkip(depth)), keys: t.keys}
}

// fields renames the keys of kv to snake_case, formats trace and span ids as
// hex, and drops pairs whose key the logger already carries. kv is returned
// as it is when nothing changes, which is the common case.
func (t *temporalLogger) fields(kv []any) []any {
	var out []any
	for i := 0; i+1 < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			if out != nil {
				out = append(out, kv[i], kv[i+1])
			}
			continue
		}
		sk := snake(k)
		v, formatted := kv[i+1], false
		if sk == KeyTraceID || sk == KeySpanID {
			if s, ok := v.(fmt.Stringer); ok {
				v, formatted = s.String(), true
			}
		}
		drop := t.has(sk)
		if out == nil && (drop || formatted || sk != k) {
			out = append(make([]any, 0, len(kv)), kv[:i]...)
		}
		if out != nil && !drop {
			out = append(out, sk, v)
		}
	}
	if out == nil {
		return kv
	}
	if len(kv)%2 == 1 {
		out = append(out, kv[len(kv)-1])
	}
	return out
}

func (t *temporalLogger) has(key string) bool {
	for _, k := range t.keys {
		if k == key {
			return true
		}
	}
	return false
}

var snakeKeys sync.Map // SDK key -> snake_case key

// snake turns the SDK's CamelCase keys (WorkflowID, TaskFirstEventID) into
// snake_case (workflow_id, task_first_event_id); keys that start in lower
// case are taken as they are.
func snake(k string) string {
	if k == "" || !unicode.IsUpper(rune(k[0])) {
		return k
	}
	if s, ok := snakeKeys.Load(k); ok {
		return s.(string)
	}
	var b strings.Builder
	r := []rune(k)
	for i, c := range r {
		if unicode.IsUpper(c) && i > 0 && (unicode.IsLower(r[i-1]) || (i+1 < len(r) && unicode.IsLower(r[i+1]) && unicode.IsUpper(r[i-1]))) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToLower(c))
	}
	s := b.String()
	snakeKeys.Store(k, s)
	return s
}

// Correlation keys every line about an order carries.
const (
	KeyOrderID    = "order_id"
	KeyWorkflowID = "workflow_id"
	KeyRequestID  = "request_id"
	KeyTraceID    = "trace_id"
	KeySpanID     = "span_id"
)

type requestIDKey struct{}

// WithRequestID returns ctx carrying the request correlation id, which the
// Temporal clients built with Propagators forward to the workflows and
// activities the request starts.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request correlation id ctx carries, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// Fields returns the correlation fields of ctx for a zap line: request_id,
// and trace_id and span_id when a span is active (tracing is on).
func Fields(ctx context.Context) []zap.Field {
	f := make([]zap.Field, 0, 5)
	if id := RequestID(ctx); id != "" {
		f = append(f, zap.String(KeyRequestID, id))
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		f = append(f, zap.String(KeyTraceID, sc.TraceID().String()), zap.String(KeySpanID, sc.SpanID().String()))
	}
	return f
}
