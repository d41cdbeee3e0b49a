package events

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
)

// AnalyticsStreams are the streams the analytics consumer reads.
var AnalyticsStreams = []string{"ORDERS", "PAYMENTS", "ANALYTICS"}

// Analytics is the business-metrics consumer: a durable JetStream consumer
// on each of AnalyticsStreams, shared by every process that runs one (each
// event goes to one of them), turning events into the counters and the
// histogram above: orders per second, success rate, average order value,
// refund rate and time from acceptance to delivery are PromQL over them
// (docs/events.md). Orders marked synthetic (the deep health check's) are
// left out. A redelivered event (its acknowledgement lost) is counted once
// as long as it is among the last Remember events this process saw.
type Analytics struct {
	JS      jetstream.JetStream
	Log     *zap.Logger
	Durable string // default "analytics"
	// Remember bounds the ids kept to drop redeliveries (default 100000).
	Remember int

	mu   sync.Mutex
	seen map[string]struct{}
	ring []string
	next int
}

// Run consumes until ctx is done, creating the durable consumers when NATS
// answers (it retries while it does not).
func (a *Analytics) Run(ctx context.Context) {
	if a.Durable == "" {
		a.Durable = "analytics"
	}
	if a.Remember <= 0 {
		a.Remember = 100000
	}
	if a.Log == nil {
		a.Log = zap.NewNop()
	}
	a.seen, a.ring = make(map[string]struct{}, a.Remember), make([]string, a.Remember)
	var running []jetstream.ConsumeContext
	defer func() {
		for _, c := range running {
			c.Stop()
		}
	}()
	for _, stream := range AnalyticsStreams {
		for ctx.Err() == nil {
			cc, err := a.consume(ctx, stream)
			if err == nil {
				running = append(running, cc)
				break
			}
			a.Log.Warn("analytics consumer: waiting for NATS", zap.String("stream", stream), zap.Error(err))
			sleep(ctx, 2*time.Second)
		}
	}
	<-ctx.Done()
}

func (a *Analytics) consume(ctx context.Context, stream string) (jetstream.ConsumeContext, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := a.JS.CreateOrUpdateConsumer(cctx, stream, jetstream.ConsumerConfig{Durable: a.Durable,
		AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy, AckWait: 30 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("consumer %s on %s: %w", a.Durable, stream, err)
	}
	return c.Consume(a.handle, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		a.Log.Debug("analytics consumer", zap.String("stream", stream), zap.Error(err))
	}))
}

func (a *Analytics) handle(msg jetstream.Msg) {
	var env Envelope
	if err := json.Unmarshal(msg.Data(), &env); err != nil || env.ID == "" {
		a.Log.Warn("analytics: not an event envelope; dropped", zap.String("subject", msg.Subject()), zap.Error(err))
		_ = msg.Term()
		return
	}
	if a.firstTime(env.ID) {
		a.Count(context.Background(), env)
	}
	_ = msg.Ack()
}

// firstTime records id and reports whether it was not among the last
// Remember ids seen.
func (a *Analytics) firstTime(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.seen[id]; ok {
		return false
	}
	if old := a.ring[a.next]; old != "" {
		delete(a.seen, old)
	}
	a.ring[a.next], a.seen[id] = id, struct{}{}
	a.next = (a.next + 1) % len(a.ring)
	return true
}

// analyticsData is what the metrics read of any event's payload.
type analyticsData struct {
	Synthetic   bool   `json:"synthetic"`
	TotalCents  int64  `json:"total_cents"`
	AmountCents int64  `json:"amount_cents"`
	Currency    string `json:"currency"`
	Name        string `json:"name"`
	DeliveredAt string `json:"delivered_at"`
}

// Count adds one event to the business metrics.
func (a *Analytics) Count(ctx context.Context, env Envelope) {
	var d analyticsData
	_ = json.Unmarshal(env.Data, &d)
	if d.Synthetic {
		return
	}
	outcome := func(o string) { ordersCount.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", o))) }
	payment := func(kind string) {
		paymentsCount.Add(ctx, 1, metric.WithAttributes(attribute.String("kind", kind)))
		paymentCents.Add(ctx, d.AmountCents, metric.WithAttributes(attribute.String("kind", kind), attribute.String("currency", d.Currency)))
	}
	switch env.Type {
	case OrderCreated:
		outcome("created")
	case OrderConfirmed:
		outcome("confirmed")
		orderValue.Add(ctx, d.TotalCents, metric.WithAttributes(attribute.String("currency", d.Currency)))
	case OrderFailed:
		outcome("failed")
	case OrderCancelled:
		outcome("cancelled")
	case OrderDelivered:
		outcome("delivered")
		if env.OrderAcceptedAt != nil {
			at := env.OccurredAt
			if t, err := time.Parse(time.RFC3339Nano, d.DeliveredAt); err == nil {
				at = t
			}
			deliveryDuration.Record(ctx, at.Sub(*env.OrderAcceptedAt).Seconds())
			deliveryTime.Add(ctx, at.Sub(*env.OrderAcceptedAt).Seconds())
		}
	case PaymentProcessed:
		payment("processed")
	case PaymentRefunded:
		payment("refunded")
	case AnalyticsEvents:
		namedCount.Add(ctx, 1, metric.WithAttributes(attribute.String("name", d.Name)))
	}
}

// ZeroMetrics exports a zero for each counter the dashboard reads (each
// outcome, kind and event type), so that the first of each shows in
// rate() and every series exists from the start, with or without an event
// stream configured. Call it once the MeterProvider is installed.
func ZeroMetrics() {
	ctx := context.Background()
	orderValue.Add(ctx, 0)
	deliveryTime.Add(ctx, 0)
	failedCount.Add(ctx, 0)
	for _, s := range Streams {
		for _, typ := range s.Subjects {
			publishedCount.Add(ctx, 0, metric.WithAttributes(attribute.String("type", typ)))
		}
	}
	for _, o := range []string{"created", "confirmed", "failed", "cancelled", "delivered"} {
		ordersCount.Add(ctx, 0, metric.WithAttributes(attribute.String("outcome", o)))
	}
	for _, k := range []string{"processed", "refunded"} {
		paymentsCount.Add(ctx, 0, metric.WithAttributes(attribute.String("kind", k)))
	}
}
