package api

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// OpenAPI is the OpenAPI 3 document of every /v1 route (api/openapi.json):
// the request and response bodies, the parameters and the error body. The
// gateway serves it at GET /v1/openapi.json without a token. A route added
// to Handler needs its path here too: TestOpenAPIDocumentsEveryRoute
// compares the two, and the e2e contract test validates real answers
// against it.
//
//go:embed openapi.json
var OpenAPI []byte

// OpenAPIPath is where the gateway serves OpenAPI.
const OpenAPIPath = "/v1/openapi.json"

// openAPI serves the document.
func (s *Server) openAPI(c echo.Context) error {
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, OpenAPI)
}
