package breaker

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// instrument exports the breaker's state as orderflow.breaker.state and
// prepares its transitions counter. The process's meter provider is
// installed before breakers are made; asking it again for an instrument
// returns the one it has, so every breaker shares the two.
func (b *Breaker) instrument() {
	m := otel.Meter("github.com/orderflow/orderflow/internal/breaker")
	state, _ := m.Int64ObservableGauge("orderflow.breaker.state",
		metric.WithDescription("Circuit breaker state per remote dependency: 0 closed, 1 half-open, 2 open."))
	b.transitions, _ = m.Int64Counter("orderflow.breaker.transitions",
		metric.WithDescription("Circuit breaker state changes per remote dependency and new state."))
	if state == nil {
		return
	}
	label := metric.WithAttributes(attribute.String("dependency", b.name))
	_, _ = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(state, int64(b.cb.State()), label)
		return nil
	}, state)
}

// count records a transition to state.
func (b *Breaker) count(state string) {
	if b.transitions != nil {
		b.transitions.Add(context.Background(), 1, metric.WithAttributes(
			attribute.String("dependency", b.name), attribute.String("state", state)))
	}
}
