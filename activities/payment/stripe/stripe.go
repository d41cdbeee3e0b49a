// Package stripe is the payment provider adapter for Stripe, on the official
// client (github.com/stripe/stripe-go). A charge is a PaymentIntent created
// and confirmed in one call; a refund is a Refund of that PaymentIntent. An
// authorization is a PaymentIntent with capture_method=manual, captured in
// parts through Stripe's multicapture and voided by cancelling it.
package stripe

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	stripego "github.com/stripe/stripe-go/v82"
	"go.opentelemetry.io/otel/trace"

	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/internal/telemetry"
)

// MetadataKey is the PaymentIntent metadata entry that holds the charge's
// idempotency key, so FindCharge can look the charge up.
const MetadataKey = "orderflow_idempotency_key"

// SearchLag is how long after a write Stripe's Search API may not show it
// yet. FindCharge lists the PaymentIntents created within it instead of
// searching for them.
const SearchLag = 10 * time.Minute

// maxListed bounds how many recent PaymentIntents FindCharge lists before it
// falls back on the search.
const maxListed = 1000

// paymentMethods maps the test tokens to Stripe's test PaymentMethods.
var paymentMethods = map[string]string{
	payment.TokenVisa:           "pm_card_visa",
	payment.TokenMastercard:     "pm_card_mastercard",
	payment.TokenChargeDeclined: "pm_card_chargeDeclined",
}

// Config configures the adapter.
type Config struct {
	// Name identifies the provider in payment records.
	Name string
	// APIKey is the secret key (STRIPE_API_KEY).
	APIKey string
	// BaseURL is the API's base URL; "" is Stripe's. Tests point it at stripe-mock.
	BaseURL string
	// Timeout bounds one HTTP call (PAYMENT_PROVIDER_TIMEOUT).
	Timeout time.Duration
	// TracerProvider, when set, gives every HTTP call a client span.
	TracerProvider trace.TracerProvider
}

// Provider is Stripe as a payment.Provider. Its error contract is
// paysim.Client's: a card_error (402) is a *payment.DeclinedError; a
// connection never established wraps payment.ErrNotSent; anything else is a
// plain error to retry with the same idempotency key. The client's own
// retries are off: the caller (Temporal, the failover router) retries.
type Provider struct {
	name string
	sc   *stripego.Client
	now  func() time.Time
}

// New returns the adapter.
func New(cfg Config) (*Provider, error) {
	if cfg.Name == "" || cfg.APIKey == "" {
		return nil, errors.New("stripe provider: a name and an API key are required")
	}
	bc := &stripego.BackendConfig{
		HTTPClient:        &http.Client{Timeout: cfg.Timeout, Transport: telemetry.Transport(cfg.TracerProvider, nil)},
		MaxNetworkRetries: stripego.Int64(0),
		LeveledLogger:     &stripego.LeveledLogger{Level: stripego.LevelNull},
	}
	if cfg.BaseURL != "" {
		bc.URL = stripego.String(strings.TrimRight(cfg.BaseURL, "/"))
	}
	sc := stripego.NewClient(cfg.APIKey, stripego.WithBackends(stripego.NewBackendsWithConfig(bc)))
	return &Provider{name: cfg.Name, sc: sc, now: time.Now}, nil
}

// Name identifies the provider in payment records.
func (p *Provider) Name() string { return p.name }

// Charge creates and confirms a PaymentIntent for the token's test
// PaymentMethod (a "pm_..." token is used as it is), under the request's
// idempotency key, which it also stores in the metadata for FindCharge.
// Confirmed at creation, a card is charged synchronously: Stripe answers a
// decline with a 402 card_error, and a 200 is a charge, except a
// PaymentIntent that requires_action (3-D Secure), which a server-side
// charge cannot complete and is reported as declined.
func (p *Provider) Charge(ctx context.Context, req payment.ChargeRequest) (payment.Charge, error) {
	ch, err := p.create(ctx, req, false)
	if err != nil {
		return payment.Charge{}, fmt.Errorf("%s charge %s: %w", p.name, req.IdempotencyKey, err)
	}
	return ch, nil
}

// create creates and confirms the PaymentIntent of a charge or, manual, an
// authorization.
func (p *Provider) create(ctx context.Context, req payment.ChargeRequest, manual bool) (payment.Charge, error) {
	pm, ok := paymentMethods[req.Token]
	if !ok && strings.HasPrefix(req.Token, "pm_") {
		pm, ok = req.Token, true
	}
	if !ok {
		return payment.Charge{}, &payment.DeclinedError{Code: "invalid_token", Message: "No such token: '" + req.Token + "'."}
	}
	params := &stripego.PaymentIntentCreateParams{
		Amount:             stripego.Int64(req.AmountCents),
		Currency:           stripego.String(strings.ToLower(req.Currency)),
		PaymentMethod:      stripego.String(pm),
		PaymentMethodTypes: stripego.StringSlice([]string{"card"}),
		Confirm:            stripego.Bool(true),
	}
	if req.Description != "" {
		params.Description = stripego.String(req.Description)
	}
	if manual {
		params.CaptureMethod = stripego.String(string(stripego.PaymentIntentCaptureMethodManual))
		params.PaymentMethodOptions = &stripego.PaymentIntentCreatePaymentMethodOptionsParams{Card: &stripego.PaymentIntentCreatePaymentMethodOptionsCardParams{
			RequestMulticapture: stripego.String(string(stripego.PaymentIntentPaymentMethodOptionsCardRequestMulticaptureIfAvailable))}}
		params.AddExpand("latest_charge")
	}
	params.AddMetadata(MetadataKey, req.IdempotencyKey)
	params.SetIdempotencyKey(req.IdempotencyKey)
	ctx, wrote := payment.TrackWrites(ctx)
	pi, err := p.sc.V1PaymentIntents.Create(ctx, params)
	if err != nil {
		return payment.Charge{}, classify(err, wrote)
	}
	if pi.Status == stripego.PaymentIntentStatusRequiresAction {
		return payment.Charge{}, &payment.DeclinedError{Code: "authentication_required", Message: "The card requires authentication."}
	}
	return charge(pi), nil
}

// Refund refunds a PaymentIntent (the charge ID Charge returned): its
// AmountCents, or all of it when 0, once per idempotency key. An unknown
// PaymentIntent is a plain error quoting Stripe's resource_missing message.
func (p *Provider) Refund(ctx context.Context, req payment.RefundRequest) (payment.Refund, error) {
	params := &stripego.RefundCreateParams{PaymentIntent: stripego.String(req.ChargeID)}
	if req.AmountCents > 0 {
		params.Amount = stripego.Int64(req.AmountCents)
	}
	params.SetIdempotencyKey(req.IdempotencyKey)
	ctx, wrote := payment.TrackWrites(ctx)
	rf, err := p.sc.V1Refunds.Create(ctx, params)
	if err != nil {
		return payment.Refund{}, fmt.Errorf("%s refund %s of %s: %w", p.name, req.IdempotencyKey, req.ChargeID, classify(err, wrote))
	}
	return payment.Refund{ID: rf.ID}, nil
}

// FindCharge looks up the PaymentIntent created with an idempotency key by
// the metadata Charge stored, and never creates one. Replaying the create
// with the same idempotency key would answer a lost charge too, but it would
// also make the charge when there was none, and Stripe forgets idempotency
// keys after 24 hours; there is no lookup by idempotency key. The Search API
// finds metadata but is eventually consistent (a new PaymentIntent may take
// a minute, longer during incidents, to be searchable), and a charge whose
// answer was just lost is exactly the one being looked for. So FindCharge
// first lists the PaymentIntents created within SearchLag, which is
// consistent, and checks their metadata; only when the charge is older does
// it search. Only a PaymentIntent that took money (succeeded or
// processing) counts as found.
func (p *Provider) FindCharge(ctx context.Context, key string) (payment.Charge, bool, error) {
	list := &stripego.PaymentIntentListParams{CreatedRange: &stripego.RangeQueryParams{GreaterThanOrEqual: p.now().Add(-SearchLag).Unix()}}
	list.Limit = stripego.Int64(100)
	n := 0
	for pi, err := range p.sc.V1PaymentIntents.List(ctx, list) {
		if err != nil {
			return payment.Charge{}, false, fmt.Errorf("%s find charge %s: list: %w", p.name, key, classify(err, nil))
		}
		if matches(pi, key) {
			return charge(pi), true, nil
		}
		if n++; n >= maxListed {
			break
		}
	}
	search := &stripego.PaymentIntentSearchParams{}
	search.Query = fmt.Sprintf("metadata['%s']:'%s'", MetadataKey, strings.ReplaceAll(key, "'", `\'`))
	for pi, err := range p.sc.V1PaymentIntents.Search(ctx, search) {
		if err != nil {
			return payment.Charge{}, false, fmt.Errorf("%s find charge %s: search: %w", p.name, key, classify(err, nil))
		}
		if matches(pi, key) {
			return charge(pi), true, nil
		}
	}
	return payment.Charge{}, false, nil
}

// ListCharges lists the PaymentIntents created in [since, until) that
// orderflow made (their metadata holds the idempotency key) and that took
// money (succeeded or processing), each with what its latest charge had
// refunded: the list is paged through in full, expanding each
// PaymentIntent's latest charge. It never charges.
func (p *Provider) ListCharges(ctx context.Context, since, until time.Time) ([]payment.LedgerCharge, error) {
	params := &stripego.PaymentIntentListParams{CreatedRange: &stripego.RangeQueryParams{}}
	if !since.IsZero() {
		params.CreatedRange.GreaterThanOrEqual = since.Unix()
	}
	if !until.IsZero() {
		params.CreatedRange.LesserThan = until.Add(time.Second - 1).Unix()
	}
	params.Limit = stripego.Int64(100)
	params.AddExpand("data.latest_charge")
	var out []payment.LedgerCharge
	for pi, err := range p.sc.V1PaymentIntents.List(ctx, params) {
		if err != nil {
			return nil, fmt.Errorf("%s list charges: %w", p.name, classify(err, nil))
		}
		key := pi.Metadata[MetadataKey]
		if key == "" || !matches(pi, key) {
			continue
		}
		c := payment.LedgerCharge{ID: pi.ID, IdempotencyKey: key, AmountCents: pi.Amount,
			Currency: strings.ToUpper(string(pi.Currency)), Created: time.Unix(pi.Created, 0).UTC(),
			Authorization: manual(pi), CapturedCents: pi.AmountReceived, Status: string(pi.Status)}
		if c.Authorization {
			c.ExpiresAt = charge(pi).ExpiresAt
			if pi.Status == stripego.PaymentIntentStatusSucceeded {
				c.Status = "captured"
			}
		}
		if pi.LatestCharge != nil {
			c.RefundedCents = pi.LatestCharge.AmountRefunded
		}
		out = append(out, c)
	}
	return out, nil
}

// matches reports whether pi is the charge made with key and took money.
// An authorization (capture_method manual) counts while it holds money
// (requires_capture), once captured (succeeded), and once canceled: a void
// leaves what was captured before it paid.
func matches(pi *stripego.PaymentIntent, key string) bool {
	if pi.Metadata[MetadataKey] != key {
		return false
	}
	switch pi.Status {
	case stripego.PaymentIntentStatusSucceeded, stripego.PaymentIntentStatusProcessing:
		return true
	case stripego.PaymentIntentStatusRequiresCapture:
		return manual(pi)
	case stripego.PaymentIntentStatusCanceled:
		return manual(pi) && pi.LatestCharge != nil
	}
	return false
}

func manual(pi *stripego.PaymentIntent) bool {
	return pi.CaptureMethod == stripego.PaymentIntentCaptureMethodManual
}

// charge is the PaymentIntent as a payment.Charge; an authorization's
// carries its expiry.
func charge(pi *stripego.PaymentIntent) payment.Charge {
	ch := payment.Charge{ID: pi.ID, AmountCents: pi.Amount, Currency: strings.ToUpper(string(pi.Currency))}
	if manual(pi) {
		ch.ExpiresAt = time.Unix(pi.Created, 0).Add(AuthorizationValidity).UTC()
		if lc := pi.LatestCharge; lc != nil && lc.PaymentMethodDetails != nil && lc.PaymentMethodDetails.Card != nil && lc.PaymentMethodDetails.Card.CaptureBefore > 0 {
			ch.ExpiresAt = time.Unix(lc.PaymentMethodDetails.Card.CaptureBefore, 0).UTC()
		}
	}
	return ch
}

// classify applies the error contract to an error of the Stripe client.
// wrote reports whether the request was written to a connection (see
// payment.TrackWrites); nil for lookups, which move no money.
func classify(err error, wrote func() bool) error {
	var se *stripego.Error
	if errors.As(err, &se) {
		if se.Type == stripego.ErrorTypeCard || se.HTTPStatusCode == http.StatusPaymentRequired {
			code := string(se.Code) // card_declined, as paysim says; decline_code has the detail
			if code == "" {
				code = string(se.DeclineCode)
			}
			return &payment.DeclinedError{Code: code, Message: se.Msg}
		}
		switch se.Code {
		case stripego.ErrorCodeAmountTooLarge:
			// A capture beyond what the PaymentIntent holds, or a refund
			// beyond what it took.
			return fmt.Errorf("%w, %w: %w", payment.ErrExceedsAuthorization, payment.ErrExceedsCapture, err)
		case stripego.ErrorCodeChargeExpiredForCapture, stripego.ErrorCodePaymentIntentUnexpectedState:
			return fmt.Errorf("%w: %w", payment.ErrAuthorizationClosed, err)
		}
		return err
	}
	if wrote == nil {
		wrote = func() bool { return false } // a lookup moves no money
	}
	if payment.NotSent(err, wrote) {
		return fmt.Errorf("%w: %w", payment.ErrNotSent, err)
	}
	return err
}

// AuthorizationValidity is how long Stripe holds an online card
// authorization when the charge does not say (its capture_before): 7 days.
const AuthorizationValidity = 7 * 24 * time.Hour

// Authorize creates and confirms a PaymentIntent as Charge does, with
// capture_method=manual: the amount is held, not taken (status
// requires_capture), until Capture or Void. It asks for multicapture
// (payment_method_options[card][request_multicapture]=if_available) so an
// order's shipments can each capture their part. ExpiresAt is the latest
// charge's capture_before when Stripe gives it, else AuthorizationValidity
// after the PaymentIntent's creation.
func (p *Provider) Authorize(ctx context.Context, req payment.ChargeRequest) (payment.Charge, error) {
	ch, err := p.create(ctx, req, true)
	if err != nil {
		return payment.Charge{}, fmt.Errorf("%s authorize %s: %w", p.name, req.IdempotencyKey, err)
	}
	return ch, nil
}

// Capture captures AmountCents of a PaymentIntent held by Authorize
// (amount_to_capture), with final_capture=false for all but the final
// capture: Stripe's multicapture. Where the card does not support
// multicapture, Stripe makes the first capture final and releases the rest,
// and a later capture is refused (payment.ErrAuthorizationClosed): an order
// paid by such a card can take one capture only, and the saga captures the
// sum at its final capture. More than is left is
// payment.ErrExceedsAuthorization; a PaymentIntent past its capture_before
// or no longer requires_capture payment.ErrAuthorizationClosed.
func (p *Provider) Capture(ctx context.Context, req payment.CaptureRequest) (payment.Capture, error) {
	params := &stripego.PaymentIntentCaptureParams{AmountToCapture: stripego.Int64(req.AmountCents), FinalCapture: stripego.Bool(req.Final)}
	params.SetIdempotencyKey(req.IdempotencyKey)
	ctx, wrote := payment.TrackWrites(ctx)
	pi, err := p.sc.V1PaymentIntents.Capture(ctx, req.ChargeID, params)
	if err != nil {
		return payment.Capture{}, fmt.Errorf("%s capture %s of %s: %w", p.name, req.IdempotencyKey, req.ChargeID, classify(err, wrote))
	}
	cp := payment.Capture{ID: pi.ID, AmountCents: req.AmountCents}
	if pi.LatestCharge != nil && pi.LatestCharge.ID != "" {
		cp.ID = pi.LatestCharge.ID
	}
	if req.Final && pi.Amount > pi.AmountReceived {
		cp.ReleasedCents = pi.Amount - pi.AmountReceived
	}
	return cp, nil
}

// Void cancels a PaymentIntent held by Authorize, releasing what is left
// uncaptured. One that is no longer cancelable (already canceled, or
// captured in full) has nothing left to release: no error.
func (p *Provider) Void(ctx context.Context, req payment.VoidRequest) error {
	params := &stripego.PaymentIntentCancelParams{}
	params.SetIdempotencyKey(req.IdempotencyKey)
	ctx, wrote := payment.TrackWrites(ctx)
	_, err := p.sc.V1PaymentIntents.Cancel(ctx, req.ChargeID, params)
	var se *stripego.Error
	if errors.As(err, &se) && se.Code == stripego.ErrorCodePaymentIntentUnexpectedState {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s void %s of %s: %w", p.name, req.IdempotencyKey, req.ChargeID, classify(err, wrote))
	}
	return nil
}
