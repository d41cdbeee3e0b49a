// Package health runs orderflow's health checks: named checks run
// concurrently within a budget, reported as JSON by an HTTP handler that
// answers 200 while every critical check passes and 503 otherwise.
//
// Adding a check is one call, e.g. a payment breaker's state:
//
//	checker.Add(health.Check{Name: "payment:paysim-a", Critical: false, Fn: func(ctx context.Context) (string, error) { ... }})
package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"go.temporal.io/api/serviceerror"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Statuses of a check and of a report.
const (
	// StatusOK is a check that passed, or a report whose checks all passed.
	StatusOK = "ok"
	// StatusFail is a critical check that failed, or a report with one.
	StatusFail = "fail"
	// StatusDegraded is a non-critical check that failed, or a report whose
	// only failures are non-critical: the service still works, with less.
	StatusDegraded = "degraded"
)

// Func is a check's probe. It returns an optional detail shown with the
// result (e.g. "heap 12 MB, rss 48 MB") and an error when the dependency is
// unhealthy. It must return when ctx is done.
type Func func(ctx context.Context) (detail string, err error)

// Check is one named probe. A Critical check that fails makes the report
// fail (503); a non-critical one only degrades it (still 200).
type Check struct {
	Name     string
	Critical bool
	Fn       Func
}

// Result is the outcome of one check.
type Result struct {
	Status    string  `json:"status"`
	Critical  bool    `json:"critical"`
	Error     string  `json:"error,omitempty"`
	Detail    string  `json:"detail,omitempty"`
	LatencyMS float64 `json:"latency_ms"`
}

// Report is the outcome of one run of every check.
type Report struct {
	// Status is ok, degraded (only non-critical checks failed) or fail.
	Status string `json:"status"`
	// Failing names the checks that did not pass, critical or not, sorted.
	Failing []string          `json:"failing,omitempty"`
	Checks  map[string]Result `json:"checks"`
	// LatencyMS is how long the whole run took.
	LatencyMS float64 `json:"latency_ms"`
}

// HTTPStatus is 200 unless a critical check failed, then 503.
func (r Report) HTTPStatus() int {
	if r.Status == StatusFail {
		return http.StatusServiceUnavailable
	}
	return http.StatusOK
}

// Checker runs a set of checks within a budget. It is safe for concurrent
// use, and checks may be added while it serves.
type Checker struct {
	// Budget bounds one run: a check still running when it ends fails with a
	// timeout error.
	Budget time.Duration

	mu     sync.Mutex
	checks []Check
}

// New returns a checker with a budget and the given checks.
func New(budget time.Duration, checks ...Check) *Checker {
	c := &Checker{Budget: budget}
	c.Add(checks...)
	return c
}

// Add registers checks. A check with the name of an existing one replaces it.
func (c *Checker) Add(checks ...Check) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range checks {
		replaced := false
		for i := range c.checks {
			if c.checks[i].Name == ch.Name {
				c.checks[i], replaced = ch, true
			}
		}
		if !replaced {
			c.checks = append(c.checks, ch)
		}
	}
}

// Checks returns a copy of the registered checks.
func (c *Checker) Checks() []Check {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Check(nil), c.checks...)
}

type outcome struct {
	i       int
	detail  string
	err     error
	took    time.Duration
	expired bool // the budget had ended when the check returned
}

// Run runs every check concurrently and waits for them, at most until the
// budget (or ctx) ends; a check that has not answered by then fails with
// "timed out after <budget>", as does one whose error came once the budget
// had ended (its own call gave up with the deadline). Checks that overrun keep their goroutine until
// their Fn returns, which a Func honouring ctx does at once.
func (c *Checker) Run(ctx context.Context) Report {
	checks := c.Checks()
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, c.Budget)
	defer cancel()
	done := make(chan outcome, len(checks))
	for i, ch := range checks {
		go func() {
			t := time.Now()
			detail, err := safeRun(ctx, ch.Fn)
			took := time.Since(t)
			// A call given the budget's deadline may be told so by its
			// server a moment before ctx itself expires.
			expired := ctx.Err() != nil || (err != nil && took >= c.Budget*9/10 && deadlineError(err))
			done <- outcome{i: i, detail: detail, err: err, took: took, expired: expired}
		}()
	}
	got := make([]*outcome, len(checks))
wait:
	for range checks {
		select {
		case o := <-done:
			got[o.i] = &o
		case <-ctx.Done():
			break wait // the checks that have not answered time out below
		}
	}
	// Answers that arrived with the deadline still count.
	for drained := false; !drained; {
		select {
		case o := <-done:
			got[o.i] = &o
		default:
			drained = true
		}
	}
	rep := Report{Status: StatusOK, Checks: make(map[string]Result, len(checks))}
	for i, ch := range checks {
		r := Result{Status: StatusOK, Critical: ch.Critical}
		o := got[i]
		switch {
		case o == nil:
			r.Error = fmt.Sprintf("timed out after %s", c.Budget)
			r.LatencyMS = ms(time.Since(start))
		default:
			r.Detail, r.LatencyMS = o.detail, ms(o.took)
			switch {
			case o.err != nil && o.expired:
				r.Error = fmt.Sprintf("timed out after %s: %s", c.Budget, o.err)
			case o.err != nil:
				r.Error = o.err.Error()
			}
		}
		if r.Error != "" {
			rep.Failing = append(rep.Failing, ch.Name)
			if ch.Critical {
				r.Status, rep.Status = StatusFail, StatusFail
			} else {
				r.Status = StatusDegraded
				if rep.Status == StatusOK {
					rep.Status = StatusDegraded
				}
			}
		}
		rep.Checks[ch.Name] = r
	}
	sort.Strings(rep.Failing)
	rep.LatencyMS = ms(time.Since(start))
	return rep
}

// safeRun turns a panicking check into a failed one.
func safeRun(ctx context.Context, fn Func) (detail string, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("check panicked: %v", p)
		}
	}()
	return fn(ctx)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// ServeHTTP runs the checks and writes the report: 200 when every critical
// check passed, 503 naming the failing checks otherwise.
func (c *Checker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	WriteReport(w, c.Run(r.Context()))
}

// WriteReport writes rep as JSON with its HTTP status. Health answers are
// never cached.
func WriteReport(w http.ResponseWriter, rep Report) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(rep.HTTPStatus())
	_ = json.NewEncoder(w).Encode(rep)
}

// Live answers 200 {"status":"ok"} without checking anything: the process
// serves HTTP. It is the liveness probe; /health, which fails while
// PostgreSQL or Temporal is down, is the readiness probe, so a dependency's
// outage takes pods out of rotation instead of restarting all of them.
func Live(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
}

// deadlineError reports whether err says a deadline passed, locally or at
// the server that was called.
func deadlineError(err error) bool {
	var de *serviceerror.DeadlineExceeded
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &de) || status.Code(err) == codes.DeadlineExceeded
}
