package api

import (
	"context"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/orderflow/orderflow/internal/logging"
	"github.com/orderflow/orderflow/workflows/order"
)

// maxRequestIDLen bounds a client's X-Request-ID; a longer one is replaced.
const maxRequestIDLen = 128

// requestID takes the request's correlation id from X-Request-ID, or makes
// one when the header is absent or not a short run of visible ASCII (so a
// client cannot put newlines or kilobytes into every log line), echoes it in
// the response and puts it in the request's context, from which the log
// lines and the Temporal client (logging.Propagators) take it.
func requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		id := req.Header.Get(echo.HeaderXRequestID)
		if !validRequestID(id) {
			id = uuid.NewString()
		}
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		c.SetRequest(req.WithContext(logging.WithRequestID(req.Context(), id)))
		return next(c)
	}
}

func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// nameSpan names the request's server span by its route ("POST
// /v1/orders"), which otelhttp, outside the router, cannot know, and tags it
// with the request id. It is installed only when tracing is on.
func nameSpan(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		span := trace.SpanFromContext(c.Request().Context())
		if span.IsRecording() {
			if route := c.Path(); route != "" {
				span.SetName(c.Request().Method + " " + route)
				span.SetAttributes(attribute.String("http.route", route))
			}
			span.SetAttributes(attribute.String(logging.KeyRequestID, logging.RequestID(c.Request().Context())))
		}
		return next(c)
	}
}

// orderKey is where a handler leaves the id of the order a request is
// about, for the access log line.
const orderKey = "orderflow.order_id"

// setOrder records the order the request is about, for the access log.
func setOrder(c echo.Context, orderID string) { c.Set(orderKey, orderID) }

// orderLog is a logger for lines about an order during a request: order_id,
// workflow_id and the correlation fields of ctx.
func (s *Server) orderLog(ctx context.Context, orderID string) *zap.Logger {
	return s.Log.With(append(logging.Fields(ctx),
		zap.String(logging.KeyOrderID, orderID), zap.String(logging.KeyWorkflowID, order.WorkflowID(orderID)))...)
}

// requestFields are the correlation fields of a request's log lines:
// request_id, trace_id and span_id, and order_id and workflow_id once a
// handler named the order.
func requestFields(c echo.Context) []zap.Field {
	f := logging.Fields(c.Request().Context())
	if id, ok := c.Get(orderKey).(string); ok {
		f = append(f, zap.String(logging.KeyOrderID, id), zap.String(logging.KeyWorkflowID, order.WorkflowID(id)))
	}
	return f
}
