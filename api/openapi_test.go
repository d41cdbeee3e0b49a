package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/orderflow/orderflow"
)

// loadOpenAPI parses and validates the embedded document.
func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(OpenAPI)
	require.NoError(t, err)
	require.NoError(t, doc.Validate(context.Background()), "api/openapi.json is not a valid OpenAPI 3 document")
	return doc
}

// testAddress is a valid shipping address for the orders tests place.
var testAddress = orderflow.Address{Name: "Ada", Line1: "1 Main St", City: "Springfield", PostalCode: "62701", State: "IL", Country: "US"}

var echoParam = regexp.MustCompile(`:([A-Za-z_]+)`)

// documented lists "METHOD /path" of every operation of doc, with Echo's
// :param spelled {param}.
func documented(doc *openapi3.T) []string {
	var ops []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			ops = append(ops, method+" "+path)
		}
	}
	slices.Sort(ops)
	return ops
}

// registered lists "METHOD /path" of every /v1 route the gateway registers,
// leaving out the catch-all routes that make /v1's middleware answer
// unknown paths.
func registered(s *Server) []string {
	var ops []string
	for _, r := range s.customerEcho().Routes() {
		if !strings.HasPrefix(r.Path, "/v1/") || strings.HasSuffix(r.Path, "/*") || !slices.Contains(httpMethods, r.Method) {
			continue
		}
		ops = append(ops, r.Method+" "+echoParam.ReplaceAllString(r.Path, "{$1}"))
	}
	slices.Sort(ops)
	return slices.Compact(ops)
}

var httpMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions}

func TestOpenAPIDocumentsEveryRouteAndNothingElse(t *testing.T) {
	doc := loadOpenAPI(t)
	got := registered(&Server{Log: zap.NewNop()})
	require.NotEmpty(t, got)
	assert.Equal(t, got, documented(doc), "the routes Handler registers under /v1 (left) and the paths of api/openapi.json (right)")
}

func TestEveryOperationDocumentsTheErrorBody(t *testing.T) {
	doc := loadOpenAPI(t)
	for _, op := range documented(doc) {
		method, path, _ := strings.Cut(op, " ")
		o := doc.Paths.Find(path).GetOperation(method)
		def := o.Responses.Default()
		require.NotNil(t, def, "%s has no default response", op)
		assert.Equal(t, "#/components/responses/Error", def.Ref, "%s: its default answer is the JSON error body", op)
	}
}

func TestTheDocumentIsServedWithoutAToken(t *testing.T) {
	h := (&Server{Log: zap.NewNop()}).Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, OpenAPIPath, nil))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	assert.Equal(t, OpenAPI, rec.Body.Bytes())

	// Its neighbours still need one.
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/orders", nil))
	assert.Equal(t, http.StatusUnauthorized, rec.Code)
}
