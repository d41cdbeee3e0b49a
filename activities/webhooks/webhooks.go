// Package webhooks delivers the event stream (activities/events) to
// subscribers' HTTP endpoints, signed with the Standard Webhooks scheme.
//
// The event outbox is the durable source: a Dispatcher per region hands
// each event not yet handed over (event_outbox.webhooks_at) to one delivery
// workflow per (endpoint, order) by Signal-With-Start, then marks it in the
// same transaction; the workflow (workflows/webhooks) sends its order's
// events one after another through the Send activity, which signs, posts,
// logs each attempt in webhook_deliveries and disables an endpoint that has
// failed for too long. docs/webhooks.md is the subscriber's contract.
package webhooks

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/client"
)

// Names registered with Temporal; they never change.
const (
	// DeliveryWorkflow is the registered name of the delivery workflow
	// (workflows/webhooks.Deliver).
	DeliveryWorkflow = "WebhookDelivery"
	// ReplayWorkflow is the registered name of the replay workflow
	// (workflows/webhooks.Replay).
	ReplayWorkflow = "WebhookReplay"
	// SignalEvent carries one Item to a delivery workflow.
	SignalEvent = "webhook-event"
)

// TaskQueue is the region's task queue of webhook deliveries, polled by
// the workers that run the outbox pool.
func TaskQueue(region string) string { return "webhooks-" + region }

// DeliveryWorkflowID names the workflow that delivers one partition's
// events (an order's, or a restock's SKU) to one endpoint: every event of an
// order goes through the same workflow, in turn.
func DeliveryWorkflowID(endpointID, partition string) string {
	return "webhook:" + endpointID + ":" + partition
}

// Item is one event to deliver.
type Item struct {
	EventID int64
	// Force delivers the event even if this workflow delivered it already:
	// a redelivery or a replay asked by an operator.
	Force bool
}

// Policy is how deliveries are retried; main builds it from the declared
// settings (WEBHOOKS_*) and every starter of a delivery passes it on.
type Policy struct {
	// TaskQueue is where the delivery workflows and activities run.
	TaskQueue string
	// RetryFor bounds the attempts at one event (3 days by default).
	RetryFor time.Duration
	// RetryInitial and RetryMax are the backoff's first and longest waits.
	RetryInitial, RetryMax time.Duration
	// Timeout bounds one HTTP attempt.
	Timeout time.Duration
	// Idle is how long a delivery workflow waits for its order's next event
	// before it completes (a later event starts a new one).
	Idle time.Duration
}

// DeliveryInput starts (or continues as new) a delivery workflow.
type DeliveryInput struct {
	EndpointID string
	Partition  string
	Policy     Policy
	// Pending and Seen carry the queue and the delivered event ids over a
	// continue-as-new.
	Pending []Item
	Seen    []int64
}

// Signal hands item to the delivery workflow of (endpoint, partition),
// starting it if it is not running. A second call with the same item while
// the workflow runs is dropped by the workflow (unless Force).
func Signal(ctx context.Context, c client.Client, p Policy, endpointID, partition string, item Item) error {
	id := DeliveryWorkflowID(endpointID, partition)
	_, err := c.SignalWithStartWorkflow(ctx, id, SignalEvent, item,
		client.StartWorkflowOptions{ID: id, TaskQueue: p.TaskQueue}, DeliveryWorkflow,
		DeliveryInput{EndpointID: endpointID, Partition: partition, Policy: p})
	if err != nil {
		return fmt.Errorf("signal webhook delivery %s event %d: %w", id, item.EventID, err)
	}
	return nil
}
