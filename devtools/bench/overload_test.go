package bench

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow"
)

// Vegeta's results become offers as the bench's own clients record them: a
// 202 accepted with its order id, a 503 refused, with or without the
// Retry-After the check requires.
func TestVegetaResultsCountRefusalsWithoutRetryAfter(t *testing.T) {
	at := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
	ok := vegetaOffer(http.StatusAccepted, at, 20*time.Millisecond, []byte(`{"order_id":"o-1","status":"PENDING"}`), nil)
	assert.Equal(t, "o-1", ok.s.id)
	assert.Equal(t, at.Add(20*time.Millisecond), ok.s.accepted)
	assert.False(t, ok.refused)

	withRA := vegetaOffer(http.StatusServiceUnavailable, at, 2*time.Millisecond, nil, http.Header{"Retry-After": {"1"}})
	assert.True(t, withRA.refused)
	assert.Equal(t, 0, withRA.noRA)

	without := vegetaOffer(http.StatusServiceUnavailable, at, 2*time.Millisecond, nil, http.Header{})
	assert.True(t, without.refused)
	assert.Equal(t, 1, without.noRA)

	garbled := vegetaOffer(http.StatusAccepted, at, time.Millisecond, []byte(`<html>`), nil)
	assert.Empty(t, garbled.s.id)
	assert.Equal(t, "bad_response", garbled.s.errKind)

	st := OverloadStep{Generator: Vegeta, Errors: map[string]int{}}
	st.summarise([]*offer{ok, withRA, without, garbled}, nil, at.Add(time.Second), OverloadConfig{Capacity: 10, Step: time.Second})
	assert.Equal(t, 1, st.Accepted)
	assert.Equal(t, 2, st.Refused)
	assert.Equal(t, 1, st.WithoutRetryAfter)
	assert.Equal(t, map[string]int{"bad_response": 1}, st.Errors)
	assert.False(t, st.Holds(), "a refusal without Retry-After fails the step")
}

// Goodput counts the orders that reached their outcome inside the step;
// what ends while the backlog drains counts toward the drain time instead.
func TestGoodputCountsOutcomesInsideTheStepOnly(t *testing.T) {
	start := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
	end := start.Add(10 * time.Second)
	mk := func(id string, done time.Duration) *offer {
		s := &sample{sent: start, accepted: start.Add(10 * time.Millisecond), id: id}
		if done > 0 {
			s.done = start.Add(done)
		}
		return &offer{s: s, accept: 10 * time.Millisecond, attempts: 1, ids: map[string]bool{id: true}}
	}
	offers := []*offer{mk("a", 2*time.Second), mk("b", 9*time.Second), mk("c", 13*time.Second)}
	statuses := map[string]string{"a": orderflow.StatusConfirmed, "b": orderflow.StatusFailed, "c": orderflow.StatusConfirmed}
	st := OverloadStep{Generator: GiveUp, Errors: map[string]int{}}
	st.summarise(offers, statuses, end, OverloadConfig{Capacity: 0.4, Step: 10 * time.Second})
	assert.InDelta(t, 0.2, st.Goodput, 1e-9, "a and b ended inside the step")
	assert.InDelta(t, 0.1, st.ConfirmedPerSec, 1e-9, "only a of those was confirmed")
	assert.InDelta(t, 0.5, st.GoodputShare, 1e-9)
	assert.InDelta(t, 3, st.DrainSeconds, 1e-9, "c ended 3 s after the step")
	assert.True(t, st.Holds())
}

func TestOverloadConfigKeepsAnEmptyListOfMultiples(t *testing.T) {
	oc := OverloadConfig{Factors: []float64{3}, RetryFactors: []float64{}}.withDefaults()
	require.Equal(t, []float64{3}, oc.Factors)
	assert.Empty(t, oc.RetryFactors, "an empty list means no retrying clients, not the default")
	assert.Equal(t, 30*time.Second, oc.Step)
}
