package breaker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var errDown = errors.New("connection refused")

func calls(b *Breaker, n int, err error) {
	for range n {
		_ = b.Do(func() error { return err })
	}
}

func TestOpensOnceHalfOfTenCallsFailedAndThenFailsFastWithoutCalling(t *testing.T) {
	b := New("dep", Design, Options{})
	calls(b, 5, nil)
	calls(b, 4, errDown)
	require.Equal(t, "closed", b.State(), "9 calls are fewer than the design's 10")
	calls(b, 1, errDown)
	require.True(t, b.Open(), "5 failures of 10 calls")
	ran := false
	err := b.Do(func() error { ran = true; return nil })
	assert.ErrorIs(t, err, ErrOpen)
	assert.False(t, ran)
	assert.Equal(t, int64(1), b.Opened())
}

func TestAnswersAndCancelledCallsDoNotOpenIt(t *testing.T) {
	b := NewRedis("cache", Design)
	calls(b, 20, redis.Nil)
	calls(b, 20, context.Canceled)
	assert.Equal(t, "closed", b.State())
}

func TestHalfOpenClosesAfterThreeGoodProbesAndReopensOnABadOne(t *testing.T) {
	s := Design
	s.OpenTimeout = 10 * time.Millisecond
	b := New("dep", s, Options{})
	calls(b, 10, errDown)
	require.True(t, b.Open())
	require.Eventually(t, func() bool { return b.State() == "half-open" }, 5*time.Second, time.Millisecond)
	calls(b, 1, errDown)
	require.True(t, b.Open(), "a failed probe reopens it")
	require.Eventually(t, func() bool { return b.State() == "half-open" }, 5*time.Second, time.Millisecond)
	calls(b, 2, nil)
	assert.Equal(t, "half-open", b.State(), "two good probes are not enough")
	calls(b, 1, nil)
	assert.Equal(t, "closed", b.State())
}

func TestRedisFailureTellsOutagesFromAnswers(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{redis.Nil, false},
		{fmt.Errorf("get: %w", redis.Nil), false},
		{&net.OpError{Op: "dial", Err: errDown}, true},
		{context.DeadlineExceeded, true},
		{errors.New("redis: client is closed"), true},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, RedisFailure(tc.err), "%v", tc.err)
	}
}

func TestCheckFailsWhileOpen(t *testing.T) {
	b := New("dep", Design, Options{})
	c := b.Check()
	assert.Equal(t, "breaker:dep", c.Name)
	assert.False(t, c.Critical)
	_, err := c.Fn(context.Background())
	require.NoError(t, err)
	calls(b, 10, errDown)
	detail, err := c.Fn(context.Background())
	assert.ErrorIs(t, err, ErrOpen)
	assert.Equal(t, "open", detail)
}
