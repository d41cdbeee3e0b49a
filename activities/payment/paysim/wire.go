package paysim

import "errors"

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
	// ErrRefundTooLarge: a refund asked for more than is left of its charge.
	ErrRefundTooLarge = errors.New("refund exceeds the charge")
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
}

// StatusRequiresAction is a charge's status while it waits for the
// customer's 3-D Secure step; the answer is then the provider's webhook.
const StatusRequiresAction = "requires_action"

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
