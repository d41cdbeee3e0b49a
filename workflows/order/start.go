package order

import (
	"context"
	"errors"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/orders"
	"github.com/orderflow/orderflow/internal/pii"
)

// Start is what starting an order's saga takes: its input and the order's
// total at catalog prices when it was accepted (a search attribute). The
// gateway keeps it, sealed, in the order's acceptance record, so a re-drive
// after a region's loss starts the same saga.
type Start struct {
	Input      Input `json:"input"`
	TotalCents int64 `json:"total_cents"`
	// Currency and Lines are the total's currency and the lines as the
	// catalog priced them at acceptance, what GET /v1/orders/{id} shows of
	// an order whose start was deferred (absent from starts sealed before
	// they were kept).
	Currency string           `json:"currency,omitempty"`
	Lines    []orderflow.Line `json:"lines,omitempty"`
}

// StartOptions are the start options of order-<id> on the region's task
// queue, with the search attributes operators filter on set from the start.
// Every start of an Order saga uses them: USE_EXISTING and REJECT_DUPLICATE
// make a repeated start attach to the saga that runs or ran, so a start
// repeated by the gateway or a re-drive never makes a second saga.
func StartOptions(orderID, customerID, region string, eager bool, extra ...temporal.SearchAttributeUpdate) client.StartWorkflowOptions {
	attrs := append([]temporal.SearchAttributeUpdate{
		OrderStatusKey.ValueSet(orderflow.StatusPending),
		CustomerIDKey.ValueSet(customerID),
		RegionKey.ValueSet(region),
	}, extra...)
	return client.StartWorkflowOptions{
		ID:                       WorkflowID(orderID),
		TaskQueue:                TaskQueue(region),
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		EnableEagerStart:         eager,
		TypedSearchAttributes:    temporal.NewSearchAttributes(attrs...),
	}
}

// StartAccepted starts the saga of an accepted order from the sealed start
// in its acceptance record, as the gateway would have started it: the same
// workflow id and options, so that it attaches to a saga that runs and
// never makes a second one. ended reports a saga that had already ended
// (nothing started). summary is the saga's line in the Web UI, saying why
// it was started this way.
func StartAccepted(ctx context.Context, c client.Client, keys *pii.Keyring, a orders.Accepted, summary string) (ended bool, err error) {
	var s Start
	if err := orders.OpenStart(keys, a.OrderID, a.Saga, &s); err != nil {
		return false, err
	}
	opts := StartOptions(a.OrderID, a.CustomerID, s.Input.Region, false, OrderTotalCentsKey.ValueSet(s.TotalCents))
	opts.StaticSummary = summary
	_, err = c.ExecuteWorkflow(ctx, opts, Workflow, s.Input)
	var ran *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &ran) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("start saga of %s: %w", a.OrderID, err)
	}
	return false, nil
}
