package auth

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// BearerToken returns the token of an "Authorization: Bearer <token>"
// header, "" when there is none or the scheme is another.
func BearerToken(h http.Header) string {
	v := h.Get(echo.HeaderAuthorization)
	if len(v) < 7 || !strings.EqualFold(v[:7], "bearer ") {
		return ""
	}
	return strings.TrimSpace(v[7:])
}

// failureKey is where Identify leaves why a request has no claims.
const failureKey = "orderflow.auth.failure"

// Identify is Echo middleware that authenticates the request's bearer token,
// if any, and puts its claims in the request's context; it never refuses a
// request, so that middleware after it (the rate limiter) can count the
// caller, and Required refuses later with the reason kept here.
func (a *Authenticator) Identify(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		raw := BearerToken(c.Request().Header)
		if raw == "" {
			c.Set(failureKey, ErrMissingToken)
			return next(c)
		}
		claims, err := a.Authenticate(c.Request().Context(), raw)
		if err != nil {
			c.Set(failureKey, err)
			return next(c)
		}
		r := c.Request()
		c.SetRequest(r.WithContext(WithClaims(r.Context(), claims)))
		return next(c)
	}
}

// Required is Echo middleware, after Identify, that refuses a request without
// valid claims with the *Error Identify found (401, or 503 when the keys
// could not be fetched).
func Required(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if _, ok := FromContext(c.Request().Context()); ok {
			return next(c)
		}
		if err, ok := c.Get(failureKey).(error); ok {
			return err
		}
		return ErrMissingToken
	}
}

// Middleware is Identify and Required in one, for an Echo server that needs
// no middleware between them.
func (a *Authenticator) Middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return a.Identify(Required(next))
}

// RequireRole is Echo middleware, after Required, that refuses with 403 a
// caller whose token grants none of roles (admin grants every role).
func RequireRole(roles ...Role) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			claims, ok := FromContext(c.Request().Context())
			if !ok {
				return ErrMissingToken
			}
			if !claims.HasAny(roles...) {
				return forbidden("this needs the role " + roleNames(roles))
			}
			return next(c)
		}
	}
}

func roleNames(roles []Role) string {
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = string(r)
	}
	return strings.Join(s, " or ")
}
