package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/api"
	"github.com/orderflow/orderflow/client"
	"github.com/orderflow/orderflow/internal/auth"
)

// contract checks every answer that passes through it against the gateway's
// OpenAPI document (api/openapi.json) with kin-openapi's
// openapi3filter.ValidateResponse: the status is documented for the
// operation (or covered by its default), and the body has its schema,
// error bodies included. A mismatch fails the test at its end. It also
// records which operations answered with which statuses.
type contract struct {
	t      *testing.T
	router routers.Router
	next   http.RoundTripper

	mu       sync.Mutex
	answered map[string][]int // operationId -> statuses
}

// newContract loads the document the gateway serves and checks answers
// against it until the test ends.
func newContract(t *testing.T) *contract {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI)
	if err != nil {
		t.Fatalf("load api/openapi.json: %v", err)
	}
	doc.Servers = nil // match paths on any host: the gateway runs on httptest's
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatalf("route api/openapi.json: %v", err)
	}
	return &contract{t: t, router: router, next: http.DefaultTransport, answered: map[string][]int{}}
}

// client is a client of the stack's gateway whose every answer is checked,
// sending bearer (none when empty).
func (c *contract) client(s *stack, bearer string) *client.Client {
	return client.New(s.url, client.WithToken(bearer), client.WithHTTPClient(&http.Client{Transport: c}))
}

// RoundTrip sends the request and checks its answer.
func (c *contract) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := c.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	if verr := c.check(req, res, body); verr != nil {
		c.t.Errorf("%s %s answered %d %s, which api/openapi.json does not allow: %v", req.Method, req.URL.RequestURI(), res.StatusCode, body, verr)
	}
	return res, nil
}

func (c *contract) check(req *http.Request, res *http.Response, body []byte) error {
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		return fmt.Errorf("no documented operation: %w", err)
	}
	c.mu.Lock()
	c.answered[route.Operation.OperationID] = append(c.answered[route.Operation.OperationID], res.StatusCode)
	c.mu.Unlock()
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true, MultiError: true}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts},
		Status:                 res.StatusCode, Header: res.Header, Options: opts,
	}
	return openapi3filter.ValidateResponse(context.Background(), in.SetBodyBytes(body))
}

// statuses returns the statuses an operation answered with so far.
func (c *contract) statuses(operationID string) []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.answered[operationID])
}

// TestEveryRouteAnswersAsTheOpenAPIDocumentSays calls every documented
// operation against the real stack, for its successes and its usual
// refusals, through the contract: each answer must be one the document
// allows, and each operation must have answered a 2xx at least once. A
// route added to the gateway (and to the document, which
// api.TestOpenAPIDocumentsEveryRouteAndNothingElse requires) needs a call
// here too.
func TestEveryRouteAnswersAsTheOpenAPIDocumentSays(t *testing.T) {
	s := newStack(t, false)
	c := newContract(t)
	ctx := context.Background()
	cust := customer()
	buyer, op := c.client(s, s.as(cust)), c.client(s, s.tok.Operator())
	admin, anonymous := c.client(s, s.tok.Bearer("dpo", auth.RoleAdmin)), c.client(s, "")

	// The document itself, without a token.
	status, _ := c.get(s, "", api.OpenAPIPath)
	require.Equal(t, http.StatusOK, status)

	// Products: create, update, read, list, search; refusals.
	sku := "C-" + uuid.NewString()[:8]
	_, created, err := op.PutProduct(ctx, sku, client.ProductRequest{Name: "contract widget", PriceCents: 500, OnHand: 10})
	require.NoError(t, err)
	require.True(t, created)
	_, _, err = op.PutProduct(ctx, sku, client.ProductRequest{Name: "contract widget", PriceCents: 500, OnHand: 10})
	require.NoError(t, err)
	_, _, err = op.PutProduct(ctx, sku, client.ProductRequest{Name: "", PriceCents: -1, OnHand: 10})
	require.Equal(t, http.StatusBadRequest, client.StatusOf(err))
	_, _, err = buyer.PutProduct(ctx, sku, client.ProductRequest{Name: "x", PriceCents: 1, OnHand: 1})
	require.Equal(t, http.StatusForbidden, client.StatusOf(err))
	_, err = buyer.GetProduct(ctx, sku)
	require.NoError(t, err)
	_, err = buyer.GetProduct(ctx, "NO-SUCH-"+sku)
	require.Equal(t, http.StatusNotFound, client.StatusOf(err))
	_, err = buyer.ListProducts(ctx, client.ListOptions{Limit: 2})
	require.NoError(t, err)
	_, err = buyer.ListProducts(ctx, client.ListOptions{Limit: 501})
	require.Equal(t, http.StatusBadRequest, client.StatusOf(err))
	found, err := buyer.SearchProducts(ctx, "contract widget", client.SearchOptions{Limit: 1})
	require.NoError(t, err)
	require.NotEmpty(t, found.Products)
	_, err = anonymous.ListProducts(ctx, client.ListOptions{})
	require.Equal(t, http.StatusUnauthorized, client.StatusOf(err))

	// Orders: place (and refusals), read, list, cancel. Without a worker
	// the saga waits, so the cancel is taken before anything is reserved.
	req := client.OrderRequest{Items: []client.Item{{SKU: sku, Quantity: 1}}, PaymentToken: payment.TokenVisa,
		Email: "contract@example.com", ShippingAddress: shipTo()}
	acc, _, err := buyer.PlaceOrder(ctx, req, uuid.NewString())
	require.NoError(t, err)
	_, _, err = buyer.PlaceOrder(ctx, req, "")
	require.Equal(t, http.StatusBadRequest, client.StatusOf(err))
	unknown := req
	unknown.Items = []client.Item{{SKU: "NO-SUCH-" + sku, Quantity: 1}}
	_, _, err = buyer.PlaceOrder(ctx, unknown, uuid.NewString())
	require.Equal(t, http.StatusUnprocessableEntity, client.StatusOf(err))
	_, _, err = op.PlaceOrder(ctx, req, uuid.NewString())
	require.Equal(t, http.StatusForbidden, client.StatusOf(err))

	done := make(chan error, 1)
	go func() { _, err := buyer.CancelOrder(ctx, acc.OrderID); done <- err }()
	time.Sleep(300 * time.Millisecond) // let the update reach the server before any worker polls
	s.startWorker()
	require.NoError(t, <-done)
	o, err := buyer.AwaitTerminal(ctx, acc.OrderID, 20*time.Millisecond)
	require.NoError(t, err)
	require.Equal(t, orderflow.StatusCancelled, o.Status)
	_, err = buyer.CancelOrder(ctx, uuid.NewString())
	require.Equal(t, http.StatusNotFound, client.StatusOf(err))

	confirmed, _, err := buyer.PlaceOrder(ctx, req, uuid.NewString())
	require.NoError(t, err)
	o, err = buyer.AwaitTerminal(ctx, confirmed.OrderID, 20*time.Millisecond)
	require.NoError(t, err)
	require.Equal(t, orderflow.StatusConfirmed, o.Status)
	_, err = buyer.CancelOrder(ctx, confirmed.OrderID)
	require.Equal(t, http.StatusConflict, client.StatusOf(err))
	_, err = c.client(s, s.as(customer())).GetOrder(ctx, confirmed.OrderID)
	require.Equal(t, http.StatusNotFound, client.StatusOf(err))

	page, err := buyer.ListOrders(ctx, client.HistoryOptions{Limit: 1})
	require.NoError(t, err)
	require.NotEmpty(t, page.Next)
	_, err = op.ListOrders(ctx, client.HistoryOptions{CustomerID: cust, After: page.Next})
	require.NoError(t, err)
	_, err = buyer.ListOrders(ctx, client.HistoryOptions{Status: "NOPE"})
	require.Equal(t, http.StatusBadRequest, client.StatusOf(err))

	// Erasure: admins only, 404 for a customer without orders.
	_, err = op.EraseCustomerPII(ctx, cust)
	require.Equal(t, http.StatusForbidden, client.StatusOf(err))
	_, err = admin.EraseCustomerPII(ctx, customer())
	require.Equal(t, http.StatusNotFound, client.StatusOf(err))
	_, err = admin.EraseCustomerPII(ctx, "-bad")
	require.Equal(t, http.StatusBadRequest, client.StatusOf(err))
	_, err = admin.EraseCustomerPII(ctx, cust)
	require.NoError(t, err)

	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI)
	require.NoError(t, err)
	for path, item := range doc.Paths.Map() {
		for method, operation := range item.Operations() {
			got := c.statuses(operation.OperationID)
			assert.True(t, slices.ContainsFunc(got, func(s int) bool { return s >= 200 && s < 300 }),
				"%s %s (%s) never answered a 2xx here: %v", method, path, operation.OperationID, got)
		}
	}
}
