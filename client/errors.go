package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Error is an answer of the gateway other than the one a call expects: the
// API's JSON error body ({"error":{"code":...,"message":...,"details":[...]}})
// with the answer's status. An answer without that body (a proxy's page, say)
// has an empty Code and the start of the body as Message.
type Error struct {
	Status  int
	Code    string
	Message string
	Details []Detail
	// RetryAfter is the answer's Retry-After (a 503 or 429 sends one),
	// zero when there is none.
	RetryAfter time.Duration
	// RequestID is the X-Request-ID the gateway answered with, the key to
	// its log lines for this request.
	RequestID string
}

// Detail points at one problem in a request.
type Detail struct {
	Field string `json:"field,omitempty"`
	Issue string `json:"issue"`
}

func (e *Error) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("%d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
	}
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
}

// Temporary reports whether the same request may succeed later: a 5xx or a
// 429. The gateway's 503s say so with a Retry-After.
func (e *Error) Temporary() bool {
	return e.Status >= 500 || e.Status == http.StatusTooManyRequests
}

// StatusOf is the HTTP status of the answer err reports, 0 when err is nil
// or the request got no answer.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// CodeOf is the API error code err carries, "" when it carries none.
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func parseError(status int, h http.Header, body []byte) *Error {
	e := &Error{Status: status, RetryAfter: retryAfter(h.Get("Retry-After")), RequestID: h.Get(HeaderRequestID)}
	var wire struct {
		Error *struct {
			Code    string   `json:"code"`
			Message string   `json:"message"`
			Details []Detail `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &wire) == nil && wire.Error != nil {
		e.Code, e.Message, e.Details = wire.Error.Code, wire.Error.Message, wire.Error.Details
		return e
	}
	e.Message = strings.TrimSpace(string(body[:min(len(body), 200)]))
	return e
}

// retryAfter reads Retry-After as seconds or an HTTP date.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, time.Until(t))
	}
	return 0
}
