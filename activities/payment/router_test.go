package payment_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow/activities/payment"
)

// scripted is a provider whose answers the test sets; it counts the calls
// that reached it. The breaker's state machine is what is under test here;
// the failover against real provider processes is tested in e2e.
type scripted struct {
	name  string
	mu    sync.Mutex
	err   error // the answer; nil for success
	calls atomic.Int64
}

func (s *scripted) set(err error) { s.mu.Lock(); s.err = err; s.mu.Unlock() }

func (s *scripted) Name() string { return s.name }
func (s *scripted) answer() error {
	s.calls.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}
func (s *scripted) Charge(context.Context, payment.ChargeRequest) (payment.Charge, error) {
	return payment.Charge{ID: "ch"}, s.answer()
}
func (s *scripted) Refund(context.Context, payment.RefundRequest) (payment.Refund, error) {
	return payment.Refund{ID: "re"}, s.answer()
}
func (s *scripted) FindCharge(context.Context, string) (payment.Charge, bool, error) {
	return payment.Charge{}, false, s.answer()
}

var errFailing = errors.New("provider answered 500")

func settings() payment.BreakerSettings {
	return payment.BreakerSettings{Window: 10 * time.Second, FailureRatio: 0.5, MinRequests: 10,
		OpenTimeout: 300 * time.Millisecond, HalfOpenSuccesses: 3}
}

func TestBreakerOpensAtHalfFailuresOnceTheWindowHoldsTheMinimum(t *testing.T) {
	cases := []struct {
		name            string
		successes, fail int
		wantOpen        bool
	}{
		{name: "9 failures are below the minimum count", fail: 9, wantOpen: false},
		{name: "10 failures of 10 open it", fail: 10, wantOpen: true},
		{name: "4 failures of 10 keep it closed", successes: 6, fail: 4, wantOpen: false},
		{name: "5 failures of 10 open it", successes: 5, fail: 5, wantOpen: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := &scripted{name: "a"}
			g := payment.NewRouter(settings(), p).Providers()[0]
			for range tc.successes {
				_, err := g.Charge(context.Background(), payment.ChargeRequest{})
				require.NoError(t, err)
			}
			p.set(errFailing)
			for range tc.fail {
				_, _ = g.Charge(context.Background(), payment.ChargeRequest{})
			}
			assert.Equal(t, tc.wantOpen, !g.Available(), "state %s", g.State())
		})
	}
}

func TestOpenBreakerFailsFastAsNotSentThenClosesAfterThreeTrialSuccesses(t *testing.T) {
	p := &scripted{name: "a"}
	p.set(errFailing)
	g := payment.NewRouter(settings(), p).Providers()[0]
	for range 10 {
		_, _ = g.Charge(context.Background(), payment.ChargeRequest{})
	}
	require.Equal(t, "open", g.State())
	require.EqualValues(t, 1, g.Opened())

	before := p.calls.Load()
	_, err := g.Charge(context.Background(), payment.ChargeRequest{})
	require.ErrorIs(t, err, payment.ErrNotSent, "an open breaker sends nothing")
	assert.Equal(t, before, p.calls.Load())

	time.Sleep(350 * time.Millisecond) // past OpenTimeout
	p.set(nil)
	assert.Equal(t, "half-open", g.State())
	for i := range 3 {
		_, err := g.Charge(context.Background(), payment.ChargeRequest{})
		require.NoError(t, err, "trial %d", i+1)
	}
	assert.Equal(t, "closed", g.State())
}

func TestAFailedTrialReopensTheBreaker(t *testing.T) {
	p := &scripted{name: "a"}
	p.set(errFailing)
	g := payment.NewRouter(settings(), p).Providers()[0]
	for range 10 {
		_, _ = g.Charge(context.Background(), payment.ChargeRequest{})
	}
	time.Sleep(350 * time.Millisecond)
	_, err := g.Charge(context.Background(), payment.ChargeRequest{})
	require.ErrorIs(t, err, errFailing)
	assert.Equal(t, "open", g.State())
	assert.EqualValues(t, 2, g.Opened())
}

func TestDeclinesAndCallerCancellationsDoNotOpenTheBreaker(t *testing.T) {
	p := &scripted{name: "a"}
	p.set(&payment.DeclinedError{Code: "card_declined"})
	g := payment.NewRouter(settings(), p).Providers()[0]
	for range 20 {
		_, _ = g.Charge(context.Background(), payment.ChargeRequest{})
	}
	assert.Equal(t, "closed", g.State(), "a decline is the provider working")
	p.set(context.Canceled)
	for range 20 {
		_, _ = g.Charge(context.Background(), payment.ChargeRequest{})
	}
	assert.Equal(t, "closed", g.State(), "a call the caller gave up on says nothing about the provider")
}

func TestRouterListsAvailableProvidersInFailoverOrder(t *testing.T) {
	a, b := &scripted{name: "a"}, &scripted{name: "b"}
	r := payment.NewRouter(settings(), a, b)
	names := func() []string {
		var out []string
		for _, g := range r.Available() {
			out = append(out, g.Name())
		}
		return out
	}
	assert.Equal(t, []string{"a", "b"}, names())
	a.set(errFailing)
	ga, _ := r.Get("a")
	for range 10 {
		_, _ = ga.Charge(context.Background(), payment.ChargeRequest{})
	}
	assert.Equal(t, []string{"b"}, names(), "an open breaker takes its provider out of the list")
}
func (s *scripted) Authorize(context.Context, payment.ChargeRequest) (payment.Charge, error) {
	return payment.Charge{ID: "pi"}, s.answer()
}
func (s *scripted) Capture(context.Context, payment.CaptureRequest) (payment.Capture, error) {
	return payment.Capture{ID: "cp"}, s.answer()
}
func (s *scripted) Void(context.Context, payment.VoidRequest) error { return s.answer() }
