package order

import (
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/orderflow/orderflow"
)

// Start is what starting an order's saga takes: its input and the order's
// total at catalog prices when it was accepted (a search attribute). The
// gateway keeps it, sealed, in the order's acceptance record, so a re-drive
// after a region's loss starts the same saga.
type Start struct {
	Input      Input `json:"input"`
	TotalCents int64 `json:"total_cents"`
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
