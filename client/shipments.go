package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/fulfillment/wire"
)

// Shipment is one shipment of an order.
type Shipment = orderflow.Shipment

// Shipments is an order's shipments.
type Shipments struct {
	OrderID   string     `json:"order_id"`
	Shipments []Shipment `json:"shipments"`
}

// OrderShipments reads an order's shipments (none before it is
// fulfilled); 404 order_not_found for an order the caller may not see.
func (c *Client) OrderShipments(ctx context.Context, orderID string) (Shipments, error) {
	var s Shipments
	if _, err := c.do(ctx, http.MethodGet, "/v1/orders/"+escape(orderID)+"/shipments", nil, nil, &s, http.StatusOK); err != nil {
		return Shipments{}, fmt.Errorf("shipments of %s: %w", orderID, err)
	}
	return s, nil
}

// CarrierEventAccepted answers a carrier event: accepted by the order's
// saga, or ignored (the order ended or was cancelled); Duplicate says the
// event id was seen before.
type CarrierEventAccepted struct {
	EventID    string `json:"event_id"`
	ShipmentID string `json:"shipment_id"`
	Status     string `json:"status"`
	Duplicate  bool   `json:"duplicate"`
}

// PostCarrierEvent sends a carrier event about a shipment, signed with the
// carrier's shared secret at the time given (wire.Sign): 202 once
// recorded, 401 bad_signature, 404 shipment_not_found, 400 for a bad event.
func (c *Client) PostCarrierEvent(ctx context.Context, shipmentID string, ev wire.Event, secret []byte, signedAt time.Time) (CarrierEventAccepted, error) {
	body, err := json.Marshal(ev)
	if err != nil {
		return CarrierEventAccepted{}, fmt.Errorf("encode carrier event: %w", err)
	}
	h := http.Header{}
	h.Set(wire.SignatureHeader, wire.Sign(secret, signedAt, body))
	var a CarrierEventAccepted
	if _, err := c.do(ctx, http.MethodPost, "/v1/shipments/"+escape(shipmentID)+"/events", h, json.RawMessage(body), &a, http.StatusAccepted); err != nil {
		return CarrierEventAccepted{}, fmt.Errorf("carrier event %s: %w", ev.EventID, err)
	}
	return a, nil
}

// Transfer moves units of a SKU between warehouses.
type Transfer struct {
	SKU      string `json:"sku"`
	From     string `json:"from"`
	To       string `json:"to"`
	Quantity int    `json:"quantity"`
}

// WarehouseStock is a warehouse's stock of a SKU.
type WarehouseStock struct {
	Warehouse string `json:"warehouse"`
	OnHand    int    `json:"on_hand"`
	Allocated int    `json:"allocated"`
}

// TransferStock moves unallocated units between warehouses (operators;
// the destination is created when new) and returns the SKU's stock per
// warehouse: 409 insufficient_stock, 404 product_not_found.
func (c *Client) TransferStock(ctx context.Context, t Transfer) ([]WarehouseStock, error) {
	var out struct {
		Warehouses []WarehouseStock `json:"warehouses"`
	}
	if _, err := c.do(ctx, http.MethodPost, "/v1/stock/transfers", nil, t, &out, http.StatusOK); err != nil {
		return nil, fmt.Errorf("transfer %s: %w", t.SKU, err)
	}
	return out.Warehouses, nil
}

// AwaitStatus reads the order every interval until done says its status is
// the one awaited, and returns it. Answers that may change (404 before the
// order is visible, 429, 5xx, no answer) are read again; any other error,
// or ctx ending, stops it with the last error.
func (c *Client) AwaitStatus(ctx context.Context, id string, interval time.Duration, done func(status string) bool) (Order, error) {
	var last Order
	for {
		o, err := c.GetOrder(ctx, id)
		if err == nil {
			if last = o; done(o.Status) {
				return o, nil
			}
		}
		var e *Error
		if errors.As(err, &e) && !e.Temporary() && e.Status != http.StatusNotFound {
			return last, err
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			// The last order read, even when ctx ended during a later read.
			if last.Status != "" {
				err = fmt.Errorf("order %s still %s", id, last.Status)
			}
			return last, fmt.Errorf("await order %s: %w (last: %w)", id, ctx.Err(), err)
		case <-t.C:
		}
	}
}

// AwaitSettled is AwaitStatus until nothing inside orderflow is left to do
// for the order: it ended, or it waits on its carrier (orderflow.Settled).
func (c *Client) AwaitSettled(ctx context.Context, id string, interval time.Duration) (Order, error) {
	return c.AwaitStatus(ctx, id, interval, orderflow.Settled)
}
