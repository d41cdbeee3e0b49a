package payment

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/orderflow/orderflow/internal/breaker"
)

// Provider is a card processor as the router uses it. Implementations must
// honour the idempotency key: a repeated Charge or Refund with the same key
// returns the first answer and never moves money twice.
type Provider interface {
	// Name identifies the provider in the payment records.
	Name() string
	// Charge takes money from a payment token. A refusal by the card network
	// is a *DeclinedError; a request that never reached the provider wraps
	// ErrNotSent; any other error is ambiguous and may be retried with the
	// same key.
	Charge(ctx context.Context, req ChargeRequest) (Charge, error)
	// Refund returns a charge's money: AmountCents of it, or all of it when
	// 0. Of an authorization it returns what was captured, and a refund in
	// full voids what is left uncaptured.
	Refund(ctx context.Context, req RefundRequest) (Refund, error)
	// Authorize holds the amount on the card without taking it, under the
	// same contract as Charge; the Charge answered carries ExpiresAt.
	Authorize(ctx context.Context, req ChargeRequest) (Charge, error)
	// Capture takes part or all of an authorization, once per idempotency
	// key; never more than is left of it, and nothing after a final
	// capture, a void or the authorization's expiry.
	Capture(ctx context.Context, req CaptureRequest) (Capture, error)
	// Void releases what is left uncaptured of an authorization, once per
	// idempotency key; voiding a voided authorization is no error.
	Void(ctx context.Context, req VoidRequest) error
	// FindCharge looks up the charge made with an idempotency key. It never
	// creates one.
	FindCharge(ctx context.Context, idempotencyKey string) (Charge, bool, error)
}

// BreakerSettings are a provider breaker's thresholds.
type BreakerSettings struct {
	// Window is the rolling window the failure ratio is taken over.
	Window time.Duration
	// FailureRatio opens the breaker once this share of the window's calls failed...
	FailureRatio float64
	// ...and the window holds at least MinRequests calls.
	MinRequests uint32
	// OpenTimeout is how long an open breaker fails fast before it lets
	// trial calls through (half-open).
	OpenTimeout time.Duration
	// HalfOpenSuccesses consecutive successful trial calls close it again.
	HalfOpenSuccesses uint32
}

// Guarded is a provider behind its circuit breaker. Calls through it fail
// fast with an error wrapping ErrNotSent while the breaker is open.
type Guarded struct {
	Provider
	breaker *gobreaker.CircuitBreaker[any]
	opened  atomic.Int64
}

// State is the breaker's state: "closed", "half-open" or "open".
func (g *Guarded) State() string { return g.breaker.State().String() }

// Available reports whether the breaker would let a call through now.
func (g *Guarded) Available() bool { return g.breaker.State() != gobreaker.StateOpen }

// Opened counts how often the breaker has opened.
func (g *Guarded) Opened() int64 { return g.opened.Load() }

// Charge charges through the breaker.
func (g *Guarded) Charge(ctx context.Context, req ChargeRequest) (Charge, error) {
	return guard(g, func() (Charge, error) { return g.Provider.Charge(ctx, req) })
}

// Refund refunds through the breaker.
func (g *Guarded) Refund(ctx context.Context, req RefundRequest) (Refund, error) {
	return guard(g, func() (Refund, error) { return g.Provider.Refund(ctx, req) })
}

// Authorize authorizes through the breaker.
func (g *Guarded) Authorize(ctx context.Context, req ChargeRequest) (Charge, error) {
	return guard(g, func() (Charge, error) { return g.Provider.Authorize(ctx, req) })
}

// Capture captures through the breaker.
func (g *Guarded) Capture(ctx context.Context, req CaptureRequest) (Capture, error) {
	return guard(g, func() (Capture, error) { return g.Provider.Capture(ctx, req) })
}

// Void voids through the breaker.
func (g *Guarded) Void(ctx context.Context, req VoidRequest) error {
	_, err := guard(g, func() (struct{}, error) { return struct{}{}, g.Provider.Void(ctx, req) })
	return err
}

// FindCharge looks a charge up through the breaker.
func (g *Guarded) FindCharge(ctx context.Context, key string) (Charge, bool, error) {
	type found struct {
		ch Charge
		ok bool
	}
	f, err := guard(g, func() (found, error) {
		ch, ok, err := g.Provider.FindCharge(ctx, key)
		return found{ch, ok}, err
	})
	return f.ch, f.ok, err
}

func guard[T any](g *Guarded, call func() (T, error)) (T, error) {
	v, err := g.breaker.Execute(func() (any, error) { return call() })
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		var zero T
		return zero, fmt.Errorf("%s: breaker %s: %w", g.Name(), err, ErrNotSent)
	}
	t, _ := v.(T)
	return t, err
}

// Router holds the providers in failover order, each behind its own breaker.
type Router struct {
	providers []*Guarded
}

// NewRouter puts every provider behind a breaker with the given settings.
// The breaker counts a decline as a success (the provider answered) and
// ignores calls the caller cancelled.
func NewRouter(s BreakerSettings, providers ...Provider) *Router {
	meter := otel.Meter("github.com/orderflow/orderflow/activities/payment")
	state, _ := meter.Int64ObservableGauge("orderflow.payment.breaker.state",
		metric.WithDescription("Circuit breaker state per payment provider: 0 closed, 1 half-open, 2 open."))
	transitions, _ := meter.Int64Counter("orderflow.payment.breaker.transitions",
		metric.WithDescription("Circuit breaker state changes per payment provider and new state."))
	r := &Router{}
	for _, p := range providers {
		g := &Guarded{Provider: p}
		gs := breaker.Gobreaker(p.Name(), breaker.Settings{Window: s.Window, FailureRatio: s.FailureRatio,
			MinRequests: s.MinRequests, OpenTimeout: s.OpenTimeout, HalfOpenProbes: s.HalfOpenSuccesses})
		gs.IsSuccessful = func(err error) bool {
			var declined *DeclinedError
			return err == nil || errors.As(err, &declined)
		}
		gs.IsExcluded = func(err error) bool { return errors.Is(err, context.Canceled) }
		gs.OnStateChange = func(name string, _, to gobreaker.State) {
			if to == gobreaker.StateOpen {
				g.opened.Add(1)
			}
			if transitions != nil {
				transitions.Add(context.Background(), 1, metric.WithAttributes(
					attribute.String("provider", name), attribute.String("state", to.String())))
			}
		}
		g.breaker = gobreaker.NewCircuitBreaker[any](gs)
		r.providers = append(r.providers, g)
	}
	if state != nil {
		_, _ = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
			for _, g := range r.providers {
				o.ObserveInt64(state, int64(g.breaker.State()), metric.WithAttributes(attribute.String("provider", g.Name())))
			}
			return nil
		}, state)
	}
	return r
}

// Providers returns the guarded providers in failover order.
func (r *Router) Providers() []*Guarded { return r.providers }

// Get returns the provider with that name.
func (r *Router) Get(name string) (*Guarded, bool) {
	for _, g := range r.providers {
		if g.Name() == name {
			return g, true
		}
	}
	return nil, false
}

// Available returns the providers whose breaker lets calls through, in
// failover order.
func (r *Router) Available() []*Guarded {
	var out []*Guarded
	for _, g := range r.providers {
		if g.Available() {
			out = append(out, g)
		}
	}
	return out
}
