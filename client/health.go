package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// HealthReport is the body of the health endpoints: the outcome of every
// check.
type HealthReport struct {
	// Status is ok, degraded (only non-critical checks failed) or fail.
	Status string `json:"status"`
	// Failing names the checks that did not pass, sorted.
	Failing   []string               `json:"failing,omitempty"`
	Checks    map[string]CheckResult `json:"checks"`
	LatencyMS float64                `json:"latency_ms"`
	// HTTPStatus is the answer's status: 200, or 503 when a critical check
	// failed.
	HTTPStatus int `json:"-"`
	// Cached is set on a deep report that another caller's check produced
	// earlier (Health-Cached: true), answered because one was running.
	Cached bool `json:"-"`
}

// CheckResult is the outcome of one check.
type CheckResult struct {
	Status    string  `json:"status"`
	Critical  bool    `json:"critical"`
	Error     string  `json:"error,omitempty"`
	Detail    string  `json:"detail,omitempty"`
	LatencyMS float64 `json:"latency_ms"`
}

// Health is GET /health: PostgreSQL, Temporal, disk and memory (Redis only
// degrades it).
func (c *Client) Health(ctx context.Context) (HealthReport, error) { return c.health(ctx, "/health") }

// Ready is GET /health/ready, the readiness probe: the same checks as Health.
func (c *Client) Ready(ctx context.Context) (HealthReport, error) {
	return c.health(ctx, "/health/ready")
}

// Deep is GET /health/deep (an operator's call): Health's checks, the payment
// providers and a real synthetic order through the saga.
func (c *Client) Deep(ctx context.Context) (HealthReport, error) {
	return c.health(ctx, "/health/deep")
}

// health reads a report. A 503 that carries one returns it together with a
// *Error naming the failing checks; any other failure returns only the
// *Error (a 503 health_check_running, a 401 or 403).
func (c *Client) health(ctx context.Context, path string) (HealthReport, error) {
	a, err := c.do(ctx, http.MethodGet, path, nil, nil, nil, http.StatusOK, http.StatusServiceUnavailable)
	if err != nil {
		return HealthReport{}, fmt.Errorf("GET %s: %w", path, err)
	}
	var rep HealthReport
	if jerr := json.Unmarshal(a.body, &rep); jerr != nil || rep.Status == "" {
		return HealthReport{}, fmt.Errorf("GET %s: %w", path, parseError(a.status, a.header, a.body))
	}
	rep.HTTPStatus, rep.Cached = a.status, a.header.Get(HeaderHealthCached) == "true"
	if a.status != http.StatusOK {
		return rep, fmt.Errorf("GET %s: %w", path, &Error{Status: a.status, Code: "unhealthy",
			Message: "failing: " + strings.Join(rep.Failing, ", "), RetryAfter: retryAfter(a.header.Get("Retry-After")),
			RequestID: a.header.Get(HeaderRequestID)})
	}
	return rep, nil
}
