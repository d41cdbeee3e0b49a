// Package auth verifies the bearer tokens (JWT) orderflow's HTTP endpoints
// require and says what their bearer may do.
//
// A token is a JWT with sub (the caller: for a customer, the customer id),
// iss and aud (AUTH_ISSUER, AUTH_AUDIENCE), exp (required) and optionally
// nbf, and a "roles" claim: a JSON array of role names ("customer",
// "operator", "admin"), or a single name as a string. Roles this package does
// not know are ignored. Production tokens are RS256 or ES256, signed by an
// identity provider whose JSON Web Key Set (AUTH_JWKS_URL) is fetched, cached
// and refreshed; development tokens are HS256 with AUTH_HS256_SECRET and are
// minted by `orderflow token`.
//
// Verified claims are cached for the session tier's TTL (30 minutes), never
// past the token's expiry, keyed by a SHA-256 of the token: in process first,
// and in Redis, which serves sessions while the key set cannot be fetched.
//
// Endpoints use it through Authenticator.Identify and Required (Echo);
// handlers read the caller with FromContext and check roles with RequireRole
// or Claims.Has.
package auth

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// Role is what a token lets its bearer do.
type Role string

// The roles. An admin may do everything an operator or a customer may.
const (
	// RoleCustomer places, reads and cancels its own orders and reads the
	// catalog.
	RoleCustomer Role = "customer"
	// RoleOperator reads and cancels any order, upserts products and stock
	// and runs the deep health check.
	RoleOperator Role = "operator"
	// RoleAdmin may do everything.
	RoleAdmin Role = "admin"
)

// Known reports whether r is one of the roles above.
func (r Role) Known() bool { return r == RoleCustomer || r == RoleOperator || r == RoleAdmin }

// Claims is what a verified token says about its bearer.
type Claims struct {
	// Subject is the token's sub: the customer id of a customer.
	Subject string `json:"sub"`
	// Roles are the known roles the token grants.
	Roles []Role `json:"roles"`
	// ExpiresAt is the token's exp.
	ExpiresAt time.Time `json:"exp"`
	// KeyID is the kid of the key that signed it ("" for HS256), so cached
	// claims stop counting once that key leaves the key set.
	KeyID string `json:"kid,omitempty"`
}

// Has reports whether the claims grant role r; admin grants every role.
func (c *Claims) Has(r Role) bool {
	return c != nil && (slices.Contains(c.Roles, r) || slices.Contains(c.Roles, RoleAdmin))
}

// HasAny reports whether the claims grant one of roles.
func (c *Claims) HasAny(roles ...Role) bool {
	for _, r := range roles {
		if c.Has(r) {
			return true
		}
	}
	return false
}

type claimsKey struct{}

// WithClaims returns ctx carrying the caller's claims.
func WithClaims(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, claimsKey{}, c)
}

// FromContext returns the claims Identify or Handler put in the request's
// context, and false when the request carries none.
func FromContext(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok && c != nil
}

// Realm names orderflow in WWW-Authenticate challenges.
const Realm = "orderflow"

// Error is an authentication or authorisation failure as the client sees
// it: 401 for a missing or invalid token, 403 for a role the token lacks, 503
// when the keys to verify it cannot be had. Challenge is the WWW-Authenticate
// value to send with it (RFC 6750).
type Error struct {
	Status      int
	Code        string // the JSON error body's code
	Message     string // the JSON error body's message, also the error_description
	BearerError string // RFC 6750 error: invalid_token, insufficient_scope, or "" for a missing token
	err         error
}

func (e *Error) Error() string {
	if e.err != nil {
		return e.Code + ": " + e.Message + ": " + e.err.Error()
	}
	return e.Code + ": " + e.Message
}

// Unwrap returns the verification error behind the failure, if any.
func (e *Error) Unwrap() error { return e.err }

// Challenge returns the WWW-Authenticate header value, "" for none. A request
// without a token gets only the realm, as RFC 6750 section 3.1 asks.
func (e *Error) Challenge() string {
	if e.Status != http.StatusUnauthorized && e.Status != http.StatusForbidden {
		return ""
	}
	v := `Bearer realm="` + Realm + `"`
	if e.BearerError != "" {
		v += `, error="` + e.BearerError + `", error_description=` + strconv.Quote(e.Message)
	}
	return v
}

// RetryAfter returns the Retry-After header value, "" for none.
func (e *Error) RetryAfter() string {
	if e.Status == http.StatusServiceUnavailable {
		return "1"
	}
	return ""
}

// ErrMissingToken is the failure of a request without a bearer token.
var ErrMissingToken = &Error{Status: http.StatusUnauthorized, Code: "token_required", Message: "an Authorization: Bearer token is required"}

func invalidToken(msg string, err error) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: "invalid_token", Message: msg, BearerError: "invalid_token", err: err}
}

func forbidden(msg string) *Error {
	return &Error{Status: http.StatusForbidden, Code: "forbidden", Message: msg, BearerError: "insufficient_scope"}
}

// Forbidden is a 403 *Error with the given message, for handlers that refuse
// an authenticated caller (another customer's id in a body, say).
func Forbidden(code, msg string) *Error {
	e := forbidden(msg)
	e.Code = code
	return e
}

func keysUnavailable(err error) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: "auth_unavailable",
		Message: "the keys to verify the token cannot be fetched; retry", err: err}
}

// AsError returns err as an *Error when it is one.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
