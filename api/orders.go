package api

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/labstack/echo/v4"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/catalog"
	"github.com/orderflow/orderflow/activities/orders"
	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/cache"
	"github.com/orderflow/orderflow/workflows/order"
)

// Idempotency headers (IETF draft "The Idempotency-Key HTTP Header Field").
const (
	HeaderIdempotencyKey = "Idempotency-Key"
	HeaderReplayed       = "Idempotent-Replayed"
)

const opCreateOrder = "create_order"

// Accepted is the 202 body of POST /v1/orders.
type Accepted struct {
	OrderID   string `json:"order_id"`
	Status    string `json:"status"`
	StatusURL string `json:"status_url"`
}

// placeOrder accepts an order and starts its saga. The Idempotency-Key is
// claimed in PostgreSQL together with a fresh order id before anything starts;
// every request carrying the key then starts workflow order-<id> with the
// USE_EXISTING conflict policy, so concurrent duplicates converge on one saga
// and one answer.
func (s *Server) placeOrder(c echo.Context) error {
	key, err := idempotencyKey(c.Request().Header)
	if err != nil {
		return err
	}
	claims, ok := auth.FromContext(c.Request().Context())
	if !ok {
		return auth.ErrMissingToken
	}
	req, err := decodeOrderRequest(c, s.BodyLimit, claims.Subject)
	if err != nil {
		return err
	}
	if err := s.refuseSynthetic(req.Items); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), requestTimeout)
	defer cancel()
	priced, err := s.priceOrder(ctx, req.Items)
	if err != nil {
		return err
	}
	total, currency := priced.TotalCents, priced.Currency

	orderID := uuid.NewString()
	saga, err := s.sealStart(orderID, &req, priced)
	if err != nil {
		return err
	}
	claim, err := s.claimKey(ctx, req.CustomerID, key, requestHash(&req), orderID, saga)
	if err != nil {
		return err
	}
	setOrder(c, claim.orderID)
	if !claim.started {
		if err := s.startOrDefer(ctx, claim.orderID, key, &req, total, currency); err != nil {
			return err
		}
	}
	if claim.replayed {
		s.meters.replays.Add(ctx, 1)
		c.Response().Header().Set(HeaderReplayed, "true")
	} else {
		s.meters.placed.Add(ctx, 1)
	}
	c.Response().Header().Set(echo.HeaderLocation, "/v1/orders/"+claim.orderID)
	return c.JSONBlob(claim.status, claim.body)
}

type keyClaim struct {
	orderID  string
	status   int
	body     []byte
	started  bool // the saga has written the order
	replayed bool
}

// claimKey records the key with the new order id and the saga's sealed
// start, or returns the first request's claim. The same key with a different
// body is refused with 422. Keys are scoped by (customer, operation, key),
// and the customer is the token's subject, so one caller's keys never collide
// with another's. Either way the record is durable where AcceptCommit asks
// (both regions) before it returns; when it cannot be made so in time the
// answer is a 503, never a 2xx.
func (s *Server) claimKey(ctx context.Context, customerID, key string, hash []byte, orderID string, saga []byte) (keyClaim, error) {
	body, _ := json.Marshal(Accepted{OrderID: orderID, Status: orderflow.StatusPending, StatusURL: "/v1/orders/" + orderID})
	// An expired key is taken over as if it were new.
	store := s.ordersStore()
	claimed, err := store.ClaimKey(ctx, customerID, opCreateOrder, key,
		orders.Acceptance{OrderID: orderID, RequestHash: hash, Status: http.StatusAccepted, Body: body, Saga: saga}, s.IdempotencyTTL)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) {
			s.orderLog(ctx, orderID).Warn("acceptance record not durable in time", zap.Error(err))
			return keyClaim{}, unavailable("acceptance_not_durable",
				"the order could not be recorded durably in time; retry with the same Idempotency-Key")
		}
		return keyClaim{}, err
	}
	if claimed {
		return keyClaim{orderID: orderID, status: http.StatusAccepted, body: body}, nil
	}
	// A replay. The saga's first step writes the order, so an order row means
	// the saga exists and Temporal need not be asked again (its record may
	// even be past retention); without one the start is repeated, which
	// USE_EXISTING makes harmless.
	first, err := store.LoadKey(ctx, customerID, opCreateOrder, key)
	if err != nil {
		return keyClaim{}, err
	}
	if string(first.RequestHash) != string(hash) {
		return keyClaim{}, newError(http.StatusUnprocessableEntity, "idempotency_key_reused",
			"this Idempotency-Key was used with a different request body")
	}
	return keyClaim{orderID: first.OrderID, status: first.Status, body: first.Body, started: first.Started, replayed: true}, nil
}

// orderInput is the saga's input for the request.
func (s *Server) orderInput(orderID string, req *PlaceOrderRequest) order.Input {
	return s.sagaInput(order.Input{CreateOrderInput: orders.CreateOrderInput{
		OrderID: orderID, CustomerID: req.CustomerID, Email: req.Email, Items: orderItems(req.Items), ShippingAddress: req.ShippingAddress,
	}, PaymentToken: req.PaymentToken})
}

// sealStart seals the saga's start for the acceptance record, which a
// deferred start (docs/resilience.md) and a re-drive after a region's loss
// (docs/regions.md) open; nil when the gateway has no PII keys (tests that
// do neither).
func (s *Server) sealStart(orderID string, req *PlaceOrderRequest, priced catalog.Priced) ([]byte, error) {
	if s.PII == nil {
		return nil, nil
	}
	return orders.SealStart(s.PII, orderID, order.Start{Input: s.orderInput(orderID, req), TotalCents: priced.TotalCents,
		Currency: priced.Currency, Lines: priced.Lines})
}

// startSaga starts order-<id>, or attaches to it when it already runs or
// ran; an error is Temporal's (logged).
func (s *Server) startSaga(ctx context.Context, orderID string, req *PlaceOrderRequest, totalCents int64, currency string) error {
	// The catalog's price now; the saga corrects it if a price changes
	// before it writes the order.
	opts := s.sagaOptions(orderID, req.CustomerID, order.OrderTotalCentsKey.ValueSet(totalCents))
	opts.StaticSummary, opts.StaticDetails = sagaSummary(orderID, req, totalCents, currency), s.sagaDetails(req, totalCents, currency)
	_, err := s.Temporal.ExecuteWorkflow(ctx, opts, order.Workflow, s.orderInput(orderID, req))
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if err != nil && !errors.As(err, &started) {
		s.orderLog(ctx, orderID).Warn("start order saga", zap.Error(err))
		return err
	}
	return nil
}

// sagaOptions are order.StartOptions in the gateway's region.
func (s *Server) sagaOptions(orderID, customerID string, extra ...temporal.SearchAttributeUpdate) client.StartWorkflowOptions {
	return order.StartOptions(orderID, customerID, s.Region, s.EagerStart, extra...)
}

// maxDetailLines bounds the lines a saga's details list; the rest are counted.
const maxDetailLines = 5

// sagaSummary is the one line the Web UI and `temporal workflow describe`
// show for an order's saga, e.g. "Order 0b6f… — 2 items, USD 12.34". It is
// stored once, in the start event, and carries no personal data.
func sagaSummary(orderID string, req *PlaceOrderRequest, totalCents int64, currency string) string {
	units := 0
	for _, it := range req.Items {
		units += it.Quantity
	}
	noun := "items"
	if units == 1 {
		noun = "item"
	}
	return fmt.Sprintf("Order %s — %d %s, %s", orderID, units, noun, money(totalCents, currency))
}

// sagaDetails is the saga's markdown details: customer, region, price at
// order time and the first lines, on two lines (the Web UI shows them in a
// frame about five lines high). The status lives in the workflow's current
// details, which the saga keeps up to date.
func (s *Server) sagaDetails(req *PlaceOrderRequest, totalCents int64, currency string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "**Customer:** `%s` · **Region:** `%s` · **Total:** %s  \n**Lines:** ", req.CustomerID, s.Region, money(totalCents, currency))
	for i, it := range req.Items {
		if i == maxDetailLines {
			fmt.Fprintf(&b, " and %d more", len(req.Items)-i)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "`%s` × %d", it.SKU, it.Quantity)
	}
	return b.String()
}

// money formats cents as "USD 12.34".
func money(cents int64, currency string) string {
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	return fmt.Sprintf("%s %s%d.%02d", currency, sign, cents/100, cents%100)
}

// sagaInput completes an Order saga's input with what the gateway sets for
// every saga: its region and the payment parking schedule.
func (s *Server) sagaInput(in order.Input) order.Input {
	in.Region = s.Region
	in.PaymentDeadline, in.PaymentRetryInitial, in.PaymentRetryMax = s.Payment.Deadline, s.Payment.RetryInitial, s.Payment.RetryMax
	in.Fulfill, in.ShipmentSLA = s.Fulfillment.Enabled, s.Fulfillment.ShipmentSLA
	return in
}

// requestHash fingerprints the decoded request, so formatting differences in
// the JSON do not count as a different request.
func requestHash(req *PlaceOrderRequest) []byte {
	b, _ := json.Marshal(req)
	h := sha256.Sum256(b)
	return h[:]
}

// priceOrder prices the order's lines at catalog prices, with the total and
// the first line's currency (the saga refuses an order that mixes them),
// refusing one that names a SKU the catalog does not have.
func (s *Server) priceOrder(ctx context.Context, items []OrderItem) (catalog.Priced, error) {
	skus := make([]string, 0, len(items))
	for _, it := range items {
		skus = append(skus, it.SKU)
	}
	found, err := s.products(ctx, skus)
	if err != nil {
		return catalog.Priced{}, err
	}
	priced := catalog.PriceFrom(found, orderItems(items))
	if len(priced.Unknown) > 0 {
		d := make([]Detail, len(priced.Unknown))
		for n, i := range priced.Unknown {
			d[n] = Detail{Field: fmt.Sprintf("items[%d].sku", i), Issue: "unknown sku " + items[i].SKU}
		}
		return catalog.Priced{}, newError(http.StatusUnprocessableEntity, "unknown_sku", "the order names SKUs that are not in the catalog", d...)
	}
	return priced, nil
}

// orderItems are the request's items in the domain's words.
func orderItems(items []OrderItem) []orderflow.Item {
	out := make([]orderflow.Item, len(items))
	for i, it := range items {
		out[i] = orderflow.Item{SKU: it.SKU, Quantity: it.Quantity}
	}
	return out
}

// OrderJSON is an order as the API shows it.
type OrderJSON = orderflow.Order

// LineJSON is one order line.
type LineJSON = orderflow.Line

// HistoryJSON is one status change.
type HistoryJSON = orderflow.StatusChange

func (s *Server) getOrder(c echo.Context) error {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return newError(http.StatusNotFound, "order_not_found", "no such order")
	}
	setOrder(c, id.String())
	ctx, cancel := context.WithTimeout(c.Request().Context(), requestTimeout)
	defer cancel()
	o, err := s.cachedOrder(ctx, id.String())
	if err != nil {
		return err
	}
	if o == nil {
		// Accepted moments ago: the saga has not written the order yet, or
		// its start was deferred.
		if o, err = s.deferredView(ctx, id.String()); err != nil {
			return err
		}
		if o == nil {
			return s.orderFromSaga(c, ctx, id.String())
		}
	}
	if !mayAccess(c, o.CustomerID) {
		return errOrderNotFound
	}
	return c.JSON(http.StatusOK, o)
}

// errOrderNotFound answers for an order that does not exist and for another
// customer's, so ids cannot be probed.
var errOrderNotFound = newError(http.StatusNotFound, "order_not_found", "no such order")

// mayAccess reports whether the request's caller may read and cancel an
// order of customer: an operator (or admin) any, a customer its own.
func mayAccess(c echo.Context, customer string) bool {
	claims, ok := auth.FromContext(c.Request().Context())
	return ok && (claims.Has(auth.RoleOperator) || claims.Subject == customer)
}

// orderOwner returns the customer of an order, "" when there is no such
// order: from the record, or, before the saga wrote it, from the saga's
// CustomerId search attribute (which needs no worker to answer).
func (s *Server) orderOwner(ctx context.Context, id string) (string, error) {
	o, err := s.cachedOrder(ctx, id)
	if err != nil {
		return "", err
	}
	if o != nil {
		return o.CustomerID, nil
	}
	if m, found, err := s.deferredMark(ctx, id); err != nil || found {
		return m.CustomerID, err
	}
	d, err := s.Temporal.DescribeWorkflow(ctx, order.WorkflowID(id), "")
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return "", nil
	}
	if err != nil {
		s.orderLog(ctx, id).Warn("describe order saga", zap.Error(err))
		return "", unavailable("service_unavailable", "the order cannot be read now; retry")
	}
	owner, _ := d.TypedSearchAttributes.GetKeyword(order.CustomerIDKey)
	return owner, nil
}

// cachedOrder returns the order's view from the hot-order tier
// (CACHE_ORDER_TTL, 10 minutes), or loads it from PostgreSQL and caches it.
// Every status write deletes the key; the lease keeps a load that raced such
// a write from caching what it read before the write.
func (s *Server) cachedOrder(ctx context.Context, id string) (*OrderJSON, error) {
	var o OrderJSON
	hit, lease := cache.GetLeased(ctx, s.Cache, s.warner(), cache.OrderKey(id), &o, requestTimeout)
	cache.Record(ctx, cache.TierOrder, hit)
	if hit {
		return &o, nil
	}
	loaded, err := s.loadOrder(ctx, id)
	if err != nil || loaded == nil {
		return loaded, err
	}
	cache.FillLeased(ctx, s.Cache, s.warner(), lease, loaded, ttl(s.Tiers.OrderTTL, cache.OrderTTL))
	return loaded, nil
}

// ordersStore is the orders area's store over the gateway's pool.
func (s *Server) ordersStore() orders.Store {
	return orders.Store{DB: s.DB, AcceptCommit: s.AcceptCommit}
}

// loadOrder reads the order's record as the API shows it; nil, nil when
// the saga has not written it.
func (s *Server) loadOrder(ctx context.Context, id string) (*OrderJSON, error) {
	r, err := s.ordersStore().Order(ctx, id)
	if err != nil || r == nil {
		return nil, err
	}
	o := OrderJSON{OrderID: r.OrderID, CustomerID: r.CustomerID, Status: r.Status, TotalCents: r.TotalCents, Currency: r.Currency,
		FailureReason: r.FailureReason, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
		Items: make([]LineJSON, len(r.Lines)), History: make([]HistoryJSON, len(r.History))}
	for i, l := range r.Lines {
		o.Items[i] = LineJSON(l)
	}
	for i, h := range r.History {
		o.History[i] = HistoryJSON(h)
	}
	return &o, nil
}

func (s *Server) orderFromSaga(c echo.Context, ctx context.Context, id string) error {
	res, err := s.Temporal.QueryWorkflow(ctx, order.WorkflowID(id), "", order.StatusQuery)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return newError(http.StatusNotFound, "order_not_found", "no such order")
	}
	if err != nil {
		// Say nothing of another customer's order, even that it exists.
		if owner, oerr := s.orderOwner(ctx, id); oerr == nil && !mayAccess(c, owner) {
			return errOrderNotFound
		}
		s.orderLog(ctx, id).Warn("query order saga", zap.Error(err))
		return unavailable("order_not_ready", "the order was accepted but cannot be read yet")
	}
	// The saga may have written the record while the query ran; it is the
	// fuller answer (it has the status history).
	if o, err := s.loadOrder(ctx, id); err == nil && o != nil {
		if !mayAccess(c, o.CustomerID) {
			return errOrderNotFound
		}
		return c.JSON(http.StatusOK, o)
	}
	var v order.View
	if err := res.Get(&v); err != nil {
		return fmt.Errorf("decode order view: %w", err)
	}
	if !mayAccess(c, v.CustomerID) {
		return errOrderNotFound
	}
	o := OrderJSON{OrderID: id, CustomerID: v.CustomerID, Status: v.Status, TotalCents: v.TotalCents, Currency: v.Currency,
		CreatedAt: v.UpdatedAt, UpdatedAt: v.UpdatedAt, Items: []LineJSON{}, History: []HistoryJSON{}}
	if v.FailureReason != "" {
		o.FailureReason = &v.FailureReason
	}
	for _, l := range v.Lines {
		o.Items = append(o.Items, LineJSON(l))
	}
	return c.JSON(http.StatusOK, o)
}

// recordReadBudget is what a cancel keeps of requestTimeout to answer from
// the order's record when the saga could not be reached.
const recordReadBudget = time.Second

// CancelAccepted is the 202 body of POST /v1/orders/{id}/cancel.
type CancelAccepted struct {
	OrderID         string `json:"order_id"`
	Status          string `json:"status"`
	CancelRequested bool   `json:"cancel_requested"`
	StatusURL       string `json:"status_url"`
}

// cancelOrder asks the saga to stop through its cancel Update, which the
// workflow refuses once the order is being confirmed; that refusal is a 409.
func (s *Server) cancelOrder(c echo.Context) error {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return newError(http.StatusNotFound, "order_not_found", "no such order")
	}
	oid := id.String()
	setOrder(c, oid)
	ctx, cancel := context.WithTimeout(c.Request().Context(), requestTimeout)
	defer cancel()
	claims, ok := auth.FromContext(ctx)
	if !ok {
		return auth.ErrMissingToken
	}
	if !claims.Has(auth.RoleOperator) {
		owner, err := s.orderOwner(ctx, oid)
		if err != nil {
			return err
		}
		if owner == "" || owner != claims.Subject {
			return errOrderNotFound
		}
	} else if err := s.auditFirst(c, ctx, actionOrderCancel, "order:"+oid, nil); err != nil {
		// An operator's cancel is on record before the saga hears of it.
		return err
	}
	if _, found, err := s.deferredMark(ctx, oid); err != nil || found {
		if err != nil {
			return err
		}
		// Accepted, its saga not started yet: the starter starts it within
		// moments, and the cancel can be delivered then.
		return unavailable("order_starting", "the order was accepted and its processing is starting; retry the cancel")
	}
	// Wait until the saga accepted (or its validator refused) the cancel.
	// Its completion is reported with the workflow task that ran it, which
	// may also be running the compensations, and those can wait on a
	// provider that is down: an accepted cancel is a 202 without them.
	// The update leaves the request's last recordReadBudget for reading the
	// record when it fails (even after the caller hung up), so the whole
	// request stays within requestTimeout.
	deadline, _ := ctx.Deadline()
	uctx, ucancel := context.WithDeadline(ctx, deadline.Add(-recordReadBudget))
	defer ucancel()
	h, err := s.Temporal.UpdateWorkflow(uctx, client.UpdateWorkflowOptions{
		WorkflowID: order.WorkflowID(oid), UpdateName: order.CancelUpdate,
		Args: []any{order.CancelRequest{}}, WaitForStage: client.WorkflowUpdateStageAccepted,
	})
	var res order.CancelResult
	if err == nil {
		gctx, gcancel := context.WithTimeout(uctx, time.Second)
		err = h.Get(gctx, &res)
		gcancel()
		var pending *client.WorkflowUpdateServiceTimeoutOrCanceledError
		if err != nil && uctx.Err() == nil && errors.As(err, &pending) {
			// Accepted, still running: the record has the status.
			if o, lerr := s.loadOrder(ctx, oid); lerr == nil && o != nil {
				res.Status = o.Status
			}
			err = nil
		}
	}
	if err == nil {
		return c.JSON(http.StatusAccepted, CancelAccepted{OrderID: oid, Status: res.Status, CancelRequested: true, StatusURL: "/v1/orders/" + oid})
	}
	var app *temporal.ApplicationError
	if errors.As(err, &app) && app.Type() == string(orderflow.AlreadyShipped) {
		return alreadyShipped(oid)
	}
	if errors.As(err, &app) && app.Type() == string(orderflow.TooLateToCancel) {
		var status string
		_ = app.Details(&status)
		return newError(http.StatusConflict, "too_late_to_cancel", "the order is "+status+" and can no longer be cancelled")
	}
	var notFound *serviceerror.NotFound
	delivered := errors.As(err, &notFound) || strings.Contains(err.Error(), "already completed")
	// The saga has ended (or never existed): answer from the record. An
	// update that timed out may also have raced the saga's end, which the
	// record then shows; otherwise the client is asked to retry.
	rctx, rcancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	defer rcancel()
	o, lerr := s.loadOrder(rctx, oid)
	if !delivered && (lerr != nil || o == nil || !orderflow.Terminal(o.Status)) {
		s.orderLog(ctx, oid).Warn("cancel order", zap.Error(err))
		return unavailable("service_unavailable", "the cancel could not be delivered; retry")
	}
	if lerr != nil {
		return lerr
	}
	switch {
	case o == nil:
		return newError(http.StatusNotFound, "order_not_found", "no such order")
	case o.Status == orderflow.StatusCancelled:
		return c.JSON(http.StatusAccepted, CancelAccepted{OrderID: oid, Status: o.Status, CancelRequested: true, StatusURL: "/v1/orders/" + oid})
	case o.Status == orderflow.StatusDelivered, o.Status == orderflow.StatusShipped, o.Status == orderflow.StatusPartiallyShipped:
		return alreadyShipped(oid)
	}
	return newError(http.StatusConflict, "too_late_to_cancel", "the order is "+o.Status+" and can no longer be cancelled")
}

// History page sizes of GET /v1/orders.
const (
	defaultHistoryLimit = 20
	maxHistoryLimit     = 100
)

// OrderSummaryJSON is an order as the history lists it.
type OrderSummaryJSON = orderflow.OrderSummary

// OrderPageJSON is the answer of GET /v1/orders: a page of the history,
// newest first. Next is the after= of the following page, absent on the
// last one.
type OrderPageJSON struct {
	Orders []OrderSummaryJSON `json:"orders"`
	Next   string             `json:"next,omitempty"`
}

// listOrders is GET /v1/orders?status=&limit=&after=&customer_id=: the
// caller's orders, newest first, a page at a time. Operators (and admins)
// may name any customer; a customer naming another is refused with 403, as
// placing an order for another is. Orders accepted but not yet written by
// their saga appear once written, moments later.
func (s *Server) listOrders(c echo.Context) error {
	claims, ok := auth.FromContext(c.Request().Context())
	if !ok {
		return auth.ErrMissingToken
	}
	p, err := queryParams(c, "status", "limit", "after", "customer_id")
	if err != nil {
		return err
	}
	q := orders.HistoryQuery{CustomerID: claims.Subject, Status: p["status"]}
	if id, named := p["customer_id"]; named {
		if !customerPattern.MatchString(id) {
			return newError(http.StatusBadRequest, "invalid_request", "customer_id is not a customer id",
				Detail{Field: "customer_id", Issue: "1-128 characters of letters, digits and ._:@-"})
		}
		if id != claims.Subject && !claims.Has(auth.RoleOperator) {
			return newError(http.StatusForbidden, "customer_mismatch", "customers list only their own orders",
				Detail{Field: "customer_id", Issue: "not the token's subject"})
		}
		q.CustomerID = id
	}
	if _, given := p["status"]; given && !slices.Contains(orderflow.Statuses(), q.Status) {
		return newError(http.StatusBadRequest, "invalid_request", "status is not an order status",
			Detail{Field: "status", Issue: "one of " + strings.Join(orderflow.Statuses(), ", ")})
	}
	if q.Limit, q.After, err = readPage(p, defaultHistoryLimit, maxHistoryLimit, parseOrderCursor); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), requestTimeout)
	defer cancel()
	page, err := s.ordersStore().History(ctx, q)
	if err != nil {
		return err
	}
	out := OrderPageJSON{Orders: make([]OrderSummaryJSON, len(page.Orders)), Next: orderCursor(page.Next)}
	for i, o := range page.Orders {
		out.Orders[i] = OrderSummaryJSON(o)
	}
	return c.JSON(http.StatusOK, out)
}
