package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/orderflow/orderflow"
)

// OrderRequest is the body of POST /v1/orders. CustomerID may be left empty:
// the order's customer is always the token's subject, and naming another is
// refused with 403 customer_mismatch.
type OrderRequest struct {
	CustomerID   string `json:"customer_id,omitempty"`
	Items        []Item `json:"items"`
	PaymentToken string `json:"payment_token"`
	Email        string `json:"email"`
	// ShippingAddress is required; the gateway answers 400 naming each of
	// its fields at fault (shipping_address.country, say).
	ShippingAddress *Address `json:"shipping_address,omitempty"`
}

// Address is a shipping address: name, line1, city and country (ISO 3166-1
// alpha-2, in capitals) are required, and postal_code in every country that
// has them.
type Address = orderflow.Address

// Item is one requested line.
type Item struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

// Accepted is the 202 answer of POST /v1/orders: the order's id and where to
// read it. A repeat of the same key and body gets the first answer again,
// with Replayed set.
type Accepted struct {
	OrderID   string `json:"order_id"`
	Status    string `json:"status"`
	StatusURL string `json:"status_url"`
	// Location is the answer's Location header, the order's path.
	Location string `json:"-"`
	// Replayed is the Idempotent-Replayed header: this key was seen
	// before, and this is the first request's answer.
	Replayed bool `json:"-"`
	// RequestID is the X-Request-ID the gateway answered with.
	RequestID string `json:"-"`
}

// Order is an order as the API shows it.
type Order = orderflow.Order

// Line is one order line at the price the order was taken at.
type Line = orderflow.Line

// StatusChange is one entry of an order's status history.
type StatusChange = orderflow.StatusChange

// CancelAccepted is the 202 answer of POST /v1/orders/{id}/cancel.
type CancelAccepted struct {
	OrderID         string `json:"order_id"`
	Status          string `json:"status"`
	CancelRequested bool   `json:"cancel_requested"`
	StatusURL       string `json:"status_url"`
}

// PlaceOrder sends POST /v1/orders with the Idempotency-Key key (none when
// key is empty, which the gateway refuses). It returns the answer's status
// with it, 0 when there was none; any status but 202 is a *Error (400 for a
// bad request, 422 for an unknown SKU or a key reused with another body, 503
// with RetryAfter when a dependency is down: re-send with the same key).
func (c *Client) PlaceOrder(ctx context.Context, req OrderRequest, key string) (Accepted, int, error) {
	h := http.Header{}
	if key != "" {
		h.Set(HeaderIdempotencyKey, key)
	}
	var acc Accepted
	a, err := c.do(ctx, http.MethodPost, "/v1/orders", h, req, &acc, http.StatusAccepted)
	if err != nil {
		return Accepted{}, a.status, fmt.Errorf("place order: %w", err)
	}
	acc.Location, acc.Replayed, acc.RequestID = a.header.Get("Location"), a.header.Get(HeaderReplayed) == "true", a.header.Get(HeaderRequestID)
	return acc, a.status, nil
}

// GetOrder reads an order: 404 order_not_found for one that does not exist
// or is another customer's, 503 order_not_ready for one accepted moments ago
// whose saga cannot be asked yet.
func (c *Client) GetOrder(ctx context.Context, id string) (Order, error) {
	var o Order
	if _, err := c.do(ctx, http.MethodGet, "/v1/orders/"+escape(id), nil, nil, &o, http.StatusOK); err != nil {
		return Order{}, fmt.Errorf("get order %s: %w", id, err)
	}
	return o, nil
}

// CancelOrder asks the order's saga to stop: 202 when it accepted (the
// compensations may still run), 409 too_late_to_cancel once the order is
// being confirmed, 404 for an order the caller may not see.
func (c *Client) CancelOrder(ctx context.Context, id string) (CancelAccepted, error) {
	var ca CancelAccepted
	if _, err := c.do(ctx, http.MethodPost, "/v1/orders/"+escape(id)+"/cancel", nil, nil, &ca, http.StatusAccepted); err != nil {
		return CancelAccepted{}, fmt.Errorf("cancel order %s: %w", id, err)
	}
	return ca, nil
}

// AwaitTerminal reads the order every interval until its status is terminal
// (orderflow.Terminal: CONFIRMED, DELIVERED, FAILED or CANCELLED) and returns it. Answers that may change
// (404 before the order is visible, 429, 5xx, no answer) are read again; any
// other error, or ctx ending, stops it with the last error. It returns the
// last order it read, even when ctx ended during a later read.
func (c *Client) AwaitTerminal(ctx context.Context, id string, interval time.Duration) (Order, error) {
	return c.AwaitStatus(ctx, id, interval, orderflow.Terminal)
}

// OrderSummary is an order as the history lists it, without its lines and
// status changes (GetOrder has them).
type OrderSummary = orderflow.OrderSummary

// OrderPage is a page of order history. Next, when not empty, is the After
// of the following page.
type OrderPage struct {
	Orders []OrderSummary `json:"orders"`
	Next   string         `json:"next,omitempty"`
}

// HistoryOptions choose a page of order history: only orders with Status
// (all when empty), at most Limit (the gateway's default, 20, when 0; at
// most 100), after the cursor After (a previous page's Next). CustomerID
// names whose orders, for operators; customers see only their own.
type HistoryOptions struct {
	Status     string
	Limit      int
	After      string
	CustomerID string
}

// ListOrders reads a page of the caller's orders, newest first: 400 for a
// bad status, limit or cursor, 403 customer_mismatch for a customer naming
// another.
func (c *Client) ListOrders(ctx context.Context, opts HistoryOptions) (OrderPage, error) {
	q := url.Values{}
	for k, v := range map[string]string{"status": opts.Status, "after": opts.After, "customer_id": opts.CustomerID} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	var page OrderPage
	if _, err := c.do(ctx, http.MethodGet, withQuery("/v1/orders", q), nil, nil, &page, http.StatusOK); err != nil {
		return OrderPage{}, fmt.Errorf("list orders: %w", err)
	}
	return page, nil
}
