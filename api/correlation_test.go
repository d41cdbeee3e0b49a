package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"go.uber.org/zap"
)

func TestRequestIDIsTakenFromTheHeaderOrMadeAndEchoed(t *testing.T) {
	h := (&Server{Log: zap.NewNop()}).Handler()
	for _, tc := range []struct {
		name, sent string
		kept       bool
	}{
		{"absent", "", false},
		{"a client's id", "req-0af7651916cd43dd", true},
		{"128 characters", strings.Repeat("r", 128), true},
		{"too long", strings.Repeat("r", 129), false},
		{"a space", "two words", false},
		{"a control character", "id\x01x", false},
		{"not ASCII", "идентификатор", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/health/live", nil)
			if tc.sent != "" {
				req.Header.Set(echo.HeaderXRequestID, tc.sent)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			got := rec.Header().Get(echo.HeaderXRequestID)
			if tc.kept {
				assert.Equal(t, tc.sent, got)
				return
			}
			assert.NotEqual(t, tc.sent, got)
			assert.True(t, validRequestID(got), "made id %q is not valid", got)
		})
	}
}
