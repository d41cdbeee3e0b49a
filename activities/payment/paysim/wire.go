package paysim

import (
	"errors"
	"fmt"
	"time"

	"github.com/orderflow/orderflow/activities/payment"
)

// The wire format paysim speaks, shared by this client and the simulator's
// server (devtools/paysim).

// HeaderIdempotencyKey is the header that carries a write's idempotency key,
// as in Stripe's API.
const HeaderIdempotencyKey = "Idempotency-Key"

// Errors of a paysim ledger. The server answers them with a 4xx; the Client
// returns them wrapped, so callers can test for them with errors.Is.
var (
	// ErrIdempotencyMismatch: an idempotency key was reused with different
	// parameters. Nothing was charged or refunded.
	ErrIdempotencyMismatch = errors.New("idempotency key reused with different parameters")
	// ErrNoSuchCharge: a refund named a charge this instance never made.
	ErrNoSuchCharge = errors.New("no such charge")
	// ErrRefundTooLarge: a refund asked for more than is left of its charge
	// (of an authorization: of what was captured).
	ErrRefundTooLarge = fmt.Errorf("refund exceeds the charge: %w", payment.ErrExceedsCapture)
	// ErrCaptureTooLarge: a capture asked for more than is left uncaptured
	// of its authorization.
	ErrCaptureTooLarge = fmt.Errorf("capture too large: %w", payment.ErrExceedsAuthorization)
	// ErrAuthorizationExpired: a capture of an authorization past its expiry.
	ErrAuthorizationExpired = fmt.Errorf("authorization expired: %w", payment.ErrAuthorizationClosed)
	// ErrAuthorizationClosed: a capture of an authorization that was voided
	// or closed by a final capture.
	ErrAuthorizationClosed = fmt.Errorf("authorization closed: %w", payment.ErrAuthorizationClosed)
	// ErrNotAnAuthorization: a capture or void of a charge made with
	// capture=true, which took its money at once.
	ErrNotAnAuthorization = errors.New("the charge is not an authorization")
)

// Statuses of a charge as the API answers them.
const (
	StatusSucceeded       = "succeeded"        // a charge
	StatusRequiresCapture = "requires_capture" // an authorization still open
	StatusCaptured        = "captured"         // an authorization closed by a final capture
	StatusCanceled        = "canceled"         // an authorization voided
	StatusExpired         = "expired"          // an authorization past its expiry
)

// ChargeJSON is a charge as the API answers it. A list answers
// AmountRefunded (the sum of its refunds) and Created (Unix seconds) too.
type ChargeJSON struct {
	ID             string `json:"id"`
	Object         string `json:"object"`
	Amount         int64  `json:"amount"`
	AmountRefunded int64  `json:"amount_refunded"`
	Currency       string `json:"currency"`
	Status         string `json:"status"`
	IdempotencyKey string `json:"idempotency_key"`
	Created        int64  `json:"created,omitempty"`
	// CaptureMethod is "automatic" for a charge, "manual" for an
	// authorization (created with capture=false), as Stripe says it.
	CaptureMethod  string `json:"capture_method,omitempty"`
	AmountCaptured int64  `json:"amount_captured"`
	// ExpiresAt is an authorization's expiry, in Unix seconds.
	ExpiresAt int64 `json:"expires_at,omitempty"`
}

// charge is the charge (or authorization) as a payment provider answers it.
func (ch ChargeJSON) charge() payment.Charge {
	out := payment.Charge{ID: ch.ID, AmountCents: ch.Amount, Currency: ch.Currency}
	if ch.ExpiresAt != 0 {
		out.ExpiresAt = time.Unix(ch.ExpiresAt, 0).UTC()
	}
	return out
}

// CaptureJSON is a capture of an authorization as the API answers it:
// AmountReleased is what a final capture released of the authorization.
type CaptureJSON struct {
	ID             string `json:"id"`
	Object         string `json:"object"`
	Charge         string `json:"charge"`
	Amount         int64  `json:"amount"`
	AmountReleased int64  `json:"amount_released"`
	Final          bool   `json:"final_capture"`
	Currency       string `json:"currency"`
}

// VoidJSON is the void (cancel) of an authorization: what it released.
type VoidJSON struct {
	ID             string `json:"id"`
	Object         string `json:"object"`
	Charge         string `json:"charge"`
	AmountReleased int64  `json:"amount_released"`
}

// MaxListLimit is the largest page GET /v1/charges answers (limit=).
const MaxListLimit = 100

// RefundJSON is a refund as the API answers it.
type RefundJSON struct {
	ID       string `json:"id"`
	Object   string `json:"object"`
	Charge   string `json:"charge"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	Status   string `json:"status"`
}

// ListJSON is a Stripe list of charges.
type ListJSON struct {
	Object  string       `json:"object"`
	Data    []ChargeJSON `json:"data"`
	HasMore bool         `json:"has_more"`
}

// ErrorBody is Stripe's error shape.
type ErrorBody struct {
	Error APIErrorJSON `json:"error"`
}

type APIErrorJSON struct {
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
}
