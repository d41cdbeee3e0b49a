package fulfillment_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow/activities/fulfillment"
	"github.com/orderflow/orderflow/internal/breaker"
)

// A carrier answering 5xx opens its breaker once half the window's calls
// failed; then calls fail at once without reaching it. Its ordinary answers
// (a withdrawal of a shipment it does not know: 404) count as successes.
func TestCarrierBreakerOpensOnServerErrorsOnly(t *testing.T) {
	var calls atomic.Int64
	var status atomic.Int64
	status.Store(http.StatusNotFound)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	b := breaker.New("carrier", breaker.Settings{}, breaker.Options{})
	c := &fulfillment.Carrier{URL: srv.URL, Breaker: b}
	ctx := context.Background()

	for range 20 {
		require.NoError(t, c.Withdraw(ctx, "s-unknown"), "404: nothing to withdraw")
	}
	assert.False(t, b.Open(), "answers are not failures")

	status.Store(http.StatusServiceUnavailable)
	calls.Store(0)
	var err error
	for range 25 {
		err = c.Withdraw(ctx, "s-1")
		assert.Error(t, err)
	}
	assert.True(t, b.Open(), "breaker state %s", b.State())
	// The window holds the 20 answers: the 20th failure makes half.
	assert.EqualValues(t, 20, calls.Load(), "calls past the 20th failed fast")
	assert.True(t, errors.Is(err, breaker.ErrOpen), "%v", err)
}
