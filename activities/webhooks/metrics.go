package webhooks

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
)

// The deliveries' instruments (docs/webhooks.md).
var deliveries, disabledCount, dispatched metric.Int64Counter

func init() {
	m := otel.Meter("github.com/orderflow/orderflow/activities/webhooks")
	deliveries, _ = m.Int64Counter("orderflow.webhooks.deliveries",
		metric.WithDescription("webhook delivery attempts by outcome (delivered, failed, skipped)"))
	disabledCount, _ = m.Int64Counter("orderflow.webhooks.endpoints.disabled",
		metric.WithDescription("webhook endpoints disabled after failing for WEBHOOKS_DISABLE_AFTER"))
	dispatched, _ = m.Int64Counter("orderflow.webhooks.dispatched",
		metric.WithDescription("events handed to webhook delivery workflows (one per event and endpoint)"))
}

// ZeroMetrics exports the disable counter at zero from the start, so the
// first endpoint disabled is an increase Prometheus sees
// (OrderflowWebhookEndpointDisabled).
func ZeroMetrics() {
	ctx := context.Background()
	disabledCount.Add(ctx, 0)
	dispatched.Add(ctx, 0)
}
