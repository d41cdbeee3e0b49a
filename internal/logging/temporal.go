package logging

import (
	"context"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/workflow"
)

// requestIDHeader is the Temporal header that carries the request id from
// the gateway's start of a workflow into the workflow, and from the workflow
// into each activity, local or not. The workflow's copy is part of its
// WorkflowExecutionStarted event, so a replay or a reset of the saga logs
// under the request id that started it.
const requestIDHeader = "orderflow-request-id"

// Propagators returns the Temporal context propagators that carry the
// request id (WithRequestID) across the client, workflow and activity
// boundaries; they go into client.Options.ContextPropagators of both the
// gateway's and the workers' clients.
func Propagators() []workflow.ContextPropagator {
	return []workflow.ContextPropagator{requestIDPropagator{}}
}

type requestIDPropagator struct{}

var dataConverter = converter.GetDefaultDataConverter()

func (requestIDPropagator) Inject(ctx context.Context, w workflow.HeaderWriter) error {
	return inject(RequestID(ctx), w)
}

func (requestIDPropagator) InjectFromWorkflow(ctx workflow.Context, w workflow.HeaderWriter) error {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return inject(id, w)
}

func inject(id string, w workflow.HeaderWriter) error {
	if id == "" {
		return nil
	}
	p, err := dataConverter.ToPayload(id)
	if err != nil {
		return err
	}
	w.Set(requestIDHeader, p)
	return nil
}

// extract returns the header's request id. A header that does not decode is
// ignored: a correlation id is never worth failing a workflow task for.
func extract(r workflow.HeaderReader) string {
	p, ok := r.Get(requestIDHeader)
	if !ok {
		return ""
	}
	var id string
	if dataConverter.FromPayload(p, &id) != nil {
		return ""
	}
	return id
}

func (requestIDPropagator) Extract(ctx context.Context, r workflow.HeaderReader) (context.Context, error) {
	if id := extract(r); id != "" {
		return WithRequestID(ctx, id), nil
	}
	return ctx, nil
}

func (requestIDPropagator) ExtractToWorkflow(ctx workflow.Context, r workflow.HeaderReader) (workflow.Context, error) {
	if id := extract(r); id != "" {
		return workflow.WithValue(ctx, requestIDKey{}, id), nil
	}
	return ctx, nil
}

// WorkflowRequestID returns the request id a workflow was started under, or "".
func WorkflowRequestID(ctx workflow.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// TemporalInterceptor returns a client interceptor, used by the workers the
// client creates too, that adds the correlation keys to the loggers
// workflow.GetLogger and activity.GetLogger return: request_id (carried by
// Propagators) and order_id, which orderID derives from the workflow id
// (false for workflows that are not about one order). The SDK's logger
// already has workflow_id and run_id; the tracing interceptor adds trace_id
// and span_id when tracing is on.
func TemporalInterceptor(orderID func(workflowID string) (string, bool)) interceptor.Interceptor {
	return &correlation{orderID: orderID}
}

type correlation struct {
	interceptor.InterceptorBase
	orderID func(string) (string, bool)
}

// keyvals are the correlation pairs for a workflow's or activity's logger.
func (c *correlation) keyvals(workflowID, requestID string) []any {
	kv := make([]any, 0, 4)
	if id, ok := c.orderID(workflowID); ok {
		kv = append(kv, KeyOrderID, id)
	}
	if requestID != "" {
		kv = append(kv, KeyRequestID, requestID)
	}
	return kv
}

func (c *correlation) InterceptWorkflow(_ workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	return &workflowInbound{WorkflowInboundInterceptorBase: interceptor.WorkflowInboundInterceptorBase{Next: next}, root: c}
}

func (c *correlation) InterceptActivity(_ context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	return &activityInbound{ActivityInboundInterceptorBase: interceptor.ActivityInboundInterceptorBase{Next: next}, root: c}
}

type workflowInbound struct {
	interceptor.WorkflowInboundInterceptorBase
	root *correlation
}

func (w *workflowInbound) Init(outbound interceptor.WorkflowOutboundInterceptor) error {
	return w.Next.Init(&workflowOutbound{WorkflowOutboundInterceptorBase: interceptor.WorkflowOutboundInterceptorBase{Next: outbound}, root: w.root})
}

type workflowOutbound struct {
	interceptor.WorkflowOutboundInterceptorBase
	root *correlation
}

func (w *workflowOutbound) GetLogger(ctx workflow.Context) log.Logger {
	l := w.Next.GetLogger(ctx)
	if kv := w.root.keyvals(workflow.GetInfo(ctx).WorkflowExecution.ID, WorkflowRequestID(ctx)); len(kv) > 0 {
		return log.With(l, kv...)
	}
	return l
}

type activityInbound struct {
	interceptor.ActivityInboundInterceptorBase
	root *correlation
}

func (a *activityInbound) Init(outbound interceptor.ActivityOutboundInterceptor) error {
	return a.Next.Init(&activityOutbound{ActivityOutboundInterceptorBase: interceptor.ActivityOutboundInterceptorBase{Next: outbound}, root: a.root})
}

type activityOutbound struct {
	interceptor.ActivityOutboundInterceptorBase
	root *correlation
}

func (a *activityOutbound) GetLogger(ctx context.Context) log.Logger {
	l := a.Next.GetLogger(ctx)
	if kv := a.root.keyvals(activity.GetInfo(ctx).WorkflowExecution.ID, RequestID(ctx)); len(kv) > 0 {
		return log.With(l, kv...)
	}
	return l
}
