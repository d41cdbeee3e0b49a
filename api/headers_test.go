package api

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"
)

// wantSecurityHeaders are the headers every gateway answer carries.
var wantSecurityHeaders = map[string]string{
	HeaderContentTypeOptions:    "nosniff",
	HeaderFrameOptions:          "DENY",
	HeaderReferrerPolicy:        "no-referrer",
	HeaderContentSecurityPolicy: "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
	HeaderCacheControl:          "no-store",
}

func TestSecurityHeaderNamesAreCanonical(t *testing.T) {
	for name := range wantSecurityHeaders {
		if http.CanonicalHeaderKey(name) != name {
			t.Errorf("%q is not canonical: the header map would hold it under another key", name)
		}
	}
	if http.CanonicalHeaderKey(HeaderHSTS) != HeaderHSTS {
		t.Errorf("%q is not canonical", HeaderHSTS)
	}
}

// Every answer of the gateway, the errors Echo, the auth middleware and the
// router produce included, carries the security headers; HSTS only on a
// TLS connection.
func TestEveryAnswerCarriesTheSecurityHeadersAndHSTSOnlyOverTLS(t *testing.T) {
	s := &Server{Log: zap.NewNop()}
	h := s.Handler()
	cases := []struct {
		name, method, path string
		status             int
	}{
		{"liveness", http.MethodGet, "/health/live", http.StatusOK},
		{"a /v1 route without a token", http.MethodGet, "/v1/orders/0b6f5c3e-0000-4000-8000-000000000000", http.StatusUnauthorized},
		{"an unknown /v1 route", http.MethodGet, "/v1/nothing", http.StatusUnauthorized},
		{"an unknown route", http.MethodGet, "/nothing", http.StatusNotFound},
		{"a method the route lacks", http.MethodDelete, "/health/live", http.StatusMethodNotAllowed},
		{"a deep check without a token", http.MethodGet, "/health/deep", http.StatusUnauthorized},
	}
	for _, tc := range cases {
		for _, overTLS := range []bool{false, true} {
			r := httptest.NewRequest(tc.method, tc.path, nil)
			if overTLS {
				r.TLS = &tls.ConnectionState{Version: tls.VersionTLS13, HandshakeComplete: true}
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != tc.status {
				t.Errorf("%s: %d, want %d", tc.name, rec.Code, tc.status)
			}
			for k, v := range wantSecurityHeaders {
				if got := rec.Header().Values(k); len(got) != 1 || got[0] != v {
					t.Errorf("%s (tls %v): %s = %q, want %q", tc.name, overTLS, k, got, v)
				}
			}
			hsts := rec.Header().Get(HeaderHSTS)
			if overTLS && hsts != "max-age=31536000; includeSubDomains" {
				t.Errorf("%s over TLS: %s = %q", tc.name, HeaderHSTS, hsts)
			}
			if !overTLS && hsts != "" {
				t.Errorf("%s over plain HTTP sent %s: %q", tc.name, HeaderHSTS, hsts)
			}
		}
	}
}

// BenchmarkSecurityHeaders prices the middleware on one request, the
// recorder's own cost included (BenchmarkNoMiddleware is that baseline).
func BenchmarkSecurityHeaders(b *testing.B) {
	benchMiddleware(b, securityHeaders)
}

// BenchmarkNoMiddleware is BenchmarkSecurityHeaders's baseline: the same
// request through a handler with nothing in front.
func BenchmarkNoMiddleware(b *testing.B) {
	benchMiddleware(b, func(next echo.HandlerFunc) echo.HandlerFunc { return next })
}

func benchMiddleware(b *testing.B, mw echo.MiddlewareFunc) {
	e := echo.New()
	// Like every gateway answer, the handler's sets a header of its own.
	h := mw(func(c echo.Context) error {
		c.Response().Header().Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
		return c.NoContent(http.StatusNoContent)
	})
	r := httptest.NewRequest(http.MethodGet, "/v1/orders/x", nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		c := e.NewContext(r, rec)
		if err := h(c); err != nil {
			b.Fatal(err)
		}
	}
}
