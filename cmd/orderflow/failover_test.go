package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
)

func TestSinceIsADurationBackOrATime(t *testing.T) {
	now := time.Date(2026, 12, 7, 7, 0, 0, 0, time.UTC)
	got, err := parseSince("15m", now, time.Hour)
	require.NoError(t, err)
	assert.Equal(t, now.Add(-15*time.Minute), got)
	got, err = parseSince("", now, time.Hour)
	require.NoError(t, err)
	assert.Equal(t, now.Add(-time.Hour), got, "the window by default")
	got, err = parseSince("2026-12-07T06:30:00Z", now, time.Hour)
	require.NoError(t, err)
	assert.Equal(t, now.Add(-30*time.Minute), got)
	for _, bad := range []string{"-5m", "yesterday", "0s"} {
		_, err = parseSince(bad, now, time.Hour)
		assert.Error(t, err, bad)
	}
}

func TestFailoverRefusesAnUnknownRegionAndMissingDatabases(t *testing.T) {
	var out bytes.Buffer
	err := runFailover(context.Background(), &out, envOf(map[string]string{"ORDERFLOW_REGIONS": "east,west"}), []string{"--region", "mars"})
	assert.ErrorContains(t, err, "not one of ORDERFLOW_REGIONS")
	err = runFailover(context.Background(), &out, envOf(map[string]string{"ORDERFLOW_REGIONS": "east,west"}), []string{"--region", "east"})
	assert.ErrorContains(t, err, "_DATABASE_URL is not set")
	err = runFailover(context.Background(), &out, noEnv, nil)
	assert.ErrorContains(t, err, "usage")
	assert.Empty(t, out.String(), "nothing was done, so no record")
}

// --watch fails over after 3 failed polls within 3 intervals; polls that
// succeed in between push the older failures out of the window.
func TestWatchDetectsThreeFailuresWithinTheWindow(t *testing.T) {
	var n atomic.Int64
	// Fails, succeeds three times (so the first failure leaves the window),
	// then fails for good.
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if i := n.Add(1); i >= 2 && i <= 4 {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer hs.Close()
	d, err := watchRegion(context.Background(), hs.URL, 200*time.Millisecond, zaptest.NewLogger(t))
	require.NoError(t, err)
	require.Len(t, d.Failures, 3)
	assert.GreaterOrEqual(t, n.Load(), int64(7), "the early failure did not count with the later ones")
	assert.False(t, d.DetectedAt.Before(d.FirstFailure))
}
