package client

import (
	"context"
	"fmt"
	"net/http"
)

// Erasure is the answer of DELETE /v1/customers/{id}/pii: what the erasure
// changed. A repeated erasure changes nothing and says so.
type Erasure struct {
	CustomerID             string `json:"customer_id"`
	OrdersScrubbed         int64  `json:"orders_scrubbed"`
	OrdersRetained         int64  `json:"orders_retained"`
	NotificationsCancelled int64  `json:"notifications_cancelled"`
	NotificationsScrubbed  int64  `json:"notifications_scrubbed"`
}

// EraseCustomerPII removes a customer's e-mail from every order and message
// and cancels messages not yet sent (an admin's call); the orders stay for
// the audit. 404 customer_not_found for a customer without orders.
func (c *Client) EraseCustomerPII(ctx context.Context, customerID string) (Erasure, error) {
	var e Erasure
	if _, err := c.do(ctx, http.MethodDelete, "/v1/customers/"+escape(customerID)+"/pii", nil, nil, &e, http.StatusOK); err != nil {
		return Erasure{}, fmt.Errorf("erase customer %s: %w", customerID, err)
	}
	return e, nil
}
