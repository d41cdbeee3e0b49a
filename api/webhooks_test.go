package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	hooks "github.com/orderflow/orderflow/activities/webhooks"
	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/auth"
)

// raw sends body as is (malformed JSON included) with an admin's token.
func (g *gateway) raw(method, path, body string) answer {
	g.t.Helper()
	req, err := http.NewRequest(method, g.url+path, strings.NewReader(body))
	require.NoError(g.t, err)
	req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	req.Header.Set(echo.HeaderAuthorization, g.tok.Bearer("admin-test", auth.RoleAdmin))
	res, err := http.DefaultClient.Do(req)
	require.NoError(g.t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return answer{status: res.StatusCode, header: res.Header, body: b}
}

func (g *gateway) newEndpoint() WebhookEndpointJSON {
	g.t.Helper()
	a := g.do(http.MethodPost, "/v1/webhook-endpoints", nil,
		CreateWebhookEndpointRequest{URL: "https://hooks.orderflow.invalid/erp", EventTypes: []string{"order.created", "order.confirmed"}, Description: "erp"})
	require.Equal(g.t, http.StatusCreated, a.status, "%s", a.body)
	var ep WebhookEndpointJSON
	require.NoError(g.t, json.Unmarshal(a.body, &ep))
	g.t.Cleanup(func() { _ = hooks.Store{DB: g.pool}.Delete(context.Background(), ep.ID) })
	return ep
}

// An operator registers, reads, changes, rotates and deletes an endpoint;
// the secret is shown at creation and rotation only.
func TestWebhookEndpointLifecycle(t *testing.T) {
	g := newGateway(t, testkit.Redis(t), func(s *Server) { s.Webhooks.SecretOverlap = time.Hour })
	ep := g.newEndpoint()
	assert.True(t, strings.HasPrefix(ep.Secret, "whsec_"))
	assert.True(t, ep.Enabled)
	assert.Equal(t, []string{"order.created", "order.confirmed"}, ep.EventTypes)

	op := map[string]string{echo.HeaderAuthorization: g.tok.Operator()}
	a := g.do(http.MethodGet, "/v1/webhook-endpoints/"+ep.ID, op, nil)
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	assert.NotContains(t, string(a.body), "whsec_", "the secret is not shown again")
	a = g.do(http.MethodGet, "/v1/webhook-endpoints", op, nil)
	require.Equal(t, http.StatusOK, a.status)
	assert.Contains(t, string(a.body), ep.ID)
	assert.NotContains(t, string(a.body), "whsec_")

	a = g.do(http.MethodPatch, "/v1/webhook-endpoints/"+ep.ID, op, PatchWebhookEndpointRequest{Enabled: ptr(false), EventTypes: []string{"payment.refunded"}})
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	var got WebhookEndpointJSON
	require.NoError(t, json.Unmarshal(a.body, &got))
	assert.False(t, got.Enabled)
	assert.Equal(t, "disabled by an operator", got.DisabledReason)
	assert.Equal(t, []string{"payment.refunded"}, got.EventTypes)
	assert.Equal(t, "erp", got.Description)
	a = g.do(http.MethodPost, "/v1/webhook-endpoints/"+ep.ID+"/replay", op, map[string]string{"after": "0"})
	assert.Equal(t, http.StatusConflict, a.status, "a disabled endpoint replays nothing: %s", a.body)
	assert.Equal(t, "endpoint_disabled", a.errorCode(t))
	a = g.do(http.MethodPatch, "/v1/webhook-endpoints/"+ep.ID, op, PatchWebhookEndpointRequest{Enabled: ptr(true)})
	got = WebhookEndpointJSON{}
	require.NoError(t, json.Unmarshal(a.body, &got))
	assert.True(t, got.Enabled)
	assert.Empty(t, got.DisabledReason)

	a = g.do(http.MethodPost, "/v1/webhook-endpoints/"+ep.ID+"/rotate-secret", op, nil)
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	require.NoError(t, json.Unmarshal(a.body, &got))
	assert.True(t, strings.HasPrefix(got.Secret, "whsec_"))
	assert.NotEqual(t, ep.Secret, got.Secret)
	require.NotNil(t, got.PreviousExpiresAt, "the old secret signs for the overlap")

	a = g.do(http.MethodGet, "/v1/webhook-endpoints/"+ep.ID+"/deliveries?limit=10", op, nil)
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	var log struct {
		Deliveries []WebhookAttemptJSON `json:"deliveries"`
	}
	require.NoError(t, json.Unmarshal(a.body, &log))
	assert.NotNil(t, log.Deliveries, "a list, empty or not (other suites' workers may have tried it)")

	a = g.do(http.MethodDelete, "/v1/webhook-endpoints/"+ep.ID, op, nil)
	require.Equal(t, http.StatusNoContent, a.status, "%s", a.body)
	a = g.do(http.MethodGet, "/v1/webhook-endpoints/"+ep.ID, op, nil)
	assert.Equal(t, http.StatusNotFound, a.status)
}

// Redelivery and replay start Temporal work on the gateway's region's
// webhooks task queue and answer 202.
func TestRedeliveryAndReplayStartDeliveries(t *testing.T) {
	g := newGateway(t, testkit.Redis(t), nil)
	ep := g.newEndpoint()
	var eventID int64
	partition := uuid.NewString()
	require.NoError(t, g.pool.QueryRow(context.Background(), `INSERT INTO event_outbox (type, key, partition, region, payload, webhooks_at)
		VALUES ('order.created', $1, $2, 'api-webhooks-test', '{}', now()) RETURNING id`, "order.created:"+uuid.NewString(), partition).Scan(&eventID))

	a := g.do(http.MethodPost, "/v1/webhook-endpoints/"+ep.ID+"/deliveries/"+jsonNumber(eventID)+"/redeliver", nil, nil)
	require.Equal(t, http.StatusAccepted, a.status, "%s", a.body)
	d, err := g.srv.Temporal.DescribeWorkflow(context.Background(), hooks.DeliveryWorkflowID(ep.ID, partition), "")
	require.NoError(t, err)
	assert.Equal(t, hooks.TaskQueue("test"), d.RawResponse.GetExecutionConfig().GetTaskQueue().GetName())
	t.Cleanup(func() {
		_ = g.srv.Temporal.TerminateWorkflow(context.Background(), hooks.DeliveryWorkflowID(ep.ID, partition), "", "test over")
	})

	a = g.do(http.MethodPost, "/v1/webhook-endpoints/"+ep.ID+"/replay", nil, map[string]string{"since": time.Now().Add(-time.Hour).Format(time.RFC3339)})
	require.Equal(t, http.StatusAccepted, a.status, "%s", a.body)
	var started struct {
		ReplayID string `json:"replay_id"`
	}
	require.NoError(t, json.Unmarshal(a.body, &started))
	require.True(t, strings.HasPrefix(started.ReplayID, "webhook-replay:"+ep.ID))
	_, err = g.srv.Temporal.DescribeWorkflow(context.Background(), started.ReplayID, "")
	require.NoError(t, err)
	t.Cleanup(func() { _ = g.srv.Temporal.TerminateWorkflow(context.Background(), started.ReplayID, "", "test over") })
}

func jsonNumber(n int64) string { b, _ := json.Marshal(n); return string(b) }

// Every webhook route answers bad input with a 4xx and the JSON error body,
// and none of them lets a customer in.
func TestWebhookRoutesRefuseBadInputWithAClearJSONError(t *testing.T) {
	g := newGateway(t, testkit.Redis(t), nil)
	ep := g.newEndpoint()
	base := "/v1/webhook-endpoints"
	one := base + "/" + ep.ID
	missing := base + "/" + uuid.NewString()
	cases := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"create: malformed JSON", http.MethodPost, base, `{"url":`, 400, "malformed_json"},
		{"create: unknown field", http.MethodPost, base, `{"url":"https://a.example","event_types":["order.created"],"secret":"x"}`, 400, ""},
		{"create: no url", http.MethodPost, base, `{"event_types":["order.created"]}`, 400, "invalid_request"},
		{"create: ftp url", http.MethodPost, base, `{"url":"ftp://a.example/x","event_types":["order.created"]}`, 400, "invalid_request"},
		{"create: relative url", http.MethodPost, base, `{"url":"/hook","event_types":["order.created"]}`, 400, "invalid_request"},
		{"create: credentials in url", http.MethodPost, base, `{"url":"https://u:p@a.example/","event_types":["order.created"]}`, 400, "invalid_request"},
		{"create: no types", http.MethodPost, base, `{"url":"https://a.example/","event_types":[]}`, 400, "invalid_request"},
		{"create: unknown type", http.MethodPost, base, `{"url":"https://a.example/","event_types":["order.exploded"]}`, 400, "invalid_request"},
		{"create: repeated type", http.MethodPost, base, `{"url":"https://a.example/","event_types":["order.created","order.created"]}`, 400, "invalid_request"},
		{"create: control characters", http.MethodPost, base, "{\"url\":\"https://a.example/\",\"event_types\":[\"order.created\"],\"description\":\"a\\u0000b\"}", 400, "invalid_request"},
		{"list: unknown parameter", http.MethodGet, base + "?x=1", "", 400, ""},
		{"get: not a uuid", http.MethodGet, base + "/nope", "", 404, "not_found"},
		{"get: unknown", http.MethodGet, missing, "", 404, "not_found"},
		{"patch: empty", http.MethodPatch, one, `{}`, 400, "invalid_request"},
		{"patch: bad url", http.MethodPatch, one, `{"url":"gopher://x"}`, 400, "invalid_request"},
		{"patch: enabled not a boolean", http.MethodPatch, one, `{"enabled":"yes"}`, 400, ""},
		{"patch: unknown", http.MethodPatch, missing, `{"enabled":true}`, 404, "not_found"},
		{"delete: unknown", http.MethodDelete, missing, "", 404, "not_found"},
		{"rotate: unknown", http.MethodPost, missing + "/rotate-secret", "", 404, "not_found"},
		{"deliveries: bad limit", http.MethodGet, one + "/deliveries?limit=0", "", 400, "invalid_request"},
		{"deliveries: bad cursor", http.MethodGet, one + "/deliveries?after=x", "", 400, "invalid_request"},
		{"deliveries: unknown", http.MethodGet, missing + "/deliveries", "", 404, "not_found"},
		{"redeliver: bad event", http.MethodPost, one + "/deliveries/abc/redeliver", "", 400, "invalid_request"},
		{"redeliver: unknown event", http.MethodPost, one + "/deliveries/999999999999/redeliver", "", 404, "not_found"},
		{"redeliver: unknown endpoint", http.MethodPost, missing + "/deliveries/1/redeliver", "", 404, "not_found"},
		{"replay: neither since nor after", http.MethodPost, one + "/replay", `{}`, 400, "invalid_request"},
		{"replay: bad cursor", http.MethodPost, one + "/replay", `{"after":"-3"}`, 400, "invalid_request"},
		{"replay: bad time", http.MethodPost, one + "/replay", `{"since":"yesterday"}`, 400, ""},
		{"replay: unknown endpoint", http.MethodPost, missing + "/replay", `{"after":"1"}`, 404, "not_found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := g.raw(c.method, c.path, c.body)
			assert.Equal(t, c.status, a.status, "%s", a.body)
			code := a.errorCode(t)
			assert.NotEmpty(t, code)
			if c.code != "" {
				assert.Equal(t, c.code, code)
			}
		})
	}
	customer := map[string]string{echo.HeaderAuthorization: g.tok.Bearer("c-1", auth.RoleCustomer)}
	for _, path := range []string{base, one, one + "/deliveries"} {
		a := g.do(http.MethodGet, path, customer, nil)
		assert.Equal(t, http.StatusForbidden, a.status, "%s: %s", path, a.body)
	}
}
