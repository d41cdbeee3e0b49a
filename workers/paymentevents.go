package workers

import (
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/workflow"

	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/workflows/paymentevent"
)

// RegisterPaymentEvents adds the workflow of a payment provider's webhook
// event, under its explicit name, and its activities, which wake the
// saga's waiting charge step through c.
func RegisterPaymentEvents(r Registry, deps Deps, c client.Client) {
	r.RegisterWorkflowWithOptions(paymentevent.Handle, workflow.RegisterOptions{Name: paymentevent.Workflow})
	r.RegisterActivity(&payment.Webhooks{Temporal: c, Payments: &payment.Activities{DB: deps.DB, Providers: deps.Payments,
		Cache: deps.Cache, FailoverQuiet: deps.FailoverQuiet}})
}
