package events_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap/zaptest"

	"github.com/orderflow/orderflow/activities/events"
	"github.com/orderflow/orderflow/internal/db"
)

var (
	readerOnce sync.Once
	reader     *sdkmetric.ManualReader
)

// metrics installs, once per test binary, a MeterProvider the test reads.
func metrics() *sdkmetric.ManualReader {
	readerOnce.Do(func() {
		reader = sdkmetric.NewManualReader()
		otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	})
	return reader
}

// value sums metric name's points whose attributes include attrs: a
// counter's value, or a histogram's count and sum.
func value(t *testing.T, name string, attrs ...attribute.KeyValue) (total float64, count uint64) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, metrics().Collect(context.Background(), &rm))
	match := func(set attribute.Set) bool {
		for _, kv := range attrs {
			if v, ok := set.Value(kv.Key); !ok || v != kv.Value {
				return false
			}
		}
		return true
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					if match(p.Attributes) {
						total += float64(p.Value)
					}
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					if match(p.Attributes) {
						total, count = total+p.Sum, count+p.Count
					}
				}
			}
		}
	}
	return total, count
}

func outcome(o string) attribute.KeyValue { return attribute.String("outcome", o) }
func kind(k string) attribute.KeyValue    { return attribute.String("kind", k) }

// The analytics consumer turns the stream into the business metrics: each
// event counted once (a redelivered copy is not), synthetic orders left out.
func TestAnalyticsCountsTheStreamOnce(t *testing.T) {
	metrics()
	e := newRelayEnv(t)
	ctx := context.Background()
	before := map[string]float64{}
	for _, o := range []string{"created", "confirmed", "failed", "delivered"} {
		before[o], _ = value(t, "orderflow.analytics.orders", outcome(o))
	}
	valueBefore, _ := value(t, "orderflow.analytics.order.value.cents")
	refundsBefore, _ := value(t, "orderflow.analytics.payments", kind("refunded"))
	sumBefore, deliveredBefore := value(t, events.DeliveryDuration)

	write := func(evs ...events.Event) {
		require.NoError(t, db.InTx(ctx, e.pool, func(tx pgx.Tx) error {
			for _, ev := range evs {
				if err := events.Enqueue(ctx, tx, ev); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	order := func(typ, id string, total int64, synthetic bool) events.Event {
		return events.Event{Type: typ, OrderID: id, Data: map[string]any{"order_id": id, "total_cents": total, "currency": "USD", "synthetic": synthetic}}
	}
	a, b, c, synth := newOrder(t, e.pool, e.region), newOrder(t, e.pool, e.region), newOrder(t, e.pool, e.region), newOrder(t, e.pool, e.region)
	var accepted time.Time
	require.NoError(t, e.pool.QueryRow(ctx, `SELECT created_at FROM orders WHERE order_id = $1`, a).Scan(&accepted))
	write(order(events.OrderCreated, a, 1000, false), order(events.OrderCreated, b, 3000, false), order(events.OrderCreated, c, 500, false),
		order(events.OrderCreated, synth, 100, true), order(events.OrderConfirmed, synth, 100, true))
	write(order(events.OrderConfirmed, a, 1000, false), order(events.OrderConfirmed, b, 3000, false), order(events.OrderFailed, c, 500, false),
		events.Event{Type: events.PaymentRefunded, OrderID: b, Data: map[string]any{"order_id": b, "amount_cents": 3000, "currency": "USD"}},
		events.Event{Type: events.OrderDelivered, OrderID: a, Data: map[string]any{"order_id": a,
			"delivered_at": accepted.Add(26 * time.Hour).Format(time.RFC3339Nano)}})
	e.relay()
	e.waitPublished()

	an := &events.Analytics{JS: e.js, Log: zaptest.NewLogger(t), Durable: "analytics-test"}
	actx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); an.Run(actx) }()
	defer func() { cancel(); <-done }()
	e.waitConsumed("analytics-test")

	// A copy of b's refund, as published again past the duplicate window.
	envs, raw := e.received()
	for i, env := range envs {
		if env.Type == events.PaymentRefunded {
			_, err := e.js.PublishMsg(ctx, &nats.Msg{Subject: env.Type, Data: raw[i]}, jetstream.WithMsgID("copy-"+env.ID))
			require.NoError(t, err)
		}
	}
	e.waitConsumed("analytics-test")

	for o, want := range map[string]float64{"created": 3, "confirmed": 2, "failed": 1, "delivered": 1} {
		got, _ := value(t, "orderflow.analytics.orders", outcome(o))
		assert.Equal(t, want, got-before[o], o)
	}
	got, _ := value(t, "orderflow.analytics.order.value.cents")
	assert.Equal(t, float64(4000), got-valueBefore, "confirmed value, synthetic left out")
	refunds, _ := value(t, "orderflow.analytics.payments", kind("refunded"))
	assert.Equal(t, float64(1), refunds-refundsBefore, "the copy is counted once")
	sum, n := value(t, events.DeliveryDuration)
	require.Equal(t, uint64(1), n-deliveredBefore)
	assert.InDelta(t, (26 * time.Hour).Seconds(), sum-sumBefore, 1, "acceptance to delivery")
}

// waitConsumed waits until the durable consumer on every analytics stream
// has been delivered everything and acknowledged it.
func (e *relayEnv) waitConsumed(durable string) {
	e.t.Helper()
	require.Eventually(e.t, func() bool {
		for _, stream := range events.AnalyticsStreams {
			c, err := e.js.Consumer(context.Background(), stream, durable)
			if err != nil {
				return false
			}
			info, err := c.Info(context.Background())
			if err != nil || info.NumPending > 0 || info.NumAckPending > 0 {
				return false
			}
		}
		return true
	}, 30*time.Second, 20*time.Millisecond)
}
