// Package breaker is the circuit breaker orderflow puts in front of every
// remote dependency that is not a payment provider: the Temporal frontend as
// the gateway sees it, Redis, and (one constructor away) SMTP, the carrier and
// NATS. It is sony/gobreaker, the library the payment router's breakers use,
// set to the design's numbers: a breaker opens once half of at least
// MinRequests calls in a rolling 10 s window failed, fails every call fast for
// 30 s, then lets 3 trial calls through (half-open) and closes when all three
// succeed. A caller may give one dependency a shorter open period when it
// recovers faster than that (the gateway's breaker of the Temporal frontend,
// behind its balancer: TEMPORAL_BREAKER_OPEN_TIMEOUT, docs/resilience.md).
//
// Each breaker exports its state (orderflow.breaker.state: 0 closed, 1
// half-open, 2 open) and its transitions as metrics, labelled by dependency,
// and gives a health check that GET /health/deep shows.
package breaker

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/otel/metric"

	"github.com/orderflow/orderflow/internal/health"
)

// ErrOpen is wrapped by every error a breaker returns instead of making a
// call: the breaker is open, or half-open with its trial calls taken.
var ErrOpen = errors.New("circuit breaker open")

// Settings are a breaker's thresholds; Design holds the design's numbers and
// a zero field takes them.
type Settings struct {
	// Window is the rolling window the failure ratio is taken over.
	Window time.Duration
	// FailureRatio opens the breaker once this share of the window's calls
	// failed...
	FailureRatio float64
	// ...and the window holds at least MinRequests calls.
	MinRequests uint32
	// OpenTimeout is how long an open breaker fails fast before trial calls.
	OpenTimeout time.Duration
	// HalfOpenProbes is how many trial calls a half-open breaker lets
	// through; all must succeed for it to close.
	HalfOpenProbes uint32
}

// Design is the design's breaker (§6.1): 50 % failures of at least 10 calls
// over 10 s open it, it stays open 30 s, 3 half-open probes.
var Design = Settings{Window: 10 * time.Second, FailureRatio: 0.5, MinRequests: 10, OpenTimeout: 30 * time.Second, HalfOpenProbes: 3}

func (s Settings) withDefaults() Settings {
	if s.Window <= 0 {
		s.Window = Design.Window
	}
	if s.FailureRatio <= 0 {
		s.FailureRatio = Design.FailureRatio
	}
	if s.MinRequests == 0 {
		s.MinRequests = Design.MinRequests
	}
	if s.OpenTimeout <= 0 {
		s.OpenTimeout = Design.OpenTimeout
	}
	if s.HalfOpenProbes == 0 {
		s.HalfOpenProbes = Design.HalfOpenProbes
	}
	return s
}

// Gobreaker is s as gobreaker's settings for the breaker name: the rolling
// window in ten buckets, the trip rule, the open period and the half-open
// probes. The payment router's breakers are built from it too; callers add
// what counts as a success and the state-change hook.
func Gobreaker(name string, s Settings) gobreaker.Settings {
	return gobreaker.Settings{
		Name:         name,
		MaxRequests:  s.HalfOpenProbes,
		Interval:     s.Window,
		BucketPeriod: s.Window / 10,
		Timeout:      s.OpenTimeout,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.Requests >= s.MinRequests && float64(c.TotalFailures) >= s.FailureRatio*float64(c.Requests)
		},
	}
}

// Options tell a breaker which outcomes are failures of the dependency.
type Options struct {
	// Failure reports whether a call's error says the dependency failed
	// (unreachable, timed out). An error that is the dependency's answer (not
	// found, a conflict) is not a failure. Nil counts every non-nil error.
	Failure func(error) bool
}

// Breaker guards one dependency.
type Breaker struct {
	name     string
	settings Settings
	cb       *gobreaker.CircuitBreaker[struct{}]
	opened   atomic.Int64
	openedAt atomic.Int64 // unix nanoseconds of the last opening

	transitions metric.Int64Counter
}

// New returns the breaker of the dependency name (the label of its metrics
// and the suffix of its health check: "breaker:<name>"), with s's thresholds
// (zero fields: Design's).
func New(name string, s Settings, o Options) *Breaker {
	s = s.withDefaults()
	failure := o.Failure
	if failure == nil {
		failure = func(err error) bool { return err != nil }
	}
	b := &Breaker{name: name, settings: s}
	gs := Gobreaker(name, s)
	gs.IsSuccessful = func(err error) bool { return err == nil || !failure(err) }
	// A call its caller gave up on says nothing about the dependency.
	gs.IsExcluded = func(err error) bool { return errors.Is(err, context.Canceled) }
	gs.OnStateChange = b.changed
	b.cb = gobreaker.NewCircuitBreaker[struct{}](gs)
	b.instrument()
	return b
}

func (b *Breaker) changed(name string, _, to gobreaker.State) {
	if to == gobreaker.StateOpen {
		b.opened.Add(1)
		b.openedAt.Store(time.Now().UnixNano())
	}
	b.count(to.String())
}

// Name is the dependency's name.
func (b *Breaker) Name() string { return b.name }

// State is "closed", "half-open" or "open".
func (b *Breaker) State() string { return b.cb.State().String() }

// Open reports whether the breaker fails calls fast now.
func (b *Breaker) Open() bool { return b.cb.State() == gobreaker.StateOpen }

// Opened counts how often the breaker has opened.
func (b *Breaker) Opened() int64 { return b.opened.Load() }

// RetryAfter is how long a caller refused by the open breaker should wait:
// what is left of the open period, at least a second.
func (b *Breaker) RetryAfter() time.Duration {
	left := time.Until(time.Unix(0, b.openedAt.Load()).Add(b.settings.OpenTimeout))
	if left < time.Second {
		return time.Second
	}
	return left.Truncate(time.Second)
}

// Do runs call through the breaker: while it is open call does not run and
// Do returns an error wrapping ErrOpen; otherwise it returns call's error,
// counting it as the Options say.
func (b *Breaker) Do(call func() error) error {
	_, err := b.cb.Execute(func() (struct{}, error) { return struct{}{}, call() })
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return fmt.Errorf("%s: %w", b.name, ErrOpen)
	}
	return err
}

// Check is the breaker's health check, "breaker:<name>": not critical (the
// breaker is how the process copes with the dependency's loss, which the
// dependency's own check reports), failing while the breaker is open.
func (b *Breaker) Check() health.Check {
	return health.Check{Name: "breaker:" + b.name, Fn: func(context.Context) (string, error) {
		if b.Open() {
			return b.State(), fmt.Errorf("%s: %w: calls fail fast for up to %s", b.name, ErrOpen, b.settings.OpenTimeout)
		}
		return b.State(), nil
	}}
}
