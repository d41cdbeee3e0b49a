package api

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/internal/logging"
)

// ErasureJSON is the answer of DELETE /v1/customers/{id}/pii: what the
// erasure changed. A repeated erasure changes nothing and says so.
type ErasureJSON struct {
	CustomerID string `json:"customer_id"`
	// OrdersScrubbed counts the orders whose e-mail and shipping address
	// this call removed; OrdersRetained counts all the customer's orders,
	// which stay, with their lines, payments and history, for the audit.
	OrdersScrubbed int64 `json:"orders_scrubbed"`
	OrdersRetained int64 `json:"orders_retained"`
	// NotificationsCancelled counts messages that were still to be sent;
	// NotificationsScrubbed counts every message whose address was removed.
	NotificationsCancelled int64 `json:"notifications_cancelled"`
	NotificationsScrubbed  int64 `json:"notifications_scrubbed"`
}

// eraseCustomerPII is DELETE /v1/customers/{id}/pii (admin only), the right
// to erasure: the customer's e-mail and shipping addresses are removed from
// every order, the e-mail from every notification, and messages not yet
// sent are cancelled, in one transaction. Orders, their lines, payments, payment transactions, status
// history and inventory events stay: they hold no personal data beyond the
// opaque customer id and are the audit record. 400 for an id that cannot be
// a customer's, 404 for a customer without orders; a repeat answers 200
// with zero scrubbed.
func (s *Server) eraseCustomerPII(c echo.Context) error {
	id := c.Param("id")
	if !customerPattern.MatchString(id) {
		return newError(http.StatusBadRequest, "invalid_customer_id",
			"a customer id is 1-128 characters of letters, digits and ._:@-", Detail{Field: "id", Issue: "not a customer id"})
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), requestTimeout)
	defer cancel()
	actx, act, err := s.auditInTx(c, ctx, actionErasePII, "customer:"+id, nil)
	if err != nil {
		return err
	}
	e, err := s.ordersStore().ErasePII(actx, id)
	if err == nil {
		err = act.Done(ctx)
	}
	if err != nil {
		return err
	}
	out := ErasureJSON{CustomerID: id, OrdersScrubbed: e.OrdersScrubbed, OrdersRetained: e.OrdersRetained,
		NotificationsCancelled: e.NotificationsCancelled, NotificationsScrubbed: e.NotificationsScrubbed}
	if out.OrdersRetained == 0 {
		return newError(http.StatusNotFound, "customer_not_found", "no orders of this customer")
	}
	admin := ""
	if claims, ok := auth.FromContext(ctx); ok {
		admin = claims.Subject
	}
	s.Log.Info("personal data erased", append(logging.Fields(ctx), zap.String("customer_id", id), zap.String("by", admin),
		zap.Int64("orders_scrubbed", out.OrdersScrubbed), zap.Int64("notifications_cancelled", out.NotificationsCancelled))...)
	return c.JSON(http.StatusOK, out)
}
