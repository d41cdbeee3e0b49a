// Package admission is the gateway's adaptive admission control: a limit on
// requests in flight that follows their measured latency (the Gradient2
// algorithm of Netflix's concurrency-limits), and a short queue in front of
// it with a wait budget, so that past capacity a request that cannot start
// within its budget is refused at once instead of queueing for seconds.
//
// Gradient2 keeps a long-term average of the latency (the service's latency
// when not overloaded) and compares each window's average with it: while
// latency stays near the long-term average the limit grows by about its
// square root per window; when latency rises (requests queue inside the
// service) the limit shrinks in proportion, never below half per window.
// The limit does not grow while fewer than half its slots are used, so a
// quiet period does not leave a limit nobody has measured.
//
// Requests have a priority: waiting high-priority requests (cancels) get a
// freed slot before normal ones (new placements), and a normal request is
// refused once the high-priority ones ahead of it would take its budget.
package admission

import (
	"container/list"
	"context"
	"errors"
	"math"
	"sync"
	"time"
)

// Priority orders waiting requests.
type Priority int

// Priorities, lowest first.
const (
	// Normal is new work: placing an order.
	Normal Priority = iota
	// High is work that frees capacity or keeps a promise: cancelling.
	High
	priorities
)

// Config sets the limiter; a zero field takes its default.
type Config struct {
	// InitialLimit is the limit before any measurement (default 20).
	InitialLimit int
	// MinLimit and MaxLimit bound the limit (defaults 4 and 1000).
	MinLimit, MaxLimit int
	// QueueWait is the longest a request waits for a slot (default 5 ms).
	// A request whose estimated wait is longer is refused at once.
	QueueWait time.Duration
	// Window is how many samples make one latency measurement (default 10).
	Window int
	// LongWindow is the span, in measurements, of the long-term latency
	// average (default 600).
	LongWindow int
	// Tolerance is how far above the long-term latency a measurement may be
	// before the limit shrinks (default 1.5).
	Tolerance float64
	// Smoothing weighs a new limit against the previous one (default 0.2).
	Smoothing float64
}

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.InitialLimit, 20)
	def(&c.MinLimit, 4)
	def(&c.MaxLimit, 1000)
	def(&c.Window, 10)
	def(&c.LongWindow, 600)
	if c.QueueWait <= 0 {
		c.QueueWait = 5 * time.Millisecond
	}
	if c.Tolerance <= 0 {
		c.Tolerance = 1.5
	}
	if c.Smoothing <= 0 || c.Smoothing > 1 {
		c.Smoothing = 0.2
	}
	c.InitialLimit = min(max(c.InitialLimit, c.MinLimit), c.MaxLimit)
	return c
}

// Clock is the limiter's time: the real one in the gateway, a fake one in
// tests.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f after d; stop cancels it, reporting whether it did.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

// Reasons a request is refused.
var (
	// ErrQueueFull: the estimated wait for a slot is over the budget.
	ErrQueueFull = errors.New("admission: no slot within the wait budget")
	// ErrWaitExceeded: the request waited its whole budget for a slot.
	ErrWaitExceeded = errors.New("admission: waited the budget for a slot")
)

// Stats is a snapshot of the limiter.
type Stats struct {
	Limit    int
	InFlight int
	Queued   int
}

// Limiter admits requests up to an adaptive limit.
type Limiter struct {
	cfg   Config
	clock Clock

	mu       sync.Mutex
	limit    float64
	inFlight int
	queues   [priorities]*list.List // of *waiter, oldest first

	// The current window's samples.
	winSum         time.Duration
	winN           int
	winMaxInFlight int
	// shortRTT is the last window's average; longRTT the long-term one
	// (nanoseconds), averaged over longN measurements while warming up.
	shortRTT time.Duration
	longRTT  float64
	longN    int

	// Admissions and refusals of the current second, and the last full
	// second's ratio of refusals to admissions (RetryAfter).
	rateStart         time.Time
	admitted, refused int
	backlogSeconds    float64
}

type waiter struct {
	ready    chan struct{}
	granted  bool
	enqueued time.Time
	grantAt  time.Time
	stop     func() bool
	elem     *list.Element
	prio     Priority
}

// New returns a limiter on the real clock.
func New(cfg Config) *Limiter { return NewWithClock(cfg, realClock{}) }

// NewWithClock returns a limiter on the given clock.
func NewWithClock(cfg Config, clock Clock) *Limiter {
	cfg = cfg.withDefaults()
	l := &Limiter{cfg: cfg, clock: clock, limit: float64(cfg.InitialLimit)}
	for i := range l.queues {
		l.queues[i] = list.New()
	}
	return l
}

// Stats returns the limit, the requests in flight and those waiting.
func (l *Limiter) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Stats{Limit: int(l.limit), InFlight: l.inFlight, Queued: l.queued(High) + l.queued(Normal)}
}

// queued counts the waiters at priority p.
func (l *Limiter) queued(p Priority) int { return l.queues[p].Len() }

// ahead counts the waiters that would be served before a new one at p.
func (l *Limiter) ahead(p Priority) int {
	n := 0
	for q := p; q < priorities; q++ {
		n += l.queued(q)
	}
	return n
}

// Ticket is an admitted request's slot. Release it exactly once.
type Ticket struct {
	l     *Limiter
	start time.Time
	// Waited is how long the request waited for its slot.
	Waited time.Duration
}

// Acquire returns a slot for a request of priority p: at once while the
// limit has room and nobody of p's priority or higher waits, else after
// waiting at most QueueWait. It returns ErrQueueFull at once when the
// estimated wait is over QueueWait, ErrWaitExceeded when the wait ran out,
// and ctx's error when ctx ended first.
func (l *Limiter) Acquire(ctx context.Context, p Priority) (*Ticket, error) {
	l.mu.Lock()
	now := l.clock.Now()
	l.roll(now)
	if float64(l.inFlight) < math.Floor(l.limit) && l.ahead(p) == 0 {
		t := l.admit(now, 0)
		l.mu.Unlock()
		return t, nil
	}
	// Slots free at about limit per short RTT; the waiters ahead take the
	// first of them.
	if est := time.Duration(float64(l.ahead(p)+1) * float64(l.shortRTT) / math.Max(l.limit, 1)); est > l.cfg.QueueWait {
		l.refused++
		l.mu.Unlock()
		return nil, ErrQueueFull
	}
	w := &waiter{ready: make(chan struct{}), enqueued: now, prio: p}
	w.elem = l.queues[p].PushBack(w)
	w.stop = l.clock.AfterFunc(l.cfg.QueueWait, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if !w.granted && w.elem != nil {
			l.queues[w.prio].Remove(w.elem)
			w.elem = nil
			close(w.ready)
		}
	})
	l.mu.Unlock()

	select {
	case <-w.ready:
	case <-ctx.Done():
		l.mu.Lock()
		if w.elem != nil {
			l.queues[p].Remove(w.elem)
			w.elem = nil
			close(w.ready)
		}
		granted := w.granted
		l.mu.Unlock()
		w.stop()
		if granted {
			// The slot came as the caller left: hand it on unmeasured.
			l.mu.Lock()
			l.inFlight--
			l.grant()
			l.mu.Unlock()
		}
		return nil, ctx.Err()
	}
	if !w.granted {
		l.mu.Lock()
		l.refused++
		l.mu.Unlock()
		return nil, ErrWaitExceeded
	}
	w.stop()
	return &Ticket{l: l, start: w.grantAt, Waited: w.grantAt.Sub(w.enqueued)}, nil
}

// admit takes a slot; l.mu is held.
func (l *Limiter) admit(now time.Time, waited time.Duration) *Ticket {
	l.admitted++
	l.inFlight++
	l.winMaxInFlight = max(l.winMaxInFlight, l.inFlight)
	return &Ticket{l: l, start: now, Waited: waited}
}

// grant hands free slots to waiters, highest priority first; l.mu is held.
func (l *Limiter) grant() {
	for float64(l.inFlight) < math.Floor(l.limit) {
		var w *waiter
		for p := priorities - 1; p >= 0 && w == nil; p-- {
			if e := l.queues[p].Front(); e != nil {
				w = l.queues[p].Remove(e).(*waiter)
			}
		}
		if w == nil {
			return
		}
		w.elem = nil
		w.granted = true
		w.grantAt = l.clock.Now()
		l.admitted++
		l.inFlight++
		l.winMaxInFlight = max(l.winMaxInFlight, l.inFlight)
		close(w.ready)
	}
}

// Release frees the slot and records how long the request took (from when it
// got its slot), which moves the limit. A request that failed because of
// overload (a timeout) should still be released with Release: its long
// latency is what shrinks the limit.
func (t *Ticket) Release() {
	l := t.l
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inFlight--
	l.sample(l.clock.Now().Sub(t.start))
	l.grant()
}

// sample adds one latency to the window and, when the window is full,
// updates the limit (Gradient2); l.mu is held.
func (l *Limiter) sample(rtt time.Duration) {
	l.winSum += rtt
	l.winN++
	if l.winN < l.cfg.Window {
		return
	}
	short := l.winSum / time.Duration(l.winN)
	maxInFlight := l.winMaxInFlight
	l.winSum, l.winN, l.winMaxInFlight = 0, 0, l.inFlight
	if short <= 0 {
		short = 1
	}
	l.shortRTT = short
	s := float64(short)
	// The long-term average: a plain mean while warming up, then an
	// exponential one over LongWindow measurements.
	if l.longN < 10 {
		l.longN++
		l.longRTT += (s - l.longRTT) / float64(l.longN)
	} else {
		f := 2 / float64(l.cfg.LongWindow+1)
		l.longRTT = l.longRTT*(1-f) + s*f
	}
	// After a lasting drop in latency the long-term average would lag for
	// minutes; pull it down faster.
	if l.longRTT/s > 2 {
		l.longRTT *= 0.95
	}
	// Application-limited: fewer than half the slots were used, so the
	// measurement says nothing about a larger limit.
	if float64(maxInFlight) < l.limit/2 {
		return
	}
	gradient := math.Max(0.5, math.Min(1, l.cfg.Tolerance*l.longRTT/s))
	next := l.limit*gradient + math.Sqrt(l.limit)
	next = l.limit*(1-l.cfg.Smoothing) + next*l.cfg.Smoothing
	l.limit = math.Max(float64(l.cfg.MinLimit), math.Min(float64(l.cfg.MaxLimit), next))
}

// roll closes the second of admissions and refusals that began at
// rateStart once now is past it; l.mu is held.
func (l *Limiter) roll(now time.Time) {
	if l.rateStart.IsZero() {
		l.rateStart = now
		return
	}
	if el := now.Sub(l.rateStart); el >= time.Second {
		// Refused per admitted: the seconds the admission rate of that
		// second takes to serve the clients it refused. A second with
		// none of either (or one long past) says nothing is waiting.
		l.backlogSeconds = 0
		if el < 2*time.Second && l.refused > 0 {
			l.backlogSeconds = float64(l.refused) / float64(max(l.admitted, 1))
		}
		l.rateStart, l.admitted, l.refused = now, 0, 0
	}
}

// maxRetryAfter bounds RetryAfter: a client told to wait longer would
// rather go elsewhere.
const maxRetryAfter = 30 * time.Second

// RetryAfter suggests how long a refused request should wait before trying
// again: the longer of the time the requests in flight and waiting take to
// drain at the measured latency, and the time the last second's admission
// rate takes to serve the clients that second refused (so that under a
// lasting overload the refused clients, told to come back at once, do not
// return in a flood that only earns them more refusals); at least a second,
// at most 30.
func (l *Limiter) RetryAfter() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll(l.clock.Now())
	d := time.Duration(float64(l.inFlight+l.ahead(Normal)) * float64(l.shortRTT) / math.Max(l.limit, 1))
	d = max(d, time.Duration(l.backlogSeconds*float64(time.Second)))
	return min(max(d, time.Second), maxRetryAfter).Round(time.Second)
}
