package admission

import (
	"context"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeClock moves only when the test says so; Advance runs the timers due.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !t.stopped
		t.stopped = true
		return was
	}
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*fakeTimer
	keep := c.timers[:0]
	for _, t := range c.timers {
		switch {
		case t.stopped:
		case !t.at.After(c.now):
			t.stopped = true
			due = append(due, t)
		default:
			keep = append(keep, t)
		}
	}
	c.timers = keep
	c.mu.Unlock()
	sort.Slice(due, func(i, j int) bool { return due[i].at.Before(due[j].at) })
	for _, t := range due {
		t.f()
	}
}

// run admits n requests at once, lets each take rtt and releases them.
func run(t *testing.T, l *Limiter, c *fakeClock, n int, rtt time.Duration) {
	t.Helper()
	tickets := make([]*Ticket, 0, n)
	for range n {
		tk, err := l.Acquire(context.Background(), Normal)
		if err != nil {
			break
		}
		tickets = append(tickets, tk)
	}
	require.NotEmpty(t, tickets)
	c.Advance(rtt)
	for _, tk := range tickets {
		tk.Release()
	}
}

func TestLimitGrowsWhileLatencyHoldsUnderFullLoad(t *testing.T) {
	c := newFakeClock()
	l := NewWithClock(Config{InitialLimit: 10, MaxLimit: 200, Window: 10}, c)
	for range 50 {
		run(t, l, c, l.Stats().Limit, 20*time.Millisecond)
	}
	assert.Greater(t, l.Stats().Limit, 50, "steady latency at full use must raise the limit")
}

func TestLimitDoesNotGrowWhenMostSlotsStayIdle(t *testing.T) {
	c := newFakeClock()
	l := NewWithClock(Config{InitialLimit: 40, Window: 10}, c)
	for range 50 {
		for range 10 {
			run(t, l, c, 1, 20*time.Millisecond)
		}
	}
	assert.Equal(t, 40, l.Stats().Limit, "one request at a time measures nothing about 40 slots")
}

func TestLimitShrinksWhenLatencyRises(t *testing.T) {
	c := newFakeClock()
	l := NewWithClock(Config{InitialLimit: 10, MaxLimit: 200, Window: 10}, c)
	for range 30 {
		run(t, l, c, l.Stats().Limit, 20*time.Millisecond)
	}
	grown := l.Stats().Limit
	for range 30 {
		run(t, l, c, l.Stats().Limit, 400*time.Millisecond)
	}
	shrunk := l.Stats().Limit
	assert.Less(t, shrunk, grown/2, "latency 20x the long-term average must cut the limit")
	assert.GreaterOrEqual(t, shrunk, 4, "never below MinLimit")
}

func TestRequestOverTheLimitWaitsItsBudgetThenIsRefused(t *testing.T) {
	c := newFakeClock()
	l := NewWithClock(Config{InitialLimit: 4, MinLimit: 4, QueueWait: 50 * time.Millisecond}, c)
	for range 4 {
		_, err := l.Acquire(context.Background(), Normal)
		require.NoError(t, err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := l.Acquire(context.Background(), Normal)
		errc <- err
	}()
	require.Eventually(t, func() bool { return l.Stats().Queued == 1 }, 5*time.Second, time.Millisecond)
	c.Advance(49 * time.Millisecond)
	select {
	case err := <-errc:
		t.Fatalf("refused before its budget ran out: %v", err)
	default:
	}
	c.Advance(time.Millisecond)
	assert.ErrorIs(t, <-errc, ErrWaitExceeded)
	assert.Equal(t, 0, l.Stats().Queued)
}

func TestRequestIsRefusedAtOnceWhenItsEstimatedWaitIsOverBudget(t *testing.T) {
	c := newFakeClock()
	l := NewWithClock(Config{InitialLimit: 4, MinLimit: 4, MaxLimit: 4, Window: 4, QueueWait: 50 * time.Millisecond}, c)
	// One window at 100 ms: a slot frees every 25 ms, so the third waiter
	// would wait 75 ms.
	run(t, l, c, 4, 100*time.Millisecond)
	held := make([]*Ticket, 0, 4)
	for range 4 {
		tk, err := l.Acquire(context.Background(), Normal)
		require.NoError(t, err)
		held = append(held, tk)
	}
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = l.Acquire(context.Background(), Normal) }()
		require.Eventually(t, func() bool { return l.Stats().Queued == i+1 }, 5*time.Second, time.Millisecond)
	}
	// A caller that cannot wait at all still learns it was refused for the
	// queue, not that it gave up: the refusal comes before any wait.
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := l.Acquire(gone, Normal)
	assert.ErrorIs(t, err, ErrQueueFull)
	c.Advance(time.Second)
	wg.Wait()
	for _, tk := range held {
		tk.Release()
	}
}

func TestWaitingCancelGetsTheFreedSlotBeforeEarlierPlacements(t *testing.T) {
	c := newFakeClock()
	l := NewWithClock(Config{InitialLimit: 4, MinLimit: 4, MaxLimit: 4, QueueWait: time.Second}, c)
	held := make([]*Ticket, 0, 4)
	for range 4 {
		tk, err := l.Acquire(context.Background(), Normal)
		require.NoError(t, err)
		held = append(held, tk)
	}
	order := make(chan Priority, 2)
	for i, p := range []Priority{Normal, High} {
		go func() {
			tk, err := l.Acquire(context.Background(), p)
			if err == nil {
				order <- p
				_ = tk
			}
		}()
		require.Eventually(t, func() bool { return l.Stats().Queued == i+1 }, 5*time.Second, time.Millisecond)
	}
	held[0].Release()
	assert.Equal(t, High, <-order, "the cancel, queued second, goes first")
	held[1].Release()
	assert.Equal(t, Normal, <-order)
}

func TestCallerLeavingTheQueueGivesUpItsPlace(t *testing.T) {
	c := newFakeClock()
	l := NewWithClock(Config{InitialLimit: 4, MinLimit: 4, MaxLimit: 4, QueueWait: time.Second}, c)
	for range 4 {
		_, err := l.Acquire(context.Background(), Normal)
		require.NoError(t, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := l.Acquire(ctx, Normal); errc <- err }()
	require.Eventually(t, func() bool { return l.Stats().Queued == 1 }, 5*time.Second, time.Millisecond)
	cancel()
	assert.True(t, errors.Is(<-errc, context.Canceled))
	assert.Equal(t, Stats{Limit: 4, InFlight: 4, Queued: 0}, l.Stats())
}

// Under a lasting overload, refused clients told to come back in a second
// return in a flood that earns them more refusals: Retry-After covers the
// time the admission rate takes to serve the clients refused in the last
// second, and falls back once a second passes without refusals.
func TestRetryAfterCoversTheClientsRefusedInTheLastSecond(t *testing.T) {
	c := newFakeClock()
	l := NewWithClock(Config{InitialLimit: 4, MinLimit: 4, MaxLimit: 4, Window: 4, QueueWait: 10 * time.Millisecond}, c)
	run(t, l, c, 4, 100*time.Millisecond) // a measured latency: a full limit is refused at once
	c.Advance(time.Second)

	var held []*Ticket
	for range 4 {
		tk, err := l.Acquire(context.Background(), Normal)
		require.NoError(t, err)
		held = append(held, tk)
	}
	for range 20 {
		_, err := l.Acquire(context.Background(), Normal)
		require.ErrorIs(t, err, ErrQueueFull)
	}
	assert.Equal(t, time.Second, l.RetryAfter(), "within the second: the drain of the 4 in flight, at least 1 s")
	c.Advance(time.Second)
	assert.Equal(t, 5*time.Second, l.RetryAfter(), "20 refused for 4 admitted: 5 s of admissions")
	for _, tk := range held {
		tk.Release()
	}
	c.Advance(time.Second)
	assert.Equal(t, time.Second, l.RetryAfter(), "a second without refusals: nothing waits")
}
