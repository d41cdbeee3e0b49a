package fulfillment

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/fulfillment/wire"
	"github.com/orderflow/orderflow/internal/breaker"
)

// The carrier's HTTP API as fulfillment uses it; its events and their
// signature are in package wire.
//
//	POST   {carrier}/v1/shipments       Handover, idempotent by shipment_id -> 200 Handed
//	DELETE {carrier}/v1/shipments/{id}  withdraw a shipment not yet picked up -> 204; 409 once picked up
//	POST   {gateway}/v1/shipments/{id}/events  Event, signed (SignatureHeader)

// Shipment statuses (shipments.status). A shipment moves forward only.
const (
	ShipmentAllocated  = "allocated"
	ShipmentHandedOver = "handed_over"
	ShipmentPickedUp   = wire.EventPickedUp
	ShipmentInTransit  = wire.EventInTransit
	ShipmentDelivered  = wire.EventDelivered
	ShipmentLost       = wire.EventLost
	ShipmentCancelled  = "cancelled"
)

// Rank orders shipment statuses: an event applies only when it ranks above
// the shipment's status, so a late in_transit after delivered changes
// nothing and a delivered before picked_up still ends delivered. Unknown
// statuses rank -1.
func Rank(status string) int {
	switch status {
	case ShipmentAllocated:
		return 0
	case ShipmentHandedOver:
		return 1
	case ShipmentPickedUp:
		return 2
	case ShipmentInTransit:
		return 3
	case ShipmentDelivered, ShipmentLost, ShipmentCancelled:
		return 4
	}
	return -1
}

// Left reports whether a shipment with this status has left its warehouse.
func Left(status string) bool { return Rank(status) >= 2 && status != ShipmentCancelled }

// Final reports whether a shipment with this status changes no more.
func Final(status string) bool { return Rank(status) == 4 }

// Handover is what fulfillment hands the carrier for one shipment.
type Handover struct {
	ShipmentID string           `json:"shipment_id"`
	OrderID    string           `json:"order_id"`
	Warehouse  string           `json:"warehouse"`
	Items      []orderflow.Item `json:"items"`
	// Address is where the parcel goes: the order's shipping address,
	// opened from its sealed column; nil for an order without one (placed
	// before addresses were taken, or erased).
	Address *orderflow.Address `json:"address,omitempty"`
}

// Handed is the carrier's answer to a Handover.
type Handed struct {
	TrackingNumber string `json:"tracking_number"`
}

// Carrier hands shipments to a carrier over HTTP.
type Carrier struct {
	// URL is the carrier's base URL (CARRIER_URL).
	URL    string
	Client *http.Client
	// Breaker, when set, guards every call: a call that could not reach
	// the carrier or that it answered with a 5xx counts as a failure, and
	// while it is open calls fail at once (the activity retries later).
	Breaker *breaker.Breaker
}

// errCarrierDown marks a carrier's 5xx answer as a failure to its breaker.
var errCarrierDown = errors.New("the carrier answered with a server error")

// send makes one call through the breaker, if any.
func (c *Carrier) send(hc *http.Client, req *http.Request) (*http.Response, error) {
	if c.Breaker == nil {
		return hc.Do(req)
	}
	var resp *http.Response
	err := c.Breaker.Do(func() error {
		var err error
		if resp, err = hc.Do(req); err == nil && resp.StatusCode >= 500 {
			return errCarrierDown
		}
		return err
	})
	if errors.Is(err, errCarrierDown) {
		return resp, nil
	}
	return resp, err
}

// ErrAlreadyPickedUp: the carrier refuses to withdraw a shipment it has.
var ErrAlreadyPickedUp = errors.New("the carrier has picked the shipment up")

// Hand gives the carrier a shipment; handing the same one again returns
// the first answer.
func (c *Carrier) Hand(ctx context.Context, h Handover) (Handed, error) {
	body, err := json.Marshal(h)
	if err != nil {
		return Handed{}, fmt.Errorf("encode handover: %w", err)
	}
	var out Handed
	status, err := c.do(ctx, http.MethodPost, "/v1/shipments", body, &out)
	if err != nil {
		return Handed{}, err
	}
	if status != http.StatusOK && status != http.StatusCreated {
		return Handed{}, fmt.Errorf("hand shipment %s to the carrier: status %d", h.ShipmentID, status)
	}
	return out, nil
}

// Withdraw takes back a shipment the carrier has not picked up; withdrawing
// one it does not know is a no-op.
func (c *Carrier) Withdraw(ctx context.Context, shipmentID string) error {
	status, err := c.do(ctx, http.MethodDelete, "/v1/shipments/"+shipmentID, nil, nil)
	if err != nil {
		return err
	}
	switch status {
	case http.StatusNoContent, http.StatusOK, http.StatusNotFound:
		return nil
	case http.StatusConflict:
		return ErrAlreadyPickedUp
	}
	return fmt.Errorf("withdraw shipment %s: status %d", shipmentID, status)
}

func (c *Carrier) do(ctx context.Context, method, path string, body []byte, out any) (int, error) {
	hc := c.Client
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.URL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("carrier request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.send(hc, req)
	if err != nil {
		return 0, fmt.Errorf("carrier %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, fmt.Errorf("carrier %s %s: read: %w", method, path, err)
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			return 0, fmt.Errorf("carrier %s %s: decode: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}
