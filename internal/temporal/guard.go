package temporal

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/orderflow/orderflow/internal/breaker"
)

// FrontendFailure reports whether err says the Temporal frontend failed a
// call: unreachable, or no answer within the caller's deadline. An answer
// (not found, already started, an update rejected, the frontend's own rate
// limit) is not a failure.
func FrontendFailure(err error) bool {
	var unavail *serviceerror.Unavailable
	var deadline *serviceerror.DeadlineExceeded
	return errors.As(err, &unavail) || errors.As(err, &deadline) || errors.Is(err, context.DeadlineExceeded)
}

// NewFrontendBreaker is the breaker of the Temporal frontend as a caller sees
// it, counting FrontendFailure errors.
func NewFrontendBreaker(s breaker.Settings) *breaker.Breaker {
	return breaker.New("temporal", s, breaker.Options{Failure: FrontendFailure})
}

// Guarded is a client whose calls that start, update, query and describe
// workflows go through a breaker. While it is open those calls fail at once
// with an error wrapping both breaker.ErrOpen and *serviceerror.Unavailable,
// so callers that map Unavailable to "retry later" need no change. Other
// calls, and the handles the guarded calls return, go straight through.
type Guarded struct {
	client.Client
	Breaker *breaker.Breaker
}

// Guard puts c's per-request calls behind b.
func Guard(c client.Client, b *breaker.Breaker) *Guarded { return &Guarded{Client: c, Breaker: b} }

func guarded[T any](g *Guarded, call func() (T, error)) (T, error) {
	var v T
	err := g.Breaker.Do(func() error {
		var err error
		v, err = call()
		return err
	})
	if errors.Is(err, breaker.ErrOpen) {
		return v, fmt.Errorf("%w: %w", err, serviceerror.NewUnavailable("temporal frontend breaker open"))
	}
	return v, err
}

// ExecuteWorkflow starts a workflow through the breaker.
func (g *Guarded) ExecuteWorkflow(ctx context.Context, o client.StartWorkflowOptions, wf any, args ...any) (client.WorkflowRun, error) {
	return guarded(g, func() (client.WorkflowRun, error) { return g.Client.ExecuteWorkflow(ctx, o, wf, args...) })
}

// UpdateWorkflow sends an update through the breaker.
func (g *Guarded) UpdateWorkflow(ctx context.Context, o client.UpdateWorkflowOptions) (client.WorkflowUpdateHandle, error) {
	return guarded(g, func() (client.WorkflowUpdateHandle, error) { return g.Client.UpdateWorkflow(ctx, o) })
}

// UpdateWithStartWorkflow sends an update-with-start through the breaker.
func (g *Guarded) UpdateWithStartWorkflow(ctx context.Context, o client.UpdateWithStartWorkflowOptions) (client.WorkflowUpdateHandle, error) {
	return guarded(g, func() (client.WorkflowUpdateHandle, error) { return g.Client.UpdateWithStartWorkflow(ctx, o) })
}

// QueryWorkflow queries a workflow through the breaker.
func (g *Guarded) QueryWorkflow(ctx context.Context, workflowID, runID, queryType string, args ...any) (converter.EncodedValue, error) {
	return guarded(g, func() (converter.EncodedValue, error) {
		return g.Client.QueryWorkflow(ctx, workflowID, runID, queryType, args...)
	})
}

// DescribeWorkflow describes a workflow through the breaker.
func (g *Guarded) DescribeWorkflow(ctx context.Context, workflowID, runID string) (*client.WorkflowExecutionDescription, error) {
	return guarded(g, func() (*client.WorkflowExecutionDescription, error) {
		return g.Client.DescribeWorkflow(ctx, workflowID, runID)
	})
}
