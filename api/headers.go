package api

import (
	"github.com/labstack/echo/v4"
)

// The gateway answers JSON only, never a page: its security headers forbid
// everything a browser could do with a response besides reading it as data.
// The values are shared slices, assigned to the header map directly, so the
// middleware allocates nothing (BenchmarkSecurityHeaders); a handler that
// calls Header().Set replaces the slice and never writes into these.
var (
	nosniff     = []string{"nosniff"}
	frameDeny   = []string{"DENY"}
	noReferrer  = []string{"no-referrer"}
	jsonOnlyCSP = []string{"default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"}
	noStore     = []string{"no-store"}
	strictHTTPS = []string{"max-age=31536000; includeSubDomains"}
)

// Canonical names of the security headers.
const (
	HeaderHSTS                  = "Strict-Transport-Security"
	HeaderContentTypeOptions    = "X-Content-Type-Options"
	HeaderFrameOptions          = "X-Frame-Options"
	HeaderReferrerPolicy        = "Referrer-Policy"
	HeaderContentSecurityPolicy = "Content-Security-Policy"
	HeaderCacheControl          = "Cache-Control"
)

// securityHeaders sets the security headers on every answer, errors
// included, before anything else runs: nosniff, no framing, no referrer, a
// content security policy that loads nothing, and no-store, since /v1
// answers carry a customer's orders and any answer may be an error about
// them (the health endpoints set no-store themselves too). HSTS is sent only
// on a connection the gateway itself serves over TLS (RFC 6797 §7.2: never
// over plain HTTP); behind a TLS-terminating ingress the ingress sends it.
func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h[HeaderContentTypeOptions] = nosniff
		h[HeaderFrameOptions] = frameDeny
		h[HeaderReferrerPolicy] = noReferrer
		h[HeaderContentSecurityPolicy] = jsonOnlyCSP
		h[HeaderCacheControl] = noStore
		if c.Request().TLS != nil {
			h[HeaderHSTS] = strictHTTPS
		}
		return next(c)
	}
}
