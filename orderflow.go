// Package orderflow holds the words every part of orderflow shares: an
// order, its items and priced lines, its statuses, and the kinds of business
// failure a saga branches on. It depends on the standard library only; the
// areas under workflows/ and activities/, the gateway and the workers all
// speak these words.
package orderflow

import "errors"

// Order statuses, as stored in orders.status, carried by the saga's
// OrderStatus search attribute and shown by the API.
const (
	StatusPending  = "PENDING"
	StatusReserved = "RESERVED"
	StatusPaid     = "PAID"
	// StatusAuthorized: the order's total is held on the card (authorized),
	// to be captured shipment by shipment as they ship.
	StatusAuthorized = "AUTHORIZED"
	// StatusPaymentPending: no provider could take the charge; the saga
	// retries it on a schedule until the payment deadline.
	StatusPaymentPending = "PAYMENT_PENDING"
	StatusConfirmed      = "CONFIRMED"
	StatusCompensating   = "COMPENSATING"
	StatusFailed         = "FAILED"
	StatusCancelled      = "CANCELLED"

	// Fulfillment, after CONFIRMED, for orders the saga fulfils
	// (docs/fulfillment.md): the order's lines are allocated to shipments,
	// one per warehouse, handed to the carrier and followed to the door.

	// StatusFulfilling: shipments allocated and handed to the carrier;
	// none has left a warehouse yet. Cancel is still accepted.
	StatusFulfilling = "FULFILLING"
	// StatusFulfillmentOverdue: a shipment was not picked up within the
	// shipment SLA; the order waits for the carrier, flagged for an operator.
	StatusFulfillmentOverdue = "FULFILLMENT_OVERDUE"
	// StatusPartiallyShipped: some shipments left their warehouse, not all.
	StatusPartiallyShipped = "PARTIALLY_SHIPPED"
	// StatusShipped: every shipment left its warehouse.
	StatusShipped = "SHIPPED"
	// StatusDelivered: every shipment reached the customer (or was lost
	// and refunded, with at least one delivered).
	StatusDelivered = "DELIVERED"
)

// Statuses are every status an order can have, in the order a saga passes
// through them; the order history's status filter accepts these.
func Statuses() []string {
	return []string{StatusPending, StatusReserved, StatusPaymentPending, StatusPaid, StatusAuthorized, StatusConfirmed,
		StatusFulfilling, StatusFulfillmentOverdue, StatusPartiallyShipped, StatusShipped, StatusDelivered,
		StatusCompensating, StatusFailed, StatusCancelled}
}

// Terminal reports whether an order with this status has ended: DELIVERED,
// FAILED, CANCELLED, or CONFIRMED, where an order that is not fulfilled by
// orderflow (fulfillment off, the synthetic health order, every order from
// before fulfillment) ends; a fulfilled order passes CONFIRMED within one
// workflow task on its way to FULFILLING.
func Terminal(status string) bool {
	switch status {
	case StatusConfirmed, StatusDelivered, StatusFailed, StatusCancelled:
		return true
	}
	return false
}

// AwaitingCarrier reports whether an order with this status is paid for
// and waits on its warehouses or its carrier: FULFILLING,
// FULFILLMENT_OVERDUE, PARTIALLY_SHIPPED or SHIPPED. Such an order is
// neither stuck nor failed; only carrier events move it on.
func AwaitingCarrier(status string) bool {
	switch status {
	case StatusFulfilling, StatusFulfillmentOverdue, StatusPartiallyShipped, StatusShipped:
		return true
	}
	return false
}

// Settled reports whether nothing inside orderflow is left to do for an
// order with this status: it has ended, or it waits on its carrier.
func Settled(status string) bool { return Terminal(status) || AwaitingCarrier(status) }

// Item is one line of an order as the client asked for it.
type Item struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

// Line is an order line priced from the catalog.
type Line struct {
	SKU            string `json:"sku"`
	Quantity       int    `json:"quantity"`
	UnitPriceCents int64  `json:"unit_price_cents"`
}

// OrderRef names the order an activity works on.
type OrderRef struct {
	OrderID string `json:"order_id"`
}

// Kind is the stable type of a business failure. It travels as the
// Temporal application error type of a non-retryable error, so histories
// carry it: never rename one.
type Kind string

// The kinds of business failure.
const (
	// OutOfStock: a SKU has less available stock than the order asks for;
	// the error's details name the SKU.
	OutOfStock Kind = "OutOfStock"
	// PaymentDeclined: the provider declined the card; details give its code.
	PaymentDeclined Kind = "PaymentDeclined"
	// InvalidOrder: an unknown SKU, a mix of currencies, or an order that
	// holds no stock to confirm.
	InvalidOrder Kind = "InvalidOrder"
	// PaymentUnavailable: no provider can take the charge now (every breaker
	// open, every provider unreachable, or an earlier attempt on a provider
	// that is down must be resolved there first). The saga parks the order.
	PaymentUnavailable Kind = "PaymentUnavailable"
	// TooLateToCancel: a cancel arrived once the order was being confirmed
	// or had ended.
	TooLateToCancel Kind = "TooLateToCancel"
	// CompensationFailed: the saga could not undo a step, so stock or money
	// may be held that should not be; an operator is needed.
	CompensationFailed Kind = "CompensationFailed"
	// ConfirmFailed: the customer paid but the confirmation failed with an
	// error no retry fixes; the order is held PAID for an operator.
	ConfirmFailed Kind = "ConfirmFailed"
	// AlreadyShipped: a cancel arrived once a shipment of the order had
	// left its warehouse; the customer returns the goods instead.
	AlreadyShipped Kind = "AlreadyShipped"
	// CaptureExceedsAuthorization: a capture asked for more than is left
	// uncaptured of the order's authorization; details give the excess in
	// cents. Nothing was captured.
	CaptureExceedsAuthorization Kind = "CaptureExceedsAuthorization"
	// AuthorizationExpired: a capture found the order's authorization
	// expired, voided or closed by a final capture; nothing was captured.
	// The saga re-authorizes before the expiry, so this needs an operator.
	AuthorizationExpired Kind = "AuthorizationExpired"
	// RefundExceedsCapture: a partial refund asked for more than was
	// captured and not yet refunded; details give the excess in cents.
	RefundExceedsCapture Kind = "RefundExceedsCapture"
)

// KindOf returns the business kind err carries anywhere in its chain (a
// Temporal application error's type), or "" when it carries none.
func KindOf(err error) Kind {
	var typed interface{ Type() string }
	if errors.As(err, &typed) {
		return Kind(typed.Type())
	}
	return ""
}

// Is reports whether err carries this kind.
func (k Kind) Is(err error) bool { return err != nil && KindOf(err) == k }

// Address is where an order ships. It is the customer's personal data:
// stored encrypted, sealed in the saga's history and erased with the
// customer's e-mail. Country is an ISO 3166-1 alpha-2 code; Line2 and State
// (a state, province or region) may be empty, and PostalCode may be where
// the country has none.
type Address struct {
	Name       string `json:"name"`
	Line1      string `json:"line1"`
	Line2      string `json:"line2,omitempty"`
	City       string `json:"city"`
	PostalCode string `json:"postal_code,omitempty"`
	State      string `json:"state,omitempty"`
	Country    string `json:"country"`
}
