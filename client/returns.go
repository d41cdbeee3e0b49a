package client

import (
	"context"
	"fmt"
	"net/http"

	"github.com/orderflow/orderflow"
)

// ReturnItem is one returned line, at the price it was bought for.
type ReturnItem = orderflow.Line

// Return is a return (RMA): requested, received, then refunded.
type Return = orderflow.Return

// OrderReturns is an order's returns and what was refunded on it in all.
type OrderReturns struct {
	OrderID       string   `json:"order_id"`
	RefundedCents int64    `json:"refunded_cents"`
	Returns       []Return `json:"returns"`
}

// CreateReturn asks to return delivered lines of an order: 201 with the
// return; 409 not_delivered or return_window_closed; 422
// return_exceeds_delivered; 404 for an order the caller may not see.
func (c *Client) CreateReturn(ctx context.Context, orderID string, items []orderflow.Item, reason string) (Return, error) {
	body := struct {
		Items  []orderflow.Item `json:"items"`
		Reason string           `json:"reason"`
	}{items, reason}
	var r Return
	if _, err := c.do(ctx, http.MethodPost, "/v1/orders/"+escape(orderID)+"/returns", nil, body, &r, http.StatusCreated); err != nil {
		return Return{}, fmt.Errorf("return of %s: %w", orderID, err)
	}
	return r, nil
}

// ListReturns reads an order's returns and its refunded total.
func (c *Client) ListReturns(ctx context.Context, orderID string) (OrderReturns, error) {
	var r OrderReturns
	if _, err := c.do(ctx, http.MethodGet, "/v1/orders/"+escape(orderID)+"/returns", nil, nil, &r, http.StatusOK); err != nil {
		return OrderReturns{}, fmt.Errorf("returns of %s: %w", orderID, err)
	}
	return r, nil
}

// GetReturn reads a return.
func (c *Client) GetReturn(ctx context.Context, returnID string) (Return, error) {
	var r Return
	if _, err := c.do(ctx, http.MethodGet, "/v1/returns/"+escape(returnID), nil, nil, &r, http.StatusOK); err != nil {
		return Return{}, fmt.Errorf("return %s: %w", returnID, err)
	}
	return r, nil
}

// ReceiveReturn (operators) says a return's goods are back, which restocks
// them and refunds their amount: 202 while that runs, 200 once refunded.
func (c *Client) ReceiveReturn(ctx context.Context, returnID string) error {
	if _, err := c.do(ctx, http.MethodPost, "/v1/returns/"+escape(returnID)+"/receive", nil, nil, nil, http.StatusAccepted, http.StatusOK); err != nil {
		return fmt.Errorf("receive return %s: %w", returnID, err)
	}
	return nil
}
