package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestAClientThatHungUpIsNotAServerError: a handler that fails because its
// client went away (the request's context cancelled) is answered 499 and
// logs no error; the same error while the client still waits stays a 500.
func TestAClientThatHungUpIsNotAServerError(t *testing.T) {
	core, logs := observer.New(zap.ErrorLevel)
	handle := errorHandler(zap.New(core))
	failed := fmt.Errorf("claim idempotency key: %w", context.Canceled)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rec := httptest.NewRecorder()
	handle(failed, echo.New().NewContext(httptest.NewRequest(http.MethodPost, "/v1/orders", nil).WithContext(ctx), rec))
	assert.Equal(t, statusClientClosed, rec.Code)
	assert.Contains(t, rec.Body.String(), "client_closed_request")
	assert.Zero(t, logs.Len(), "a client's hang-up is not logged as a failure")

	rec = httptest.NewRecorder()
	handle(failed, echo.New().NewContext(httptest.NewRequest(http.MethodPost, "/v1/orders", nil), rec))
	assert.Equal(t, http.StatusInternalServerError, rec.Code, "a cancellation the client did not cause is ours")
	assert.Equal(t, 1, logs.Len())
}
