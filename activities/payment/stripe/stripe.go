// Package stripe is the payment provider adapter for Stripe, on the official
// client (github.com/stripe/stripe-go). A charge is a PaymentIntent created
// and confirmed in one call; a refund is a Refund of that PaymentIntent.
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
	params.AddMetadata(MetadataKey, req.IdempotencyKey)
	params.SetIdempotencyKey(req.IdempotencyKey)
	ctx, wrote := payment.TrackWrites(ctx)
	pi, err := p.sc.V1PaymentIntents.Create(ctx, params)
	if err != nil {
		return payment.Charge{}, fmt.Errorf("%s charge %s: %w", p.name, req.IdempotencyKey, classify(err, wrote))
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
			Currency: strings.ToUpper(string(pi.Currency)), Created: time.Unix(pi.Created, 0).UTC()}
		if pi.LatestCharge != nil {
			c.RefundedCents = pi.LatestCharge.AmountRefunded
		}
		out = append(out, c)
	}
	return out, nil
}

// matches reports whether pi is the charge made with key and took money.
func matches(pi *stripego.PaymentIntent, key string) bool {
	if pi.Metadata[MetadataKey] != key {
		return false
	}
	return pi.Status == stripego.PaymentIntentStatusSucceeded || pi.Status == stripego.PaymentIntentStatusProcessing
}

func charge(pi *stripego.PaymentIntent) payment.Charge {
	return payment.Charge{ID: pi.ID, AmountCents: pi.Amount, Currency: strings.ToUpper(string(pi.Currency))}
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

// Authorize holds req.AmountCents on the card, once per idempotency key.
func (p *Provider) Authorize(ctx context.Context, req payment.ChargeRequest) (payment.Charge, error) {
	return payment.Charge{}, errors.New("authorize: not implemented yet")
}

// Capture captures part or all of an authorization, once per idempotency key.
func (p *Provider) Capture(ctx context.Context, req payment.CaptureRequest) (payment.Capture, error) {
	return payment.Capture{}, errors.New("capture: not implemented yet")
}

// Void releases what is left of an authorization.
func (p *Provider) Void(ctx context.Context, req payment.VoidRequest) error {
	return errors.New("void: not implemented yet")
}
