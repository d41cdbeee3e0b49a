// Package payment holds what every card provider adapter shares: the requests
// and answers of charges and refunds, and the errors that tell the saga what a
// failure means. The adapters live in subpackages (paysim, stripe); the
// activities declare the interface they use.
package payment

import (
	"context"
	"errors"
	"net"
	"net/http/httptrace"
	"sync/atomic"
	"time"
)

// Test tokens every provider orderflow runs against understands, after
// Stripe's. The simulated provider adds tok_flaky and tok_unavailable.
//
// #nosec G101 -- Stripe's published test card tokens, not credentials.
const (
	TokenVisa           = "tok_visa"           // charges succeed
	TokenMastercard     = "tok_mastercard"     // charges succeed
	TokenChargeDeclined = "tok_chargeDeclined" // declined by the card network
	TokenFlaky          = "tok_flaky"          // two transient failures per charge, then success
	TokenUnavailable    = "tok_unavailable"    // the provider never answers successfully
)

// ChargeRequest asks a provider for money.
type ChargeRequest struct {
	IdempotencyKey string
	Token          string
	AmountCents    int64
	Currency       string
	Description    string
}

// Charge is a provider's record of a charge, or of an authorization: money
// held on the card until it is captured, voided or expires at ExpiresAt
// (zero for a charge, which took the money at once).
type Charge struct {
	ID          string
	AmountCents int64
	Currency    string
	ExpiresAt   time.Time
}

// CaptureRequest takes AmountCents of an authorization (ChargeID). An
// authorization may be captured in several parts; Final releases what is
// left uncaptured after this capture, and no capture follows it.
type CaptureRequest struct {
	IdempotencyKey string
	ChargeID       string
	AmountCents    int64
	Currency       string
	Final          bool
}

// Capture is a provider's record of a capture: how much it took and, for a
// final capture, how much of the authorization it released.
type Capture struct {
	ID            string
	AmountCents   int64
	ReleasedCents int64
}

// VoidRequest releases what is left uncaptured of an authorization.
type VoidRequest struct {
	IdempotencyKey string
	ChargeID       string
}

// LedgerCharge is a charge as its provider's ledger lists it, with how much
// of it was refunded since: what the invariant monitor (activities/monitor)
// reconciles with orderflow's payments. IdempotencyKey is the key the
// charge was made with ("" for a charge orderflow did not make).
//
// An authorization (Authorization true) lists the amount it held as
// AmountCents and what was captured of it as CapturedCents: captured, not
// authorized, is what the customer paid. A charge's CapturedCents is its
// AmountCents. Status is the provider's word for its state: "succeeded" for
// a charge; "requires_capture", "captured" (closed by a final capture),
// "canceled" (voided) or "expired" for an authorization.
type LedgerCharge struct {
	ID             string
	IdempotencyKey string
	AmountCents    int64
	RefundedCents  int64
	Currency       string
	Created        time.Time
	Authorization  bool
	CapturedCents  int64
	Status         string
	ExpiresAt      time.Time
}

// Paid is what the customer paid of a listed charge: what was captured.
func (c LedgerCharge) Paid() int64 {
	if c.Authorization {
		return c.CapturedCents
	}
	return c.AmountCents
}

// RefundRequest asks a provider to return a charge.
type RefundRequest struct {
	IdempotencyKey string
	ChargeID       string
	AmountCents    int64
	Currency       string
}

// Refund is a provider's record of a refund: its ID and, where the provider
// says, the amount it returned.
type Refund struct {
	ID          string
	AmountCents int64
}

// DeclinedError is a provider's definitive refusal of a charge: retrying the
// same request gets the same answer.
type DeclinedError struct {
	Code    string
	Message string
}

func (e *DeclinedError) Error() string { return "declined: " + e.Code + ": " + e.Message }

// Refusals of a capture or refund that no retry changes. Providers return
// errors that wrap them.
var (
	// ErrExceedsAuthorization: a capture asked for more than is left
	// uncaptured of its authorization.
	ErrExceedsAuthorization = errors.New("capture exceeds what is left of the authorization")
	// ErrAuthorizationClosed: a capture of an authorization that was voided,
	// closed by a final capture, or has expired.
	ErrAuthorizationClosed = errors.New("the authorization is voided, finally captured or expired")
	// ErrExceedsCapture: a refund asked for more than was captured (or
	// charged) and not yet refunded.
	ErrExceedsCapture = errors.New("refund exceeds what was captured and not yet refunded")
)

// ErrNotSent marks a failure where the request certainly never reached the
// provider (connection refused, breaker open): no money can have moved, so
// the request may go to another provider.
var ErrNotSent = errors.New("request not sent to the payment provider")

// TrackWrites returns a context that records whether any HTTP request made
// with it was written to a connection, and a function that reports it. HTTP
// transports resend a request that carries an Idempotency-Key on a new
// connection when the first died before answering; if the provider died,
// the resend fails to connect, yet the first may have charged. Whether a
// request was sent must be judged by what was written, not by the last error.
func TrackWrites(ctx context.Context) (context.Context, func() bool) {
	var wrote atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Store(true) },
	})
	return ctx, wrote.Load
}

// NotSent reports whether a failed HTTP call certainly never reached the
// provider: no attempt wrote the request (see TrackWrites) and the error is
// a failure to connect (dial, DNS).
func NotSent(err error, wrote func() bool) bool {
	if err == nil || wrote() {
		return false
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}
