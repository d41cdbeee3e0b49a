package api

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/labstack/echo/v4"
	"go.temporal.io/api/serviceerror"
	"go.uber.org/zap"

	"github.com/orderflow/orderflow/internal/auth"
)

// Error is a client-facing failure. Its JSON form is the body of every
// non-2xx answer: {"error":{"code":...,"message":...,"details":[...]}}.
type Error struct {
	Status     int      `json:"-"`
	Code       string   `json:"code"`
	Message    string   `json:"message"`
	Details    []Detail `json:"details,omitempty"`
	RetryAfter string   `json:"-"`
	// Challenge is the WWW-Authenticate header of a 401 or 403.
	Challenge string `json:"-"`
}

// Detail points at one problem in a request.
type Detail struct {
	Field string `json:"field,omitempty"`
	Issue string `json:"issue"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func newError(status int, code, msg string, details ...Detail) *Error {
	return &Error{Status: status, Code: code, Message: msg, Details: details}
}

func unavailable(code, msg string) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: code, Message: msg, RetryAfter: "1"}
}

// errorHandler is the gateway's one HTTPErrorHandler: it maps domain errors,
// Echo's own errors and Temporal service errors to a status and the JSON
// error body, and logs only what it did not expect.
func errorHandler(log *zap.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		e := classify(err)
		if errors.Is(err, context.Canceled) && c.Request().Context().Err() != nil {
			// The client hung up: nobody reads this answer, and nothing
			// failed on our side. Recorded as nginx's 499, not as a 500.
			e = newError(statusClientClosed, "client_closed_request", "the client closed the request")
		}
		if e.Status >= 500 {
			log.Error("request failed", append(requestFields(c), zap.String("method", c.Request().Method), zap.String("path", c.Path()),
				zap.Int("status", e.Status), zap.Error(err))...)
		}
		if e.RetryAfter != "" {
			c.Response().Header().Set("Retry-After", e.RetryAfter)
		}
		if e.Challenge != "" {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, e.Challenge)
		}
		_ = c.JSON(e.Status, map[string]*Error{"error": e})
	}
}

// statusClientClosed is the status logged and counted for a request whose
// client went away before its answer (nginx's 499).
const statusClientClosed = 499

func classify(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if ae, ok := auth.AsError(err); ok {
		return &Error{Status: ae.Status, Code: ae.Code, Message: ae.Message, Challenge: ae.Challenge(), RetryAfter: ae.RetryAfter()}
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusNotFound:
			return newError(he.Code, "not_found", "no such resource")
		case http.StatusMethodNotAllowed:
			return newError(he.Code, "method_not_allowed", "method not allowed on this resource")
		case http.StatusRequestEntityTooLarge:
			return newError(he.Code, "body_too_large", "request body is too large")
		case http.StatusUnsupportedMediaType:
			return newError(he.Code, "unsupported_media_type", "send application/json")
		}
		if he.Code < 500 {
			return newError(he.Code, "bad_request", http.StatusText(he.Code))
		}
	}
	var unavail *serviceerror.Unavailable
	var exhausted *serviceerror.ResourceExhausted
	switch {
	case errors.As(err, &unavail), errors.As(err, &exhausted), errors.Is(err, context.DeadlineExceeded), databaseDown(err):
		return unavailable("service_unavailable", "a dependency is unavailable; retry with the same Idempotency-Key")
	}
	return newError(http.StatusInternalServerError, "internal", "internal error")
}

// databaseDown reports whether err says PostgreSQL could not be reached or
// dropped the connection (a restart, a failover, an exhausted server): the
// request did not complete and a retry with the same Idempotency-Key is safe,
// so the client gets a 503 with Retry-After rather than a 500.
func databaseDown(err error) bool {
	var connect *pgconn.ConnectError
	if errors.As(err, &connect) || pgconn.Timeout(err) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return true
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch pg.Code[:2] {
		case "08", "53", "57": // connection exception, insufficient resources, operator intervention
			return true
		}
		return pg.Code == "40001" || pg.Code == "40P01" // serialization failure, deadlock: retry
	}
	var op *net.OpError
	return errors.As(err, &op)
}
