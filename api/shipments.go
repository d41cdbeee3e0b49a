package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/catalog"
	"github.com/orderflow/orderflow/activities/fulfillment"
	"github.com/orderflow/orderflow/activities/fulfillment/wire"
	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/workflows/order"
)

// fulfillmentRoutes registers the routes of the order's life after
// CONFIRMED (docs/fulfillment.md). The carrier's event route sits outside
// the bearer-token group: the carrier proves itself with the body's
// HMAC signature (wire.SignatureHeader), as carriers' webhooks do.
func (s *Server) fulfillmentRoutes(e *echo.Echo, v1 *echo.Group, anyone echo.MiddlewareFunc) {
	e.POST("/v1/shipments/:id/events", s.carrierEvent)
	v1.GET("/orders/:id/shipments", s.orderShipments, anyone)
	v1.POST("/stock/transfers", s.transferStock, auth.RequireRole(auth.RoleOperator), s.idempotent)
	v1.POST("/orders/:id/returns", s.createReturn, anyone, s.idempotent)
	v1.GET("/orders/:id/returns", s.orderReturns, anyone)
	v1.GET("/returns/:id", s.getReturn, anyone)
	v1.POST("/returns/:id/receive", s.receiveReturn, auth.RequireRole(auth.RoleOperator), s.idempotent)
}

// alreadyShipped answers a cancel once a shipment of the order has left:
// the goods come back as a return.
func alreadyShipped(orderID string) *Error {
	return newError(http.StatusConflict, "already_shipped",
		"a shipment of the order has left its warehouse, so it can no longer be cancelled; return the goods instead",
		Detail{Field: "returns", Issue: "POST /v1/orders/" + orderID + "/returns"})
}

// CarrierEventRequest is the body of POST /v1/shipments/{id}/events.
type CarrierEventRequest struct {
	EventID        string    `json:"event_id"`
	Type           string    `json:"type"`
	At             time.Time `json:"at"`
	TrackingNumber string    `json:"tracking_number"`
}

// CarrierEventAccepted is the 202 body of POST /v1/shipments/{id}/events.
// Status is "accepted" when the order's saga took the event, "ignored"
// when the order has ended or was cancelled (the event is recorded all
// the same); Duplicate says the event id was recorded before.
type CarrierEventAccepted struct {
	EventID    string `json:"event_id"`
	ShipmentID string `json:"shipment_id"`
	Status     string `json:"status"`
	Duplicate  bool   `json:"duplicate"`
}

var (
	eventIDPattern  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)
	trackingPattern = regexp.MustCompile(`^[A-Za-z0-9-]{0,64}$`)
)

// carrierEvent records a carrier's signed event once per event id and hands
// it to the order's saga (CarrierEventUpdate, with the event id as the update
// id). A missing, wrong or stale signature is 401, an unknown shipment 404, a
// bad body 400; a re-sent event is a 202 like the first.
func (s *Server) carrierEvent(c echo.Context) error {
	body, err := readJSON(c, s.BodyLimit)
	if err != nil {
		return err
	}
	secret := []byte(s.Fulfillment.WebhookSecret)
	tolerance := s.Fulfillment.EventTolerance
	if tolerance <= 0 {
		tolerance = 5 * time.Minute
	}
	if err := wire.Verify(secret, c.Request().Header.Get(wire.SignatureHeader), body, time.Now(), tolerance); err != nil {
		return &Error{Status: http.StatusUnauthorized, Code: "bad_signature", Message: "the carrier signature is missing, wrong or stale: " + err.Error(),
			Challenge: `HMAC-SHA256 header="` + wire.SignatureHeader + `"`}
	}
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return errShipmentNotFound
	}
	var req CarrierEventRequest
	if err := decodeBody(body, &req); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	// The event id is the carrier's Idempotency-Key: a re-sent event gets
	// the first one's answer, marked as a duplicate; another event under
	// its id is 422.
	k := requestKey{scope: "carrier:" + id.String(), operation: "carrier_event", key: req.EventID,
		hash: fingerprint(http.MethodPost, c.Request().URL.Path, body), replayed: markDuplicate}
	return s.once(c, k, func() error { return s.handCarrierEvent(c, id, req) })
}

// markDuplicate sets duplicate in a stored carrier event answer.
func markDuplicate(body []byte) []byte {
	var a CarrierEventAccepted
	if json.Unmarshal(body, &a) != nil {
		return body
	}
	a.Duplicate = true
	out, err := json.Marshal(a)
	if err != nil {
		return body
	}
	return out
}

// handCarrierEvent records a verified carrier event and hands it to the
// order's saga.
func (s *Server) handCarrierEvent(c echo.Context, id uuid.UUID, req CarrierEventRequest) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), requestTimeout)
	defer cancel()
	store := fulfillment.Store{DB: s.DB}
	orderID, err := store.ShipmentOrder(ctx, id.String())
	if err != nil {
		return err
	}
	if orderID == "" {
		return errShipmentNotFound
	}
	setOrder(c, orderID)
	ev := wire.Event{EventID: req.EventID, Type: req.Type, At: req.At.UTC(), TrackingNumber: req.TrackingNumber}
	fresh, err := store.RecordEvent(ctx, id.String(), ev)
	if err != nil {
		return err
	}
	out := CarrierEventAccepted{EventID: req.EventID, ShipmentID: id.String(), Status: "accepted", Duplicate: !fresh}
	_, err = s.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: order.WorkflowID(orderID), UpdateID: "carrier-" + req.EventID, UpdateName: order.CarrierEventUpdate,
		Args:         []any{order.CarrierEvent{EventID: ev.EventID, ShipmentID: id.String(), Type: ev.Type, At: ev.At, TrackingNumber: ev.TrackingNumber}},
		WaitForStage: client.WorkflowUpdateStageAccepted,
	})
	var app *temporal.ApplicationError
	var notFound *serviceerror.NotFound
	switch {
	case err == nil:
	case errors.As(err, &app), errors.As(err, &notFound), isCompleted(err):
		// The order ended or was cancelled: the event is on record and
		// changes nothing.
		out.Status = "ignored"
	default:
		s.orderLog(ctx, orderID).Warn("hand carrier event to the saga", zap.String("event_id", req.EventID), zap.Error(err))
		return unavailable("service_unavailable", "the event could not be handed over; send it again")
	}
	return c.JSON(http.StatusAccepted, out)
}

var errShipmentNotFound = newError(http.StatusNotFound, "shipment_not_found", "no such shipment")

// isCompleted reports whether the update found the saga ended.
func isCompleted(err error) bool { return strings.Contains(err.Error(), "already completed") }

func (r CarrierEventRequest) validate() error {
	var details []Detail
	if !eventIDPattern.MatchString(r.EventID) {
		details = append(details, Detail{Field: "event_id", Issue: "required: 1-128 letters, digits, '.', '_', ':' or '-'"})
	}
	if !wire.ValidEvent(r.Type) {
		details = append(details, Detail{Field: "type", Issue: "must be picked_up, in_transit, delivered or lost"})
	}
	if r.At.IsZero() {
		details = append(details, Detail{Field: "at", Issue: "required: an RFC 3339 time"})
	}
	if !trackingPattern.MatchString(r.TrackingNumber) {
		details = append(details, Detail{Field: "tracking_number", Issue: "at most 64 letters, digits or '-'"})
	}
	if len(details) > 0 {
		return newError(http.StatusBadRequest, "invalid_request", "the carrier event is invalid", details...)
	}
	return nil
}

// ShipmentJSON is one shipment of GET /v1/orders/{id}/shipments.
type ShipmentJSON = orderflow.Shipment

// ShipmentsJSON is the body of GET /v1/orders/{id}/shipments.
type ShipmentsJSON struct {
	OrderID   string         `json:"order_id"`
	Shipments []ShipmentJSON `json:"shipments"`
}

func (s *Server) orderShipments(c echo.Context) error {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return errOrderNotFound
	}
	oid := id.String()
	setOrder(c, oid)
	ctx, cancel := context.WithTimeout(c.Request().Context(), requestTimeout)
	defer cancel()
	owner, err := s.orderOwner(ctx, oid)
	if err != nil {
		return err
	}
	if owner == "" || !mayAccess(c, owner) {
		return errOrderNotFound
	}
	list, err := fulfillment.Store{DB: s.DB}.Shipments(ctx, oid)
	if err != nil {
		return err
	}
	out := ShipmentsJSON{OrderID: oid, Shipments: make([]ShipmentJSON, len(list))}
	for i, r := range list {
		out.Shipments[i] = ShipmentJSON{ShipmentID: r.ShipmentID, Warehouse: r.Warehouse, Status: r.Status, TrackingNumber: r.TrackingNumber,
			Items: r.Items, ValueCents: r.ValueCents, LeftAt: r.LeftAt, DeliveredAt: r.DeliveredAt}
	}
	return c.JSON(http.StatusOK, out)
}

// TransferRequest is the body of POST /v1/stock/transfers.
type TransferRequest struct {
	SKU      string `json:"sku"`
	From     string `json:"from"`
	To       string `json:"to"`
	Quantity int    `json:"quantity"`
}

// TransferJSON answers a transfer with the SKU's stock per warehouse.
type TransferJSON struct {
	SKU        string                   `json:"sku"`
	Warehouses []catalog.WarehouseStock `json:"warehouses"`
}

var warehousePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// transferStock moves unallocated units of a SKU between warehouses (the
// destination is created when new); the SKU's stock is unchanged.
func (s *Server) transferStock(c echo.Context) error {
	var req TransferRequest
	if err := decodeJSON(c, s.BodyLimit, &req); err != nil {
		return err
	}
	var details []Detail
	if !skuPattern.MatchString(req.SKU) {
		details = append(details, Detail{Field: "sku", Issue: "required: a SKU"})
	}
	for _, w := range []struct{ field, name string }{{"from", req.From}, {"to", req.To}} {
		if !warehousePattern.MatchString(w.name) {
			details = append(details, Detail{Field: w.field, Issue: "required: 1-32 lowercase letters, digits, '_' or '-'"})
		}
	}
	if req.From == req.To && req.From != "" {
		details = append(details, Detail{Field: "to", Issue: "must differ from from"})
	}
	if req.Quantity < 1 || req.Quantity > 1_000_000 {
		details = append(details, Detail{Field: "quantity", Issue: fmt.Sprintf("must be between 1 and %d", 1_000_000)})
	}
	if len(details) > 0 {
		return newError(http.StatusBadRequest, "invalid_request", "the transfer is invalid", details...)
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), requestTimeout)
	defer cancel()
	actx, act, err := s.auditInTx(c, ctx, actionStockTransfer, "product:"+req.SKU, req)
	if err != nil {
		return err
	}
	store := s.catalogStore()
	err = store.Transfer(actx, req.SKU, req.From, req.To, req.Quantity)
	if err == nil {
		err = act.Done(ctx)
	}
	switch {
	case errors.Is(err, catalog.ErrNoSuchSKU):
		return newError(http.StatusNotFound, "product_not_found", "no such product")
	case errors.Is(err, catalog.ErrTransferTooLarge):
		return newError(http.StatusConflict, "insufficient_stock", "the source warehouse has fewer unallocated units",
			Detail{Field: "quantity", Issue: err.Error()})
	case err != nil:
		return err
	}
	list, err := store.Warehouses(ctx, req.SKU)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, TransferJSON{SKU: req.SKU, Warehouses: list})
}
