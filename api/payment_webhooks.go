package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/stripe/stripe-go/v82/webhook"

	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/workflows/order"
	"github.com/orderflow/orderflow/workflows/paymentevent"
)

// PaymentWebhooks configures POST /v1/webhooks/payments/{provider}.
type PaymentWebhooks struct {
	// Secrets are the providers' endpoint secrets, as provider=secret; a
	// provider without one is unknown to the route (404).
	Secrets []string
	// Tolerance bounds the age of an event's signed timestamp (default
	// 5 minutes, Stripe's).
	Tolerance time.Duration
}

// secret returns the endpoint secret of provider.
func (p PaymentWebhooks) secret(provider string) (string, bool) {
	for _, s := range p.Secrets {
		if name, secret, ok := strings.Cut(s, "="); ok && name == provider {
			return secret, true
		}
	}
	return "", false
}

// StripeSignatureHeader carries a provider event's signature, in Stripe's
// scheme ("t=<unix seconds>,v1=<hex HMAC-SHA256 of t.body>").
const StripeSignatureHeader = "Stripe-Signature"

// PaymentEventAccepted is the 200 body of POST /v1/webhooks/payments/{provider}.
type PaymentEventAccepted struct {
	Provider string `json:"provider"`
	EventID  string `json:"event_id"`
	Type     string `json:"type"`
	// Status: accepted (handed to its workflow), ignored (orderflow has no
	// use for it: another kind of event, or a charge orderflow did not make)
	// or duplicate (received before).
	Status string `json:"status"`
	// Duplicate: the event was received before; this one did nothing.
	Duplicate bool   `json:"duplicate"`
	OrderID   string `json:"order_id,omitempty"`
}

// paymentWebhook receives a payment provider's event: its signature (in
// Stripe's scheme, checked with stripe-go's webhook package against the
// provider's endpoint secret) is the authentication. A verified event is
// handed to its own workflow (paymentevent), once per event id, and
// answered 200; a re-sent one is a 200 marked duplicate that does nothing.
// An unknown provider is 404; a missing, malformed, wrong or stale
// signature, a malformed body or an event without an id is 400 (the
// provider re-sends on any non-2xx); a dependency that cannot be reached is
// 503 with Retry-After, and the provider's retry is safe.
func (s *Server) paymentWebhook(c echo.Context) error {
	provider := c.Param("provider")
	secret, ok := s.PaymentWebhooks.secret(provider)
	if !ok {
		return newError(http.StatusNotFound, "unknown_provider", "no payment provider named "+provider+" sends webhooks here")
	}
	body, err := readJSON(c, s.BodyLimit)
	if err != nil {
		return err
	}
	tolerance := s.PaymentWebhooks.Tolerance
	if tolerance <= 0 {
		tolerance = webhook.DefaultTolerance
	}
	ev, err := webhook.ConstructEventWithOptions(body, c.Request().Header.Get(StripeSignatureHeader), secret,
		webhook.ConstructEventOptions{Tolerance: tolerance, IgnoreAPIVersionMismatch: true})
	if err != nil {
		return signatureError(err, tolerance)
	}
	if !eventIDPattern.MatchString(ev.ID) || ev.Type == "" {
		return newError(http.StatusBadRequest, "invalid_event", "the event needs an id and a type",
			Detail{Field: "id", Issue: "required: 1-128 letters, digits, '.', '_', ':' or '-'"}, Detail{Field: "type", Issue: "required"})
	}
	pe, err := payment.MapEvent(provider, ev)
	if err != nil {
		return newError(http.StatusBadRequest, "invalid_event", "the event cannot be acted on: "+err.Error())
	}
	return s.handPaymentEvent(c, pe)
}

// signatureError is the 400 of a signature that does not verify, saying
// which check failed.
func signatureError(err error, tolerance time.Duration) error {
	code, msg := "malformed_json", "the event body is not a JSON event: "+err.Error()
	switch {
	case errors.Is(err, webhook.ErrNotSigned):
		code, msg = "signature_missing", "the "+StripeSignatureHeader+" header is missing"
	case errors.Is(err, webhook.ErrInvalidHeader):
		code, msg = "signature_malformed", "the "+StripeSignatureHeader+" header is not t=<unix seconds>,v1=<hex signature>"
	case errors.Is(err, webhook.ErrNoValidSignature):
		code, msg = "signature_mismatch", "no signature in the "+StripeSignatureHeader+" header matches the body under the provider's endpoint secret"
	case errors.Is(err, webhook.ErrTooOld):
		code, msg = "signature_stale", "the signed timestamp is older than "+tolerance.String()+" (replay protection)"
	}
	return newError(http.StatusBadRequest, code, msg)
}

// handPaymentEvent resolves a dispute's order, starts the event's workflow
// unless the event is on record, and records it. The workflow is started
// before the record is written, so an event on record has always been
// handed over; a crash in between leaves a re-sent event to start the same
// workflow id, which is no second start.
func (s *Server) handPaymentEvent(c echo.Context, pe payment.ProviderEvent) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), requestTimeout)
	defer cancel()
	store := payment.Store{DB: s.DB}
	out := PaymentEventAccepted{Provider: pe.Provider, EventID: pe.EventID, Type: pe.Type, Status: "accepted"}
	down := func(what string, err error) error {
		s.Log.Warn("payment provider event: "+what, zap.String("provider", pe.Provider), zap.String("event_id", pe.EventID), zap.Error(err))
		return unavailable("service_unavailable", "the event could not be taken over; send it again")
	}
	seen, err := store.EventSeen(ctx, pe.Provider, pe.EventID)
	if err != nil {
		return down("dedupe", err)
	}
	if seen {
		out.Duplicate, out.Status = true, "duplicate"
		return c.JSON(http.StatusOK, out)
	}
	if pe.Kind == payment.EventDispute && pe.OrderID == "" {
		if pe.OrderID, _, err = store.ChargeOrder(ctx, pe.Provider, pe.ChargeID); err != nil {
			return down("find the disputed charge", err)
		}
		if pe.OrderID == "" {
			s.Log.Warn("dispute of a charge orderflow does not hold", zap.String("provider", pe.Provider),
				zap.String("event_id", pe.EventID), zap.String("charge_id", pe.ChargeID))
			pe.Kind = payment.EventIgnored
		}
	}
	out.OrderID = pe.OrderID
	if pe.OrderID != "" {
		setOrder(c, pe.OrderID)
	}
	if pe.Kind == payment.EventIgnored {
		out.Status = "ignored"
	} else {
		_, err = s.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID: paymentevent.WorkflowID(pe.Provider, pe.EventID), TaskQueue: order.TaskQueue(s.Region),
			WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
			WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
			StaticSummary:            "Payment event " + pe.Type + " of order " + pe.OrderID,
		}, paymentevent.Workflow, pe)
		var started *serviceerror.WorkflowExecutionAlreadyStarted
		if err != nil && !errors.As(err, &started) {
			return down("start its workflow", err)
		}
	}
	fresh, err := store.RecordEvent(ctx, pe)
	if err != nil {
		return down("record", err)
	}
	if !fresh {
		out.Duplicate, out.Status = true, "duplicate"
	}
	return c.JSON(http.StatusOK, out)
}
