package payment

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/orderflow/orderflow"
)

// AuthorizeInput is what to authorize for an order. Renewal 0 is the order's
// first authorization; n > 0 re-authorizes the uncaptured remainder of the
// order's authorization once it nears expiry: a new authorization under a
// new key, after which the previous one is voided.
type AuthorizeInput struct {
	ChargeInput
	Renewal int `json:"renewal"`
}

// AuthorizeResult identifies the authorization: its provider and ID, the
// amount it holds and when the provider lets it expire.
type AuthorizeResult struct {
	Provider    string    `json:"provider"`
	ChargeID    string    `json:"charge_id"`
	AmountCents int64     `json:"amount_cents"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// CaptureInput captures AmountCents of the order's authorization for one
// shipment. Final releases the rest of the authorization.
type CaptureInput struct {
	OrderID     string `json:"order_id"`
	ShipmentID  string `json:"shipment_id"`
	AmountCents int64  `json:"amount_cents"`
	Final       bool   `json:"final"`
}

// CaptureResult is the capture: its provider ID, what it took and, for a
// final capture, what it released.
type CaptureResult struct {
	CaptureID     string `json:"capture_id"`
	CapturedCents int64  `json:"captured_cents"`
	ReleasedCents int64  `json:"released_cents"`
}

// VoidResult says whether an authorization was voided and how much it released.
type VoidResult struct {
	Voided        bool  `json:"voided"`
	ReleasedCents int64 `json:"released_cents"`
}

// AuthorizationKey is the idempotency key of an order's authorization that
// is its n-th payment (n counts charges and authorizations alike): a
// renewal is the next one, under a new key.
func AuthorizationKey(orderID string, n int) string {
	if n <= 1 {
		return "auth-" + orderID
	}
	return fmt.Sprintf("auth-%s-%d", orderID, n)
}

// CaptureKey is the idempotency key of the capture for one shipment of an
// order: capture-<order>-<shipment>.
func CaptureKey(orderID, shipmentID string) string { return "capture-" + orderID + "-" + shipmentID }

// VoidKey is the idempotency key of the void of the authorization made
// with authorizationKey.
func VoidKey(authorizationKey string) string {
	return "void-" + strings.TrimPrefix(authorizationKey, "auth-")
}

var errNotYet = errors.New("not implemented yet")

// Authorize holds the order's total on the card and marks it AUTHORIZED.
func (p *Activities) Authorize(ctx context.Context, in AuthorizeInput) (AuthorizeResult, error) {
	return AuthorizeResult{}, errNotYet
}

// Capture captures part of the order's authorization for a shipment.
func (p *Activities) Capture(ctx context.Context, in CaptureInput) (CaptureResult, error) {
	return CaptureResult{}, errNotYet
}

// Void releases the order's authorization.
func (p *Activities) Void(ctx context.Context, in orderflow.OrderRef) (VoidResult, error) {
	return VoidResult{}, errNotYet
}
