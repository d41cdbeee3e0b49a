// Package webhooks holds the workflows that deliver the event stream to
// subscribers' endpoints (activities/webhooks): one Deliver workflow per
// (endpoint, order) sends the order's events one after another, each retried
// with backoff for the policy's RetryFor, and Replay hands a range of past
// events to them again.
package webhooks

import (
	"errors"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	hooks "github.com/orderflow/orderflow/activities/webhooks"
)

// Registered names (activities/webhooks declares them so the dispatcher and
// the gateway can start the workflows by name).
const (
	Workflow       = hooks.DeliveryWorkflow
	ReplayWorkflow = hooks.ReplayWorkflow
)

// Bounds of one run's history: past maxPerRun events the workflow continues
// as new, carrying its queue and the last keepSeen delivered ids.
const (
	maxPerRun = 200
	keepSeen  = 500
)

// delivery is the state of one run.
type delivery struct {
	in    hooks.DeliveryInput
	queue []hooks.Item
	seen  map[int64]bool
	order []int64 // seen ids in the order delivered, to trim
	done  int
}

// Deliver sends the events signalled to it (SignalEvent) to one endpoint,
// in the order they were signalled: an event waits until the one before it
// succeeded or was given up. An event it delivered already is dropped
// unless the signal forces it (redelivery, replay). With nothing to send
// for the policy's Idle, it completes; a later event starts a new run.
func Deliver(ctx workflow.Context, in hooks.DeliveryInput) error {
	d := &delivery{in: in, queue: in.Pending, seen: map[int64]bool{}}
	for _, id := range in.Seen {
		d.remember(id)
	}
	ch := workflow.GetSignalChannel(ctx, hooks.SignalEvent)
	for {
		d.drain(ch)
		if len(d.queue) == 0 {
			if !d.wait(ctx, ch) {
				// A signal may have come with the timer's task.
				if d.drain(ch); len(d.queue) == 0 {
					return nil
				}
			}
			continue
		}
		it := d.queue[0]
		d.queue = d.queue[1:]
		d.send(ctx, it)
		if d.done >= maxPerRun || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			d.drain(ch)
			return workflow.NewContinueAsNewError(ctx, Workflow, hooks.DeliveryInput{EndpointID: in.EndpointID,
				Partition: in.Partition, Policy: in.Policy, Pending: d.queue, Seen: d.order})
		}
	}
}

// add queues it unless it was delivered or queued already.
func (d *delivery) add(it hooks.Item) {
	if !it.Force && (d.seen[it.EventID] || slices.ContainsFunc(d.queue, func(q hooks.Item) bool { return q.EventID == it.EventID })) {
		return
	}
	d.queue = append(d.queue, it)
}

func (d *delivery) drain(ch workflow.ReceiveChannel) {
	var it hooks.Item
	for ch.ReceiveAsync(&it) {
		d.add(it)
	}
}

// wait blocks until a signal comes (true) or the policy's Idle passes with
// none (false).
func (d *delivery) wait(ctx workflow.Context, ch workflow.ReceiveChannel) bool {
	idle := d.in.Policy.Idle
	if idle <= 0 {
		idle = 10 * time.Minute
	}
	tctx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	got := false
	sel := workflow.NewSelector(ctx)
	sel.AddReceive(ch, func(c workflow.ReceiveChannel, _ bool) {
		var it hooks.Item
		c.Receive(ctx, &it)
		d.add(it)
		got = true
	})
	sel.AddFuture(workflow.NewTimer(tctx, idle), func(workflow.Future) {})
	sel.Select(ctx)
	return got
}

func (d *delivery) remember(id int64) {
	if d.seen[id] {
		return
	}
	d.seen[id] = true
	d.order = append(d.order, id)
	if len(d.order) > keepSeen {
		delete(d.seen, d.order[0])
		d.order = d.order[1:]
	}
}

// send delivers one event, retrying with exponential backoff for the
// policy's RetryFor; an event given up (or whose endpoint is gone) is logged
// and the next one goes.
func (d *delivery) send(ctx workflow.Context, it hooks.Item) {
	p := d.in.Policy
	initial, maxWait := p.RetryInitial, p.RetryMax
	if initial <= 0 {
		initial = 10 * time.Second
	}
	if maxWait <= 0 {
		maxWait = time.Hour
	}
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	retryFor := p.RetryFor
	if retryFor <= 0 {
		retryFor = 72 * time.Hour
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    timeout + 10*time.Second,
		ScheduleToCloseTimeout: retryFor,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: initial, BackoffCoefficient: 2, MaximumInterval: maxWait,
			NonRetryableErrorTypes: []string{hooks.ErrTypeEndpointGone, hooks.ErrTypeEventGone}},
	})
	var acts *hooks.Activities
	err := workflow.ExecuteActivity(actx, acts.Send, hooks.SendInput{EndpointID: d.in.EndpointID, EventID: it.EventID}).Get(ctx, nil)
	d.remember(it.EventID)
	d.done++
	if err != nil {
		var app *temporal.ApplicationError
		gone := errors.As(err, &app) && app.Type() == hooks.ErrTypeEndpointGone
		workflow.GetLogger(ctx).Warn("webhook not delivered", "endpoint_id", d.in.EndpointID, "event_id", it.EventID,
			"endpoint_gone", gone, "error", err)
	}
}

// ReplayInput asks Replay for an endpoint's events after a cursor and at or
// after a time.
type ReplayInput struct {
	EndpointID string
	After      int64
	Since      time.Time
	Policy     hooks.Policy
}

// ReplayResult counts the events a replay handed to the deliveries.
type ReplayResult struct {
	Events int
	Last   int64
}

// Replay hands every event of the endpoint's types after in.After and at or
// after in.Since, in id order, to the endpoint's delivery workflows (forced,
// so they go out again), a page at a time.
func Replay(ctx workflow.Context, in ReplayInput) (ReplayResult, error) {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Minute, HeartbeatTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: time.Minute},
	})
	var acts *hooks.Activities
	res := ReplayResult{Last: in.After}
	for {
		var page hooks.ReplayResult
		err := workflow.ExecuteActivity(actx, acts.ReplayPage, hooks.ReplayInput{EndpointID: in.EndpointID, After: res.Last,
			Since: in.Since, Limit: 200, Policy: in.Policy}).Get(ctx, &page)
		if err != nil {
			return res, err
		}
		if page.Count == 0 {
			return res, nil
		}
		res.Events += page.Count
		res.Last = page.Last
	}
}
