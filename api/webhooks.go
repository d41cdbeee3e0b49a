package api

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"go.temporal.io/sdk/client"

	"github.com/orderflow/orderflow/activities/events"
	hooks "github.com/orderflow/orderflow/activities/webhooks"
	"github.com/orderflow/orderflow/internal/auth"
	"github.com/orderflow/orderflow/workflows/webhooks"
)

// Webhooks are the outbound webhooks' settings the gateway needs: the retry
// policy its redeliveries and replays pass on (the task queue is the
// gateway's region's) and how long a rotated-out secret keeps signing.
type Webhooks struct {
	Policy        hooks.Policy
	SecretOverlap time.Duration
}

// Bounds of an endpoint's fields.
const (
	maxWebhookURL         = 2048
	maxWebhookDescription = 500
	maxWebhookPage        = 200
)

// WebhookEndpointJSON is an endpoint as the API shows it. Secret is set
// only in the answers of create and rotate-secret: it is shown once.
type WebhookEndpointJSON struct {
	ID                string     `json:"id"`
	URL               string     `json:"url"`
	Description       string     `json:"description"`
	EventTypes        []string   `json:"event_types"`
	Enabled           bool       `json:"enabled"`
	DisabledReason    string     `json:"disabled_reason,omitempty"`
	FailingSince      *time.Time `json:"failing_since,omitempty"`
	PreviousExpiresAt *time.Time `json:"previous_secret_expires_at,omitempty"`
	CreatedAt         time.Time  `json:"created_at"`
	UpdatedAt         time.Time  `json:"updated_at"`
	Secret            string     `json:"secret,omitempty"`
}

func webhookEndpoint(e hooks.Endpoint, secret string) WebhookEndpointJSON {
	return WebhookEndpointJSON{ID: e.ID, URL: e.URL, Description: e.Description, EventTypes: e.EventTypes, Enabled: e.Enabled,
		DisabledReason: e.DisabledReason, FailingSince: e.FailingSince, PreviousExpiresAt: e.PreviousExpiresAt,
		CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt, Secret: secret}
}

// CreateWebhookEndpointRequest is the body of POST /v1/webhook-endpoints.
type CreateWebhookEndpointRequest struct {
	URL         string   `json:"url"`
	EventTypes  []string `json:"event_types"`
	Description string   `json:"description"`
}

// PatchWebhookEndpointRequest is the body of PATCH
// /v1/webhook-endpoints/{id}; absent fields stay as they are.
type PatchWebhookEndpointRequest struct {
	URL         *string  `json:"url"`
	EventTypes  []string `json:"event_types"`
	Description *string  `json:"description"`
	Enabled     *bool    `json:"enabled"`
}

// ReplayRequest is the body of POST /v1/webhook-endpoints/{id}/replay: the
// events after the cursor After (an event id), at or after Since, or both.
type ReplayRequest struct {
	After string     `json:"after"`
	Since *time.Time `json:"since"`
}

// WebhookAttemptJSON is one row of an endpoint's delivery log.
type WebhookAttemptJSON struct {
	ID         int64     `json:"id"`
	EventID    string    `json:"event_id"`
	EventType  string    `json:"event_type"`
	Attempt    int       `json:"attempt"`
	StatusCode int       `json:"status_code,omitempty"`
	LatencyMS  float64   `json:"latency_ms"`
	Error      string    `json:"error,omitempty"`
	At         time.Time `json:"at"`
}

// webhookRoutes adds the operators' webhook endpoint routes to v1.
func (s *Server) webhookRoutes(v1 *echo.Group) {
	op := auth.RequireRole(auth.RoleOperator)
	v1.POST("/webhook-endpoints", s.createWebhookEndpoint, op, s.idempotent)
	v1.GET("/webhook-endpoints", s.listWebhookEndpoints, op)
	v1.GET("/webhook-endpoints/:id", s.getWebhookEndpoint, op)
	v1.PATCH("/webhook-endpoints/:id", s.patchWebhookEndpoint, op, s.idempotent)
	v1.DELETE("/webhook-endpoints/:id", s.deleteWebhookEndpoint, op, s.idempotent)
	v1.POST("/webhook-endpoints/:id/rotate-secret", s.rotateWebhookSecret, op, s.idempotent)
	v1.GET("/webhook-endpoints/:id/deliveries", s.listWebhookDeliveries, op)
	v1.POST("/webhook-endpoints/:id/deliveries/:event/redeliver", s.redeliverWebhook, op, s.idempotent)
	v1.POST("/webhook-endpoints/:id/replay", s.replayWebhooks, op, s.idempotent)
}

func (s *Server) webhookStore() hooks.Store { return hooks.Store{DB: s.DB} }

var errNoWebhookEndpoint = newError(http.StatusNotFound, "not_found", "no such webhook endpoint")

func webhookErr(err error) error {
	if errors.Is(err, hooks.ErrNotFound) {
		return errNoWebhookEndpoint
	}
	return err
}

// checkWebhookURL accepts an absolute http or https URL with a host and no
// credentials or fragment. Where it may point is the sender's business: it
// refuses private addresses when dialling (WEBHOOKS_ALLOW_PRIVATE).
func checkWebhookURL(raw string) *Error {
	bad := func(issue string) *Error {
		return newError(http.StatusBadRequest, "invalid_request", "url must be an absolute http or https URL", Detail{Field: "url", Issue: issue})
	}
	if raw == "" || len(raw) > maxWebhookURL || !printable(raw, maxWebhookURL) {
		return bad("1 to 2048 printable characters")
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return bad("not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return bad("scheme must be http or https")
	case u.Hostname() == "":
		return bad("needs a host")
	case u.User != nil:
		return bad("no user or password in the URL")
	case u.Fragment != "" || u.RawFragment != "":
		return bad("no fragment")
	}
	return nil
}

func checkEventTypes(types []string) *Error {
	bad := newError(http.StatusBadRequest, "invalid_request", "event_types must list 1 to 20 distinct event types of the stream",
		Detail{Field: "event_types", Issue: "types such as order.created, payment.processed (docs/events.md)"})
	if len(types) == 0 || len(types) > 20 {
		return bad
	}
	for i, t := range types {
		if _, known := events.StreamOf(t); !known || slices.Contains(types[:i], t) {
			bad.Details = append(bad.Details, Detail{Field: "event_types[" + strconv.Itoa(i) + "]", Issue: "unknown or repeated: " + strconv.Quote(t)})
			return bad
		}
	}
	return nil
}

func checkDescription(d string) *Error {
	if d != "" && !printable(d, maxWebhookDescription) {
		return newError(http.StatusBadRequest, "invalid_request", "description must be at most 500 bytes of printable UTF-8",
			Detail{Field: "description", Issue: "printable text, at most 500 bytes"})
	}
	return nil
}

func (r *CreateWebhookEndpointRequest) validate() *Error {
	if e := checkWebhookURL(r.URL); e != nil {
		return e
	}
	if e := checkEventTypes(r.EventTypes); e != nil {
		return e
	}
	return checkDescription(r.Description)
}

func (r *PatchWebhookEndpointRequest) validate() *Error {
	if r.URL == nil && r.EventTypes == nil && r.Description == nil && r.Enabled == nil {
		return newError(http.StatusBadRequest, "invalid_request", "give at least one of url, event_types, description, enabled")
	}
	if r.URL != nil {
		if e := checkWebhookURL(*r.URL); e != nil {
			return e
		}
	}
	if r.EventTypes != nil {
		if e := checkEventTypes(r.EventTypes); e != nil {
			return e
		}
	}
	if r.Description != nil {
		return checkDescription(*r.Description)
	}
	return nil
}

// createWebhookEndpoint is POST /v1/webhook-endpoints (operator): 201 with
// the endpoint and its signing secret, shown this once.
func (s *Server) createWebhookEndpoint(c echo.Context) error {
	var req CreateWebhookEndpointRequest
	if err := decodeJSON(c, s.BodyLimit, &req); err != nil {
		return err
	}
	if e := req.validate(); e != nil {
		return e
	}
	ep, secret, err := s.webhookStore().Create(c.Request().Context(), req.URL, req.Description, req.EventTypes)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/v1/webhook-endpoints/"+ep.ID)
	return c.JSON(http.StatusCreated, webhookEndpoint(ep, secret))
}

func (s *Server) listWebhookEndpoints(c echo.Context) error {
	if _, err := queryParams(c); err != nil {
		return err
	}
	eps, err := s.webhookStore().List(c.Request().Context())
	if err != nil {
		return err
	}
	out := make([]WebhookEndpointJSON, len(eps))
	for i, e := range eps {
		out[i] = webhookEndpoint(e, "")
	}
	return c.JSON(http.StatusOK, map[string]any{"endpoints": out})
}

func (s *Server) getWebhookEndpoint(c echo.Context) error {
	ep, err := s.webhookStore().Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return webhookErr(err)
	}
	return c.JSON(http.StatusOK, webhookEndpoint(ep, ""))
}

func (s *Server) patchWebhookEndpoint(c echo.Context) error {
	var req PatchWebhookEndpointRequest
	if err := decodeJSON(c, s.BodyLimit, &req); err != nil {
		return err
	}
	if e := req.validate(); e != nil {
		return e
	}
	ep, err := s.webhookStore().Update(c.Request().Context(), c.Param("id"),
		hooks.Patch{Enabled: req.Enabled, EventTypes: req.EventTypes, Description: req.Description, URL: req.URL})
	if err != nil {
		return webhookErr(err)
	}
	return c.JSON(http.StatusOK, webhookEndpoint(ep, ""))
}

func (s *Server) deleteWebhookEndpoint(c echo.Context) error {
	if err := s.webhookStore().Delete(c.Request().Context(), c.Param("id")); err != nil {
		return webhookErr(err)
	}
	return c.NoContent(http.StatusNoContent)
}

// rotateWebhookSecret is POST /v1/webhook-endpoints/{id}/rotate-secret: a
// new secret signs from now on, beside the old one for SecretOverlap.
func (s *Server) rotateWebhookSecret(c echo.Context) error {
	ep, secret, err := s.webhookStore().Rotate(c.Request().Context(), c.Param("id"), s.Webhooks.SecretOverlap)
	if err != nil {
		return webhookErr(err)
	}
	return c.JSON(http.StatusOK, webhookEndpoint(ep, secret))
}

func (s *Server) listWebhookDeliveries(c echo.Context) error {
	p, err := queryParams(c, "limit", "after")
	if err != nil {
		return err
	}
	limit, after, err := readPage(p, 50, maxWebhookPage, func(v string) (int64, error) {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return 0, newError(http.StatusBadRequest, "invalid_request", "after must be the id of a delivery log row",
				Detail{Field: "after", Issue: "a positive integer"})
		}
		return n, nil
	})
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	st := s.webhookStore()
	if _, err := st.Get(ctx, c.Param("id")); err != nil {
		return webhookErr(err)
	}
	rows, err := st.Deliveries(ctx, c.Param("id"), after, limit)
	if err != nil {
		return err
	}
	out := make([]WebhookAttemptJSON, len(rows))
	for i, a := range rows {
		out[i] = WebhookAttemptJSON{ID: a.ID, EventID: strconv.FormatInt(a.EventID, 10), EventType: a.EventType, Attempt: a.Attempt,
			StatusCode: a.StatusCode, LatencyMS: a.LatencyMS, Error: a.Error, At: a.At}
	}
	return c.JSON(http.StatusOK, map[string]any{"deliveries": out})
}

// policy is the retry policy of the deliveries the gateway starts, on its
// region's webhooks task queue.
func (s *Server) webhookPolicy() hooks.Policy {
	p := s.Webhooks.Policy
	p.TaskQueue = hooks.TaskQueue(s.Region)
	return p
}

// redeliverWebhook is POST /v1/webhook-endpoints/{id}/deliveries/{event}/redeliver:
// the event goes to the endpoint again, after the order's events already
// queued for it. 202: it is queued, not yet delivered.
func (s *Server) redeliverWebhook(c echo.Context) error {
	eventID, err := strconv.ParseInt(c.Param("event"), 10, 64)
	if err != nil || eventID < 1 {
		return newError(http.StatusBadRequest, "invalid_request", "the event is the id of an event of the stream",
			Detail{Field: "event", Issue: "a positive integer"})
	}
	ctx := c.Request().Context()
	st := s.webhookStore()
	ep, err := st.Get(ctx, c.Param("id"))
	if err != nil {
		return webhookErr(err)
	}
	if !ep.Enabled {
		return newError(http.StatusConflict, "endpoint_disabled", "the endpoint is disabled: enable it first (PATCH enabled=true)")
	}
	partition, err := st.EventPartition(ctx, eventID)
	if errors.Is(err, hooks.ErrNotFound) {
		return newError(http.StatusNotFound, "not_found", "no such event (the outbox keeps events 7 days after publishing)")
	}
	if err != nil {
		return err
	}
	if err := hooks.Signal(ctx, s.Temporal, s.webhookPolicy(), ep.ID, partition, hooks.Item{EventID: eventID, Force: true}); err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]any{"endpoint_id": ep.ID, "event_id": strconv.FormatInt(eventID, 10),
		"workflow_id": hooks.DeliveryWorkflowID(ep.ID, partition)})
}

// replayWebhooks is POST /v1/webhook-endpoints/{id}/replay: every event of
// the endpoint's types after the cursor and at or after the time goes to it
// again, in order per order. 202 with the replay's id.
func (s *Server) replayWebhooks(c echo.Context) error {
	var req ReplayRequest
	if err := decodeJSON(c, s.BodyLimit, &req); err != nil {
		return err
	}
	var after int64
	if req.After != "" {
		n, err := strconv.ParseInt(req.After, 10, 64)
		if err != nil || n < 0 {
			return newError(http.StatusBadRequest, "invalid_request", "after must be an event id (the envelope's id)",
				Detail{Field: "after", Issue: "a non-negative integer, as a string"})
		}
		after = n
	}
	if req.After == "" && req.Since == nil {
		return newError(http.StatusBadRequest, "invalid_request", "give since (a time), after (an event id), or both",
			Detail{Field: "since", Issue: "RFC 3339 time"}, Detail{Field: "after", Issue: "event id"})
	}
	var since time.Time
	if req.Since != nil {
		since = req.Since.UTC()
	}
	ctx := c.Request().Context()
	ep, err := s.webhookStore().Get(ctx, c.Param("id"))
	if err != nil {
		return webhookErr(err)
	}
	if !ep.Enabled {
		return newError(http.StatusConflict, "endpoint_disabled", "the endpoint is disabled: enable it first (PATCH enabled=true)")
	}
	p := s.webhookPolicy()
	id := "webhook-replay:" + ep.ID + ":" + uuid.NewString()
	run, err := s.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: p.TaskQueue}, webhooks.ReplayWorkflow,
		webhooks.ReplayInput{EndpointID: ep.ID, After: after, Since: since, Policy: p})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]any{"endpoint_id": ep.ID, "replay_id": run.GetID()})
}
