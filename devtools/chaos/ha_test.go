package chaos

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)

// at is an attempt of key sent s seconds after t0, answered d seconds later.
func at(key string, s, d float64, status int) attempt {
	start := t0.Add(time.Duration(s * float64(time.Second)))
	return attempt{key: key, start: start, end: start.Add(time.Duration(d * float64(time.Second))), status: status}
}

func TestRecoveryIsZeroWhenNoPlacementFailedWhileTheHostWasLost(t *testing.T) {
	attempts := []attempt{at("a", -1, 0.1, 202), at("b", 0.5, 0.1, 202), at("c", 3, 0.1, 202),
		at("d", -0.5, 1, 0),   // failed, but sent before the fault
		at("e", 30, 0.1, 503)} // failed, but sent after the heal
	first, last, lastFail, failed, keys, never := recovery(attempts, t0, t0.Add(20*time.Second))
	assert.Equal(t, []float64{0, 0, 0}, []float64{first, last, lastFail})
	assert.Equal(t, []int{0, 0, 0}, []int{failed, keys, never})
}

func TestRecoveryMeasuresTheFirstAnswerAfterTheFirstFailureAndTheLastFailedOrdersAnswer(t *testing.T) {
	attempts := []attempt{
		at("slow", 0.1, 4, 202), // sent before the first failure: not a sign of recovery
		at("a", 0.2, 3, 0),      // no answer (ends 3.2)
		at("b", 1, 0.5, 503),    // 1.5
		at("b", 2, 0.5, 503),    // 2.5
		at("c", 6, 0.1, 202),    // first answered after the first failure: 6.1
		at("b", 7, 0.2, 202),    // b answered at 7.2
		at("a", 9, 1, 202),      // a answered at 10, the last
		at("b", 12, 0.1, 202),   // b's re-send: not its first answer after failing
	}
	first, last, lastFail, failed, keys, never := recovery(attempts, t0, t0.Add(20*time.Second))
	assert.InDelta(t, 6.1, first, 1e-9)
	assert.InDelta(t, 10, last, 1e-9)
	assert.InDelta(t, 3.2, lastFail, 1e-9)
	assert.Equal(t, []int{3, 2, 0}, []int{failed, keys, never})
}

func TestARefusalIsAnAnswerButA429IsNot(t *testing.T) {
	attempts := []attempt{at("a", 1, 0.1, 503), at("a", 2, 0.1, 429), at("a", 4, 0.1, 422)}
	first, last, _, _, _, never := recovery(attempts, t0, t0.Add(20*time.Second))
	assert.InDelta(t, 4.1, first, 1e-9)
	assert.InDelta(t, 4.1, last, 1e-9)
	assert.Zero(t, never)
}

func TestAnOrderNeverAnsweredAfterFailingIsCountedAndLastIsNeverWhenNoneWas(t *testing.T) {
	attempts := []attempt{at("a", 1, 0.1, 503), at("b", 1, 0.1, 0), at("b", 3, 0.1, 202)}
	_, last, _, _, keys, never := recovery(attempts, t0, t0.Add(20*time.Second))
	assert.Equal(t, []int{2, 1}, []int{keys, never})
	assert.InDelta(t, 3.1, last, 1e-9)

	first, last, _, _, _, never := recovery([]attempt{at("a", 1, 0.1, 503)}, t0, t0.Add(20*time.Second))
	assert.Equal(t, []float64{-1, -1}, []float64{first, last})
	assert.Equal(t, 1, never)
}

func TestSteadyWantsASuccessAfterTheLastFailureAndSettleWithoutFailures(t *testing.T) {
	rec := &placementLog{}
	settle := 5 * time.Second
	assert.False(t, rec.steady(t0, t0.Add(time.Minute), settle), "nothing sent: nothing says service is back")
	rec.attempts = []attempt{at("a", 1, 0.1, 202)}
	assert.False(t, rec.steady(t0, t0.Add(3*time.Second), settle), "a success, but settle has not passed since the fault")
	assert.True(t, rec.steady(t0, t0.Add(6*time.Second), settle))
	rec.attempts = append(rec.attempts, at("b", 8, 1, 503), at("c", 9.5, 0.1, 202))
	assert.False(t, rec.steady(t0, t0.Add(12*time.Second), settle), "a failure 3 s ago")
	assert.True(t, rec.steady(t0, t0.Add(14500*time.Millisecond), settle))
	rec.attempts = append(rec.attempts, at("d", 15, 0.5, 0))
	assert.False(t, rec.steady(t0, t0.Add(25*time.Second), settle), "no success since the last failure")
	assert.False(t, rec.steady(t0.Add(16*time.Second), t0.Add(25*time.Second), settle),
		"only what was sent since counts: nothing answered since")
}

func TestTheRecorderKeepsEveryPlacementWithItsKeyAndStatusAndNothingElse(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Idempotency-Key") == "bad" {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	rec := &placementLog{next: http.DefaultTransport}
	c := &http.Client{Transport: rec}
	for _, k := range []string{"good", "bad"} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/orders", nil)
		req.Header.Set("Idempotency-Key", k)
		res, err := c.Do(req)
		require.NoError(t, err)
		_ = res.Body.Close()
	}
	res, err := c.Get(srv.URL + "/v1/orders/x")
	require.NoError(t, err)
	_ = res.Body.Close()
	srv.Close()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/orders", nil)
	req.Header.Set("Idempotency-Key", "gone")
	_, err = c.Do(req)
	require.Error(t, err)

	got := rec.snapshot()
	require.Len(t, got, 3)
	assert.Equal(t, []string{"good", "bad", "gone"}, []string{got[0].key, got[1].key, got[2].key})
	assert.Equal(t, []int{202, 503, 0}, []int{got[0].status, got[1].status, got[2].status})
	assert.True(t, got[1].failed() && got[2].failed() && got[0].answered())
}

func TestSummarizeComparesTheWorstLastRecoveryWithTheObjective(t *testing.T) {
	f := func(kind, mode string, last *float64) HAFault {
		return HAFault{Kind: kind, Mode: mode, RTOLast: last, RTOFirst: last}
	}
	v := func(x float64) *float64 { return &x }
	tiers := []Tier{{Kind: "pg_primary", Objective: 30 * time.Second}, {Kind: "gateway"}, {Kind: "redis_master", Objective: 15 * time.Second}}
	kinds := summarize(tiers, []HAFault{f("pg_primary", ModeKill, v(12)), f("pg_primary", ModeCut, v(31)), f("pg_primary", ModeKill, v(20)),
		f("gateway", ModeKill, v(0)), f("gateway", ModeCut, v(0)),
		f("redis_master", ModeKill, v(5)), f("redis_master", ModeCut, nil)})
	require.Len(t, kinds, 3)
	assert.Equal(t, HAKind{Kind: "pg_primary", Times: 3, Kills: 2, Cuts: 1, RTOFirstMax: 31, RTOLastMed: 20, RTOLastMax: 31, Objective: 30}, kinds[0])
	assert.True(t, kinds[1].Met, "a gateway lost without a failed placement meets 0")
	assert.False(t, kinds[2].Met, "a loss never recovered misses the objective")
}
