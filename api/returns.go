package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/returns"
	"github.com/orderflow/orderflow/workflows/order"
	returnflow "github.com/orderflow/orderflow/workflows/returns"
)

// ReturnRequest is the body of POST /v1/orders/{id}/returns.
type ReturnRequest struct {
	Items  []OrderItem `json:"items"`
	Reason string      `json:"reason"`
}

// OrderReturnsJSON is the body of GET /v1/orders/{id}/returns: the order's
// returns and what has been refunded on it in all.
type OrderReturnsJSON struct {
	OrderID       string           `json:"order_id"`
	RefundedCents int64            `json:"refunded_cents"`
	Returns       []returns.Return `json:"returns"`
}

// maxReason bounds a return's reason, in bytes.
const maxReason = 500

func (r ReturnRequest) validate() error {
	var details []Detail
	if len(r.Items) == 0 || len(r.Items) > MaxLines {
		details = append(details, Detail{Field: "items", Issue: fmt.Sprintf("must hold 1 to %d lines", MaxLines)})
	}
	for i, it := range r.Items {
		if !skuPattern.MatchString(it.SKU) {
			details = append(details, Detail{Field: fmt.Sprintf("items[%d].sku", i), Issue: "required: a SKU"})
		}
		if it.Quantity < MinQuantity || it.Quantity > MaxQuantity {
			details = append(details, Detail{Field: fmt.Sprintf("items[%d].quantity", i), Issue: fmt.Sprintf("must be between %d and %d", MinQuantity, MaxQuantity)})
		}
	}
	if len(r.Reason) > maxReason {
		details = append(details, Detail{Field: "reason", Issue: fmt.Sprintf("at most %d bytes", maxReason)})
	}
	if len(details) > 0 {
		return newError(http.StatusBadRequest, "invalid_request", "the return is invalid", details...)
	}
	return nil
}

// ownedOrder parses the route's order id and returns it when the caller may
// see the order (its customer, or an operator); 404 otherwise.
func (s *Server) ownedOrder(c echo.Context, ctx context.Context) (string, error) {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return "", errOrderNotFound
	}
	oid := id.String()
	setOrder(c, oid)
	owner, err := s.orderOwner(ctx, oid)
	if err != nil {
		return "", err
	}
	if owner == "" || !mayAccess(c, owner) {
		return "", errOrderNotFound
	}
	return oid, nil
}

// createReturn records a return of delivered lines (an RMA): 201 with the
// return, 409 not_delivered or return_window_closed, 422
// return_exceeds_delivered naming what may still come back.
func (s *Server) createReturn(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), requestTimeout)
	defer cancel()
	oid, err := s.ownedOrder(c, ctx)
	if err != nil {
		return err
	}
	var req ReturnRequest
	if err := decodeJSON(c, s.BodyLimit, &req); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	items := make([]orderflow.Item, len(req.Items))
	for i, it := range req.Items {
		items[i] = orderflow.Item{SKU: it.SKU, Quantity: it.Quantity}
	}
	window := s.Fulfillment.ReturnWindow
	if window <= 0 {
		window = 30 * 24 * time.Hour
	}
	r, err := returns.Store{DB: s.DB}.Create(ctx, oid, items, strings.TrimSpace(req.Reason), window)
	var exceeds *returns.ExceedsError
	switch {
	case errors.Is(err, returns.ErrNoSuchOrder):
		return errOrderNotFound
	case errors.Is(err, returns.ErrNotDelivered):
		return newError(http.StatusConflict, "not_delivered", "only a delivered order can be returned")
	case errors.Is(err, returns.ErrWindowClosed):
		return newError(http.StatusConflict, "return_window_closed", fmt.Sprintf("returns are accepted for %s after delivery", window))
	case errors.As(err, &exceeds):
		var details []Detail
		for sku, n := range exceeds.Left {
			details = append(details, Detail{Field: "items", Issue: fmt.Sprintf("%s: at most %d may still be returned", sku, n)})
		}
		sort.Slice(details, func(i, j int) bool { return details[i].Issue < details[j].Issue })
		return newError(http.StatusUnprocessableEntity, "return_exceeds_delivered", "the return names more than was delivered and not yet returned", details...)
	case err != nil:
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/v1/returns/"+r.ReturnID)
	return c.JSON(http.StatusCreated, r)
}

// orderReturns lists an order's returns with what was refunded on it.
func (s *Server) orderReturns(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), requestTimeout)
	defer cancel()
	oid, err := s.ownedOrder(c, ctx)
	if err != nil {
		return err
	}
	list, refunded, err := returns.Store{DB: s.DB}.OrderReturns(ctx, oid)
	if err != nil {
		return err
	}
	if list == nil {
		list = []returns.Return{}
	}
	return c.JSON(http.StatusOK, OrderReturnsJSON{OrderID: oid, RefundedCents: refunded, Returns: list})
}

var errReturnNotFound = newError(http.StatusNotFound, "return_not_found", "no such return")

// visibleReturn reads the route's return when the caller may see its order.
func (s *Server) visibleReturn(c echo.Context, ctx context.Context) (returns.Return, error) {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return returns.Return{}, errReturnNotFound
	}
	r, err := returns.Store{DB: s.DB}.Return(ctx, id.String())
	if errors.Is(err, returns.ErrNoSuchReturn) {
		return returns.Return{}, errReturnNotFound
	}
	if err != nil {
		return returns.Return{}, err
	}
	setOrder(c, r.OrderID)
	owner, err := s.orderOwner(ctx, r.OrderID)
	if err != nil {
		return returns.Return{}, err
	}
	if !mayAccess(c, owner) {
		return returns.Return{}, errReturnNotFound
	}
	return r, nil
}

func (s *Server) getReturn(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), requestTimeout)
	defer cancel()
	r, err := s.visibleReturn(c, ctx)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

// ReturnAccepted is the 202 body of POST /v1/returns/{id}/receive.
type ReturnAccepted struct {
	ReturnID  string `json:"return_id"`
	Status    string `json:"status"`
	StatusURL string `json:"status_url"`
}

// receiveReturn (operators) says the goods are back: the Return workflow
// restocks them and refunds their amount. 202 while it runs; 200 with the
// return once refunded; starting it again is harmless.
func (s *Server) receiveReturn(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), requestTimeout)
	defer cancel()
	r, err := s.visibleReturn(c, ctx)
	if err != nil {
		return err
	}
	if r.Status == returns.StatusRefunded {
		return c.JSON(http.StatusOK, r)
	}
	// Receiving restocks and refunds: on record before the workflow starts.
	if err := s.auditFirst(c, ctx, actionReturnReceived, "return:"+r.ReturnID, map[string]string{"order_id": r.OrderID}); err != nil {
		return err
	}
	_, err = s.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: returnflow.WorkflowID(r.ReturnID), TaskQueue: order.TaskQueue(s.Region),
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
		StaticSummary:            "Return " + r.ReturnID + " of order " + r.OrderID,
	}, returnflow.Workflow, returnflow.Input{ReturnID: r.ReturnID, OrderID: r.OrderID})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if err != nil && !errors.As(err, &started) {
		s.orderLog(ctx, r.OrderID).Warn("start return workflow", zap.String("return_id", r.ReturnID), zap.Error(err))
		return unavailable("service_unavailable", "the return could not be received now; retry")
	}
	return c.JSON(http.StatusAccepted, ReturnAccepted{ReturnID: r.ReturnID, Status: r.Status, StatusURL: "/v1/returns/" + r.ReturnID})
}
