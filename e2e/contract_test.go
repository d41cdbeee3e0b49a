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
	"github.com/orderflow/orderflow/activities/fulfillment/wire"
	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/api"
	"github.com/orderflow/orderflow/client"
	"github.com/orderflow/orderflow/devtools/testkit"
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

	// The audit log of the acts above: admins only; a bad query is 400.
	status, _ = c.get(s, s.tok.Bearer("dpo", auth.RoleAdmin), "/v1/audit?target=product:"+sku+"&limit=1")
	require.Equal(t, http.StatusOK, status)
	status, _ = c.get(s, s.tok.Operator(), "/v1/audit")
	require.Equal(t, http.StatusForbidden, status)
	status, code := c.get(s, s.tok.Bearer("dpo", auth.RoleAdmin), "/v1/audit?limit=0")
	require.Equal(t, http.StatusBadRequest, status, code)

	c.operatorRoutes(s)

	// The fulfillment routes answer on a stack that fulfils its orders:
	// TestEveryFulfillmentRouteAnswersAsTheOpenAPIDocumentSays.
	// The payment providers' webhooks answer on a stack whose provider
	// signs them: TestPaymentWebhookRouteAnswersAsTheOpenAPIDocumentSays.
	c.answeredEvery2xx(func(tags []string) bool {
		return !slices.Contains(tags, fulfillmentTag) && !slices.Contains(tags, paymentsTag)
	})
}

// fulfillmentTag tags the operations of fulfillment in api/openapi.json.
const fulfillmentTag = "fulfillment"

// answeredEvery2xx asserts that each documented operation whose tags pass
// keep answered a 2xx at least once through the contract.
func (c *contract) answeredEvery2xx(keep func(tags []string) bool) {
	c.t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI)
	require.NoError(c.t, err)
	for path, item := range doc.Paths.Map() {
		for method, operation := range item.Operations() {
			if !keep(operation.Tags) {
				continue
			}
			got := c.statuses(operation.OperationID)
			assert.True(c.t, slices.ContainsFunc(got, func(s int) bool { return s >= 200 && s < 300 }),
				"%s %s (%s) never answered a 2xx here: %v", method, path, operation.OperationID, got)
		}
	}
}

// TestEveryFulfillmentRouteAnswersAsTheOpenAPIDocumentSays calls every
// fulfillment operation through the contract, for its successes and its
// usual refusals, on a stack whose sagas fulfil their orders through the
// real simulated carrier: stock transfers, an order followed to DELIVERED
// (each status it passes through read as an Order), its shipments (the
// carrier holding the order's shipping address), carrier events, a return
// received and refunded in part, and a cancel after confirmation.
func TestEveryFulfillmentRouteAnswersAsTheOpenAPIDocumentSays(t *testing.T) {
	f := newFulfilStack(t, "CARRIER_PICKUP_AFTER=200ms", "CARRIER_TRANSIT_AFTER=200ms", "CARRIER_DELIVER_AFTER=200ms")
	c := newContract(t)
	ctx := context.Background()
	cust := customer()
	buyer, op := c.client(f.stack, f.as(cust)), c.client(f.stack, f.tok.Operator())
	stranger, carrier := c.client(f.stack, f.as(customer())), c.client(f.stack, "")
	sku := testkit.Product(t, f.pool, 1250, 10)

	// Stock transfers (operators): moved, refused.
	_, err := op.TransferStock(ctx, client.Transfer{SKU: sku, From: "main", To: "contract-east", Quantity: 2})
	require.NoError(t, err)
	_, err = op.TransferStock(ctx, client.Transfer{SKU: sku, From: "contract-east", To: "main", Quantity: 2})
	require.NoError(t, err)
	_, err = op.TransferStock(ctx, client.Transfer{SKU: sku, From: "main", To: "main", Quantity: 1})
	require.Equal(t, http.StatusBadRequest, client.StatusOf(err))
	_, err = op.TransferStock(ctx, client.Transfer{SKU: "NO-SUCH-" + sku, From: "main", To: "contract-east", Quantity: 1})
	require.Equal(t, http.StatusNotFound, client.StatusOf(err))
	_, err = op.TransferStock(ctx, client.Transfer{SKU: sku, From: "main", To: "contract-east", Quantity: 11})
	require.Equal(t, http.StatusConflict, client.StatusOf(err))
	_, err = buyer.TransferStock(ctx, client.Transfer{SKU: sku, From: "main", To: "contract-east", Quantity: 1})
	require.Equal(t, http.StatusForbidden, client.StatusOf(err))

	// An order the simulated carrier delivers; every read of it on the way
	// goes through the contract.
	req := client.OrderRequest{Items: []client.Item{{SKU: sku, Quantity: 3}}, PaymentToken: payment.TokenVisa,
		Email: "contract@example.com", ShippingAddress: shipTo()}
	acc, _, err := buyer.PlaceOrder(ctx, req, uuid.NewString())
	require.NoError(t, err)
	wait, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	o, err := buyer.AwaitStatus(wait, acc.OrderID, 50*time.Millisecond, func(s string) bool { return s == orderflow.StatusDelivered })
	require.NoError(t, err)
	require.Equal(t, orderflow.StatusDelivered, o.Status)

	got, err := buyer.OrderShipments(ctx, acc.OrderID)
	require.NoError(t, err)
	require.Len(t, got.Shipments, 1)
	ship := got.Shipments[0].ShipmentID
	_, err = stranger.OrderShipments(ctx, acc.OrderID)
	require.Equal(t, http.StatusNotFound, client.StatusOf(err))
	assert.Equal(t, shipTo(), f.carrier.Parcel(t, ship).Address, "the carrier was handed the order's shipping address")

	// The carrier's events: a late one on record, re-sent, refused.
	late := wire.Event{EventID: "contract-" + uuid.NewString(), Type: wire.EventInTransit, At: time.Now().UTC()}
	secret := []byte(f.secret)
	first, err := carrier.PostCarrierEvent(ctx, ship, late, secret, time.Now())
	require.NoError(t, err)
	again, err := carrier.PostCarrierEvent(ctx, ship, late, secret, time.Now())
	require.NoError(t, err)
	assert.False(t, first.Duplicate)
	assert.True(t, again.Duplicate)
	other := late
	other.Type = wire.EventDelivered
	_, err = carrier.PostCarrierEvent(ctx, ship, other, secret, time.Now())
	require.Equal(t, http.StatusUnprocessableEntity, client.StatusOf(err), "another event under a recorded event id")
	_, err = carrier.PostCarrierEvent(ctx, ship, late, []byte("not-the-secret"), time.Now())
	require.Equal(t, http.StatusUnauthorized, client.StatusOf(err))
	_, err = carrier.PostCarrierEvent(ctx, uuid.NewString(), late, secret, time.Now())
	require.Equal(t, http.StatusNotFound, client.StatusOf(err))
	_, err = carrier.PostCarrierEvent(ctx, ship, wire.Event{EventID: "contract-bad", Type: "teleported", At: time.Now()}, secret, time.Now())
	require.Equal(t, http.StatusBadRequest, client.StatusOf(err))

	// Delivered: no cancel, a return instead; refusals first.
	_, err = buyer.CancelOrder(ctx, acc.OrderID)
	require.Equal(t, http.StatusConflict, client.StatusOf(err))
	one := []orderflow.Item{{SKU: sku, Quantity: 1}}
	_, err = buyer.CreateReturn(ctx, acc.OrderID, []orderflow.Item{{SKU: sku, Quantity: 4}}, "too many")
	require.Equal(t, http.StatusUnprocessableEntity, client.StatusOf(err))
	_, err = buyer.CreateReturn(ctx, acc.OrderID, nil, "nothing")
	require.Equal(t, http.StatusBadRequest, client.StatusOf(err))
	_, err = stranger.CreateReturn(ctx, acc.OrderID, one, "not mine")
	require.Equal(t, http.StatusNotFound, client.StatusOf(err))
	r, err := buyer.CreateReturn(ctx, acc.OrderID, one, "too small")
	require.NoError(t, err)
	_, err = buyer.GetReturn(ctx, r.ReturnID)
	require.NoError(t, err)
	_, err = stranger.GetReturn(ctx, r.ReturnID)
	require.Equal(t, http.StatusNotFound, client.StatusOf(err))
	require.Equal(t, http.StatusForbidden, client.StatusOf(buyer.ReceiveReturn(ctx, r.ReturnID)))
	require.Equal(t, http.StatusNotFound, client.StatusOf(op.ReceiveReturn(ctx, uuid.NewString())))
	require.NoError(t, op.ReceiveReturn(ctx, r.ReturnID))
	for r.Status != "refunded" {
		require.NoError(t, wait.Err(), "the return was not refunded in time")
		time.Sleep(50 * time.Millisecond)
		r, err = buyer.GetReturn(ctx, r.ReturnID)
		require.NoError(t, err)
	}
	require.NoError(t, op.ReceiveReturn(ctx, r.ReturnID), "receiving again answers the refunded return")
	assert.Contains(t, c.statuses("receiveReturn"), http.StatusOK)
	returned, err := buyer.ListReturns(ctx, acc.OrderID)
	require.NoError(t, err)
	assert.Equal(t, int64(1250), returned.RefundedCents, "one unit refunded of three")
	_, err = stranger.ListReturns(ctx, acc.OrderID)
	require.Equal(t, http.StatusNotFound, client.StatusOf(err))

	// Cancel after confirmation: accepted while nothing has left.
	f.carrier.SetSchedule(t, "1h", "1h", "1h", 0)
	acc2, _, err := buyer.PlaceOrder(ctx, req, uuid.NewString())
	require.NoError(t, err)
	_, err = buyer.AwaitStatus(wait, acc2.OrderID, 50*time.Millisecond, func(s string) bool { return s == orderflow.StatusFulfilling })
	require.NoError(t, err)
	_, err = buyer.CancelOrder(ctx, acc2.OrderID)
	require.NoError(t, err)
	o, err = buyer.AwaitStatus(wait, acc2.OrderID, 50*time.Millisecond, func(s string) bool { return s == orderflow.StatusCancelled })
	require.NoError(t, err)
	require.Equal(t, orderflow.StatusCancelled, o.Status)

	c.answeredEvery2xx(func(tags []string) bool { return slices.Contains(tags, fulfillmentTag) })
}
