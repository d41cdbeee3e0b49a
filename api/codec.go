package api

import (
	"errors"
	"html/template"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/orderflow/orderflow/internal/auth"
)

// The codec server: POST /codec/encode and /codec/decode speak Temporal's
// remote codec protocol (Payloads as protobuf JSON) for operators, so the
// Web UI and the temporal CLI (--codec-endpoint, --codec-auth) show the
// payloads the saga's clients sealed. Browsers authenticate with a session
// cookie: GET /codec/session is a form that takes an operator's token and
// POST /codec/session sets it, HttpOnly and SameSite=Strict; the Web UI then
// sends it when its codec setting includes cross-origin credentials.
const (
	codecCookie = "orderflow_codec"
	// codecBodyLimit bounds a codec request: one event's payloads, which
	// Temporal caps at 2 MB each by default, in base64.
	codecBodyLimit = 8 << 20
	// codecSessionMax bounds a browser's codec session below the token's own
	// expiry.
	codecSessionMax = 8 * time.Hour
)

func (s *Server) codecRoutes(e *echo.Echo) {
	g := e.Group("/codec", middleware.CORSWithConfig(middleware.CORSConfig{
		AllowOrigins:     s.CodecOrigins,
		AllowMethods:     []string{http.MethodPost},
		AllowHeaders:     []string{echo.HeaderContentType, echo.HeaderAuthorization, "X-Namespace"},
		AllowCredentials: true,
		MaxAge:           600,
	}))
	operator := []echo.MiddlewareFunc{s.codecCookieIdentity, auth.Required, auth.RequireRole(auth.RoleOperator)}
	g.POST("/encode", s.codecCall(s.Codec.Encode), operator...)
	g.POST("/decode", s.codecCall(s.Codec.Decode), operator...)
	g.GET("/session", s.codecSessionForm)
	g.POST("/session", s.codecSession)
}

// codecCookieIdentity authenticates the session cookie when the request
// carries no bearer token, for auth.Required after it.
func (s *Server) codecCookieIdentity(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if _, ok := auth.FromContext(r.Context()); ok || s.Auth == nil || auth.BearerToken(r.Header) != "" {
			return next(c)
		}
		ck, err := r.Cookie(codecCookie)
		if err != nil || ck.Value == "" {
			return next(c)
		}
		claims, err := s.Auth.Authenticate(r.Context(), ck.Value)
		if err != nil {
			return err
		}
		c.SetRequest(r.WithContext(auth.WithClaims(r.Context(), claims)))
		return next(c)
	}
}

// codecCall serves one direction of the codec protocol.
func (s *Server) codecCall(code func([]*commonpb.Payload) ([]*commonpb.Payload, error)) echo.HandlerFunc {
	return func(c echo.Context) error {
		body, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, codecBodyLimit))
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return newError(http.StatusRequestEntityTooLarge, "body_too_large", "a codec request may hold at most 8 MiB")
		}
		if err != nil {
			return newError(http.StatusBadRequest, "invalid_body", "the request body could not be read")
		}
		var in commonpb.Payloads
		if err := protojson.Unmarshal(body, &in); err != nil {
			return newError(http.StatusBadRequest, "invalid_payloads", "the body must be Temporal Payloads in protobuf JSON: {\"payloads\":[...]}")
		}
		out, err := code(in.GetPayloads())
		if err != nil {
			return newError(http.StatusUnprocessableEntity, "codec_failed", err.Error())
		}
		b, err := protojson.Marshal(&commonpb.Payloads{Payloads: out})
		if err != nil {
			return err
		}
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, b)
	}
}

var codecForm = template.Must(template.New("codec").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>orderflow codec session</title></head>
<body>
<h1>orderflow codec session</h1>
{{if .Until}}<p>Signed in as {{.Subject}} until {{.Until}}. The Web UI decodes payloads through this server when its Codec Server setting
points here and includes cross-origin credentials.</p>{{end}}
<form method="post" action="/codec/session">
<label>Operator token <input type="password" name="token" autocomplete="off" required></label>
<button type="submit">Sign in</button>
</form>
</body></html>
`))

// sessionPageCSP is the gateway's policy with one exception: the sign-in
// form may post to the gateway itself.
const sessionPageCSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

func writeSessionPage(c echo.Context, data map[string]string) error {
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
	h.Set(HeaderContentSecurityPolicy, sessionPageCSP)
	c.Response().WriteHeader(http.StatusOK)
	return codecForm.Execute(c.Response(), data)
}

func (s *Server) codecSessionForm(c echo.Context) error { return writeSessionPage(c, nil) }

// codecSession takes an operator token from the form and keeps it in the
// session cookie, for no longer than the token lives.
func (s *Server) codecSession(c echo.Context) error {
	r := c.Request()
	r.Body = http.MaxBytesReader(c.Response(), r.Body, 16<<10)
	token := r.PostFormValue("token")
	if token == "" {
		return newError(http.StatusBadRequest, "missing_token", "the form field token must hold an operator's bearer token")
	}
	if s.Auth == nil {
		return auth.ErrMissingToken
	}
	claims, err := s.Auth.Authenticate(r.Context(), token)
	if err != nil {
		return err
	}
	if !claims.HasAny(auth.RoleOperator) {
		return auth.Forbidden("forbidden", "the codec server needs the role operator")
	}
	until := time.Now().Add(codecSessionMax)
	if exp := claims.ExpiresAt; !exp.IsZero() && exp.Before(until) {
		until = exp
	}
	// #nosec G124 -- HttpOnly and SameSite=Strict always; Secure when this gateway serves TLS (a browser drops a Secure cookie sent over make run's plain HTTP).
	c.SetCookie(&http.Cookie{
		Name: codecCookie, Value: token, Path: "/codec/", Expires: until, MaxAge: int(time.Until(until).Seconds()),
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
	return writeSessionPage(c, map[string]string{"Subject": claims.Subject, "Until": until.UTC().Format(time.RFC3339)})
}
