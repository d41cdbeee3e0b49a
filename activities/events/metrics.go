package events

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"

	"github.com/orderflow/orderflow/internal/telemetry"
)

// DeliveryDuration is the histogram of an order's time from acceptance to
// delivery; internal/telemetry gives it buckets in hours and days.
const DeliveryDuration = telemetry.DeliveryDuration

// The relay's and the analytics consumer's instruments (docs/events.md).
var (
	publishedCount, failedCount                                      metric.Int64Counter
	ordersCount, paymentsCount, paymentCents, orderValue, namedCount metric.Int64Counter
	relayDelay, deliveryDuration                                     metric.Float64Histogram
	deliveryTime                                                     metric.Float64Counter
)

func init() {
	m := otel.Meter("github.com/orderflow/orderflow/activities/events")
	publishedCount, _ = m.Int64Counter("orderflow.events.published",
		metric.WithDescription("events the relay published to JetStream and JetStream acknowledged, by type"))
	failedCount, _ = m.Int64Counter("orderflow.events.publish.failures",
		metric.WithDescription("event publish attempts that JetStream did not acknowledge (the event waits in the outbox)"))
	relayDelay, _ = m.Float64Histogram("orderflow.events.relay.delay", metric.WithUnit("s"),
		metric.WithDescription("time from an event's commit to JetStream's acknowledgement"))
	ordersCount, _ = m.Int64Counter("orderflow.analytics.orders",
		metric.WithDescription("orders by outcome (created, confirmed, failed, cancelled, delivered), from the event stream"))
	orderValue, _ = m.Int64Counter("orderflow.analytics.order.value.cents",
		metric.WithDescription("total value of confirmed orders in minor units: over the confirmed count, the average order value"))
	paymentsCount, _ = m.Int64Counter("orderflow.analytics.payments",
		metric.WithDescription("payments by kind (processed, refunded), from the event stream: refunded over processed is the refund rate"))
	paymentCents, _ = m.Int64Counter("orderflow.analytics.payment.cents",
		metric.WithDescription("payment amounts in minor units by kind (processed, refunded) and currency"))
	namedCount, _ = m.Int64Counter("orderflow.analytics.events",
		metric.WithDescription("analytics.events facts by name"))
	deliveryDuration, _ = m.Float64Histogram(DeliveryDuration, metric.WithUnit("s"),
		metric.WithDescription("time from an order's acceptance to its delivery (percentiles)"))
	deliveryTime, _ = m.Float64Counter("orderflow.analytics.delivery.time", metric.WithUnit("s"),
		metric.WithDescription("acceptance-to-delivery time of delivered orders, added up: over the delivered count, the mean"))
}
