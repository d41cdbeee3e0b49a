package orderflow

import "time"

// The views below are how orderflow shows its nouns to the outside: the
// bodies of the HTTP API, which the gateway writes, the stores read and the
// Go client decodes. Declared once here, they cannot drift apart.

// Order is an order with its lines and status history.
type Order struct {
	OrderID       string         `json:"order_id"`
	CustomerID    string         `json:"customer_id"`
	Status        string         `json:"status"`
	Items         []Line         `json:"items"`
	TotalCents    int64          `json:"total_cents"`
	Currency      string         `json:"currency"`
	FailureReason *string        `json:"failure_reason"`
	CreatedAt     time.Time      `json:"created_at"`
	UpdatedAt     time.Time      `json:"updated_at"`
	History       []StatusChange `json:"history"`
}

// StatusChange is one entry of an order's status history.
type StatusChange struct {
	Status string    `json:"status"`
	At     time.Time `json:"at"`
}

// Product is a catalog entry with its stock: Available is OnHand less what
// orders hold (Reserved).
type Product struct {
	SKU        string `json:"sku"`
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	Currency   string `json:"currency"`
	OnHand     int    `json:"on_hand"`
	Reserved   int    `json:"reserved"`
	Available  int    `json:"available"`
}

// Shipment is one parcel of a fulfilled order: the lines one warehouse
// sends, and how far the carrier has taken it.
type Shipment struct {
	ShipmentID     string     `json:"shipment_id"`
	Warehouse      string     `json:"warehouse"`
	Status         string     `json:"status"`
	TrackingNumber string     `json:"tracking_number,omitempty"`
	Items          []Item     `json:"items"`
	ValueCents     int64      `json:"value_cents"`
	LeftAt         *time.Time `json:"left_at,omitempty"`
	DeliveredAt    *time.Time `json:"delivered_at,omitempty"`
}

// Return is a return (RMA) of delivered lines, at the prices they were
// bought for: requested, received, then refunded.
type Return struct {
	ReturnID    string     `json:"return_id"`
	OrderID     string     `json:"order_id"`
	Status      string     `json:"status"`
	Reason      string     `json:"reason"`
	AmountCents int64      `json:"amount_cents"`
	Currency    string     `json:"currency"`
	Items       []Line     `json:"items"`
	CreatedAt   time.Time  `json:"created_at"`
	ReceivedAt  *time.Time `json:"received_at,omitempty"`
	RefundedAt  *time.Time `json:"refunded_at,omitempty"`
}

// OrderSummary is an order as the order history lists it: without its
// lines and status changes, which Order has.
type OrderSummary struct {
	OrderID       string    `json:"order_id"`
	CustomerID    string    `json:"customer_id"`
	Status        string    `json:"status"`
	TotalCents    int64     `json:"total_cents"`
	Currency      string    `json:"currency"`
	FailureReason *string   `json:"failure_reason"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}
