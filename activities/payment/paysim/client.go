package paysim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/internal/telemetry"
)

// Client is a paysim instance's API as a payment provider
// (payment.Provider). Its error contract:
//
//   - 402: a *payment.DeclinedError, definitive.
//   - no connection was ever made (dial error, connection refused, unknown
//     host): an error wrapping payment.ErrNotSent; no money can have moved,
//     so the request may go to another provider.
//   - 5xx, timeouts, connections reset after the request went out: a plain
//     error (an *APIError for an answer). The charge may or may not have
//     been made; retry with the same idempotency key.
//   - other 4xx: an *APIError wrapping ErrIdempotencyMismatch,
//     ErrNoSuchCharge, ErrRefundTooLarge, ErrCaptureTooLarge,
//     ErrAuthorizationExpired, ErrAuthorizationClosed or
//     ErrNotAnAuthorization when it is one of those (and through them
//     payment.ErrExceedsCapture, ErrExceedsAuthorization or
//     ErrAuthorizationClosed).
type Client struct {
	name string
	base string
	http *http.Client
}

// NewClient returns a client of the instance at baseURL ("http://host:port"),
// recorded in payments as name, with every HTTP call bounded by timeout
// (PAYMENT_PROVIDER_TIMEOUT; 0 means no bound but the context's).
func NewClient(name, baseURL string, timeout time.Duration) *Client {
	return NewTracedClient(name, baseURL, timeout, nil)
}

// NewTracedClient is NewClient with a client span of tp around every HTTP
// call, carrying the trace context to the provider; a nil tp is NewClient.
func NewTracedClient(name, baseURL string, timeout time.Duration, tp trace.TracerProvider) *Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64 // a worker charges many orders at once
	return &Client{name: name, base: strings.TrimRight(baseURL, "/"),
		http: &http.Client{Transport: telemetry.Transport(tp, tr), Timeout: timeout}}
}

// Name identifies the provider in payment records.
func (c *Client) Name() string { return c.name }

// Charge charges req.Token once per idempotency key.
func (c *Client) Charge(ctx context.Context, req payment.ChargeRequest) (payment.Charge, error) {
	return c.take(ctx, req, "charge", "true")
}

// Authorize holds req.AmountCents on req.Token's card once per idempotency
// key (a charge with capture=false); the answer carries its expiry.
func (c *Client) Authorize(ctx context.Context, req payment.ChargeRequest) (payment.Charge, error) {
	return c.take(ctx, req, "authorize", "false")
}

func (c *Client) take(ctx context.Context, req payment.ChargeRequest, what, capture string) (payment.Charge, error) {
	form := url.Values{
		"amount":   {strconv.FormatInt(req.AmountCents, 10)},
		"currency": {req.Currency},
		"source":   {req.Token},
		"capture":  {capture},
	}
	if req.Description != "" {
		form.Set("description", req.Description)
	}
	var ch ChargeJSON
	if err := c.do(ctx, http.MethodPost, "/v1/charges", req.IdempotencyKey, form, &ch); err != nil {
		return payment.Charge{}, fmt.Errorf("%s %s %s: %w", c.name, what, req.IdempotencyKey, err)
	}
	return ch.charge(), nil
}

// Capture captures req.AmountCents of an authorization once per idempotency
// key; req.Final releases the rest.
func (c *Client) Capture(ctx context.Context, req payment.CaptureRequest) (payment.Capture, error) {
	form := url.Values{
		"amount":        {strconv.FormatInt(req.AmountCents, 10)},
		"final_capture": {strconv.FormatBool(req.Final)},
	}
	var cp CaptureJSON
	if err := c.do(ctx, http.MethodPost, "/v1/charges/"+url.PathEscape(req.ChargeID)+"/capture", req.IdempotencyKey, form, &cp); err != nil {
		return payment.Capture{}, fmt.Errorf("%s capture %s of %s: %w", c.name, req.IdempotencyKey, req.ChargeID, err)
	}
	return payment.Capture{ID: cp.ID, AmountCents: cp.Amount, ReleasedCents: cp.AmountReleased}, nil
}

// Void releases what is left uncaptured of an authorization, once per
// idempotency key; an authorization with nothing left is no error.
func (c *Client) Void(ctx context.Context, req payment.VoidRequest) error {
	var v VoidJSON
	if err := c.do(ctx, http.MethodPost, "/v1/charges/"+url.PathEscape(req.ChargeID)+"/cancel", req.IdempotencyKey, url.Values{}, &v); err != nil {
		return fmt.Errorf("%s void %s of %s: %w", c.name, req.IdempotencyKey, req.ChargeID, err)
	}
	return nil
}

// Refund refunds req.AmountCents of a charge (all of what is left when 0),
// once per idempotency key.
func (c *Client) Refund(ctx context.Context, req payment.RefundRequest) (payment.Refund, error) {
	form := url.Values{"charge": {req.ChargeID}}
	if req.AmountCents > 0 {
		form.Set("amount", strconv.FormatInt(req.AmountCents, 10))
	}
	var rf RefundJSON
	if err := c.do(ctx, http.MethodPost, "/v1/refunds", req.IdempotencyKey, form, &rf); err != nil {
		return payment.Refund{}, fmt.Errorf("%s refund %s of %s: %w", c.name, req.IdempotencyKey, req.ChargeID, err)
	}
	return payment.Refund{ID: rf.ID, AmountCents: rf.Amount}, nil
}

// FindCharge looks up the charge made with an idempotency key. It never
// charges: it is a GET of the charges list filtered by key.
func (c *Client) FindCharge(ctx context.Context, key string) (payment.Charge, bool, error) {
	var list ListJSON
	if err := c.do(ctx, http.MethodGet, "/v1/charges?idempotency_key="+url.QueryEscape(key), "", nil, &list); err != nil {
		return payment.Charge{}, false, fmt.Errorf("%s find charge %s: %w", c.name, key, err)
	}
	for _, ch := range list.Data {
		if ch.IdempotencyKey == key {
			return ch.charge(), true, nil
		}
	}
	return payment.Charge{}, false, nil
}

// ListCharges lists the charges the instance made in [since, until), each
// with what of it was refunded, a page of MaxListLimit at a time
// (GET /v1/charges?created[gte]=&created[lt]=&limit=&starting_after=, in
// Unix seconds: since is rounded down and until up, so the list may hold a
// charge of the second either side). It never charges.
func (c *Client) ListCharges(ctx context.Context, since, until time.Time) ([]payment.LedgerCharge, error) {
	q := url.Values{"limit": {strconv.Itoa(MaxListLimit)}}
	if !since.IsZero() {
		q.Set("created[gte]", strconv.FormatInt(since.Unix(), 10))
	}
	if !until.IsZero() {
		q.Set("created[lt]", strconv.FormatInt(until.Add(time.Second-1).Unix(), 10))
	}
	var out []payment.LedgerCharge
	for {
		var list ListJSON
		if err := c.do(ctx, http.MethodGet, "/v1/charges?"+q.Encode(), "", nil, &list); err != nil {
			return nil, fmt.Errorf("%s list charges: %w", c.name, err)
		}
		for _, ch := range list.Data {
			lc := payment.LedgerCharge{ID: ch.ID, IdempotencyKey: ch.IdempotencyKey, AmountCents: ch.Amount,
				RefundedCents: ch.AmountRefunded, Currency: ch.Currency, Created: time.Unix(ch.Created, 0).UTC(),
				Authorization: ch.CaptureMethod == "manual", CapturedCents: ch.AmountCaptured, Status: ch.Status}
			lc.ExpiresAt = ch.charge().ExpiresAt
			out = append(out, lc)
		}
		if !list.HasMore || len(list.Data) == 0 {
			return out, nil
		}
		q.Set("starting_after", list.Data[len(list.Data)-1].ID)
	}
}

// Ping checks the instance's GET /health.
func (c *Client) Ping(ctx context.Context) error {
	var v map[string]string
	if err := c.do(ctx, http.MethodGet, "/health", "", nil, &v); err != nil {
		return fmt.Errorf("%s health: %w", c.name, err)
	}
	return nil
}

// APIError is an error answer of the API other than a decline.
type APIError struct {
	Status  int
	Type    string
	Code    string
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%d %s %s: %s", e.Status, e.Type, e.Code, e.Message)
}

// Unwrap maps the answer back to the ledger's error it stands for, if any.
func (e *APIError) Unwrap() error {
	switch {
	case e.Type == "idempotency_error":
		return ErrIdempotencyMismatch
	case e.Code == "resource_missing" && e.Status == http.StatusBadRequest:
		return ErrNoSuchCharge
	case e.Code == "amount_too_large":
		return ErrRefundTooLarge
	case e.Code == "capture_too_large":
		return ErrCaptureTooLarge
	case e.Code == "charge_expired_for_capture":
		return ErrAuthorizationExpired
	case e.Code == "charge_not_capturable":
		return ErrAuthorizationClosed
	case e.Code == "charge_already_captured":
		return ErrNotAnAuthorization
	}
	return nil
}

func (c *Client) do(ctx context.Context, method, path, key string, form url.Values, out any) error {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	// wrote records whether any attempt wrote the request to a connection.
	// Go's transport resends a request carrying an Idempotency-Key on a new
	// connection when the first died before answering; if the provider
	// died, that resend fails to dial, yet the first may have charged. So
	// "not sent" is decided by what was written, not by the last error.
	ctx, wrote := payment.TrackWrites(ctx)
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("%w: build request: %w", payment.ErrNotSent, err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if key != "" {
		// Go's transport also treats a request with this header as idempotent
		// and resends it on a connection that died before any answer.
		req.Header.Set(HeaderIdempotencyKey, key)
	}
	res, err := c.http.Do(req)
	if err != nil {
		if payment.NotSent(err, wrote) {
			return fmt.Errorf("%w: %w", payment.ErrNotSent, err)
		}
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("read %d answer: %w", res.StatusCode, err)
	}
	if res.StatusCode/100 == 2 {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("decode %d answer: %w", res.StatusCode, err)
		}
		return nil
	}
	var eb ErrorBody
	if err := json.Unmarshal(b, &eb); err != nil || eb.Error.Type == "" {
		return &APIError{Status: res.StatusCode, Type: "api_error", Message: strings.TrimSpace(string(b))}
	}
	if res.StatusCode == http.StatusPaymentRequired {
		return &payment.DeclinedError{Code: eb.Error.Code, Message: eb.Error.Message}
	}
	return &APIError{Status: res.StatusCode, Type: eb.Error.Type, Code: eb.Error.Code, Message: eb.Error.Message}
}
