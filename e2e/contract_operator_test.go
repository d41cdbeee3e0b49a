package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	hooks "github.com/orderflow/orderflow/activities/webhooks"
)

// operatorRoutes calls the invariant monitor's findings and every webhook
// endpoint route through the contract: operators only, each for a 2xx and a
// refusal. The redelivery and the replay start Temporal work that no worker
// of this stack polls; it is terminated when the test ends.
func (c *contract) operatorRoutes(s *stack) {
	c.t.Helper()
	op, buyer := s.tok.Operator(), s.as(customer())

	status, _ := c.call(s, op, http.MethodGet, "/v1/monitor/findings?limit=5", nil)
	require.Equal(c.t, http.StatusOK, status)
	status, _ = c.call(s, buyer, http.MethodGet, "/v1/monitor/findings", nil)
	require.Equal(c.t, http.StatusForbidden, status)

	status, body := c.call(s, op, http.MethodPost, "/v1/webhook-endpoints",
		map[string]any{"url": "https://contract.invalid/hooks", "event_types": []string{"order.created"}})
	require.Equal(c.t, http.StatusCreated, status, "%s", body)
	var ep struct {
		ID string `json:"id"`
	}
	require.NoError(c.t, json.Unmarshal(body, &ep))
	one := "/v1/webhook-endpoints/" + ep.ID
	status, _ = c.call(s, op, http.MethodPost, "/v1/webhook-endpoints", map[string]any{"url": "ftp://x", "event_types": []string{}})
	require.Equal(c.t, http.StatusBadRequest, status)
	status, _ = c.call(s, buyer, http.MethodGet, "/v1/webhook-endpoints", nil)
	require.Equal(c.t, http.StatusForbidden, status)

	for _, call := range []struct {
		method, path string
		body         any
		want         int
	}{
		{http.MethodGet, "/v1/webhook-endpoints", nil, http.StatusOK},
		{http.MethodGet, one, nil, http.StatusOK},
		{http.MethodPatch, one, map[string]any{"description": "contract"}, http.StatusOK},
		{http.MethodPost, one + "/rotate-secret", nil, http.StatusOK},
		{http.MethodGet, one + "/deliveries", nil, http.StatusOK},
		{http.MethodGet, "/v1/webhook-endpoints/" + uuid.NewString(), nil, http.StatusNotFound},
	} {
		status, body = c.call(s, op, call.method, call.path, call.body)
		require.Equal(c.t, call.want, status, "%s %s: %s", call.method, call.path, body)
	}

	// An event of the outbox to redeliver, in a partition of its own.
	partition := uuid.NewString()
	var eventID int64
	require.NoError(c.t, s.pool.QueryRow(context.Background(), `INSERT INTO event_outbox (type, key, partition, region, payload, webhooks_at)
		VALUES ('order.created', $1, $2, $3, '{}', now()) RETURNING id`, "order.created:"+uuid.NewString(), partition, s.region).Scan(&eventID))
	c.t.Cleanup(func() {
		_ = s.temporal.TerminateWorkflow(context.Background(), hooks.DeliveryWorkflowID(ep.ID, partition), "", "test over")
	})
	status, body = c.call(s, op, http.MethodPost, one+"/deliveries/"+strconv.FormatInt(eventID, 10)+"/redeliver", nil)
	require.Equal(c.t, http.StatusAccepted, status, "%s", body)
	status, body = c.call(s, op, http.MethodPost, one+"/replay", map[string]string{"since": time.Now().Add(-time.Minute).Format(time.RFC3339)})
	require.Equal(c.t, http.StatusAccepted, status, "%s", body)
	var started struct {
		ReplayID string `json:"replay_id"`
	}
	require.NoError(c.t, json.Unmarshal(body, &started))
	c.t.Cleanup(func() { _ = s.temporal.TerminateWorkflow(context.Background(), started.ReplayID, "", "test over") })

	status, body = c.call(s, op, http.MethodDelete, one, nil)
	require.Equal(c.t, http.StatusNoContent, status, "%s", body)
}
