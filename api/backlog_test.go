package api

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/temporal"
)

// Orders placed on a region no worker serves back up in its order task
// queue on the real Temporal server. Once the sampled backlog is over the
// bound, a new placement is refused with 503 overloaded and Retry-After.
func TestPlacementsAreRefusedWhileTheOrderTaskQueueIsBackedUp(t *testing.T) {
	g := newGateway(t, testkit.Redis(t), func(s *Server) {
		s.Region = "backlog-" + uuid.NewString()[:8]
		s.Resilience = Resilience{Admission: true, Namespace: "default", BacklogMaxCount: 2, BacklogInterval: time.Hour}
	})
	sku := testkit.Product(t, g.pool, 500, 100)
	customer := "c-" + uuid.NewString()
	place := func() answer {
		return g.do(http.MethodPost, "/v1/orders", g.customer(customer, HeaderIdempotencyKey, "k-"+uuid.NewString()), map[string]any{
			"customer_id": customer, "email": "b@example.com", "payment_token": "tok_visa",
			"items": []map[string]any{{"sku": sku, "quantity": 1}}, "shipping_address": testAddress})
	}
	for range 3 {
		a := place()
		require.Equal(t, http.StatusAccepted, a.status, "%s", a.body)
	}
	// The server's backlog count is approximate and catches up with the
	// tasks added; the sampler is asked until it reports them.
	require.Eventually(t, func() bool {
		b, err := g.srv.SampleBacklog(context.Background())
		return err == nil && b.Count >= 3
	}, 30*time.Second, 200*time.Millisecond)

	a := place()
	assert.Equal(t, http.StatusServiceUnavailable, a.status, "%s", a.body)
	assert.Equal(t, "overloaded", a.errorCode(t))
	assert.NotEmpty(t, a.header.Get("Retry-After"))
}

// Placements are refused on a backlog over its bound only while it is not
// being cleared: after an outage the workers work the queue off, and
// refusing then would stretch the outage for the clients.
func TestABacklogOverItsBoundIsRefusedUnlessTheWorkersAreClearingIt(t *testing.T) {
	r := Resilience{BacklogMaxAge: 10 * time.Second}
	for _, tc := range []struct {
		name string
		b    temporal.Backlog
		want bool
	}{
		{"under the bound", temporal.Backlog{Count: 5, Age: 2 * time.Second}, false},
		{"over it, no worker taking tasks", temporal.Backlog{Count: 90, Age: 40 * time.Second, AddRate: 3}, true},
		{"over it, workers only keeping pace", temporal.Backlog{Count: 90, Age: 40 * time.Second, AddRate: 3, DispatchRate: 3}, true},
		{"over it, cleared within the bound", temporal.Backlog{Count: 90, Age: 40 * time.Second, AddRate: 3, DispatchRate: 15}, false},
		{"over it, the count falling fast", temporal.Backlog{Count: 60, Age: 40 * time.Second, Drain: 12}, false},
	} {
		t.Run(tc.name, func(t *testing.T) { assert.Equal(t, tc.want, r.backlogged(tc.b)) })
	}
	count := Resilience{BacklogMaxCount: 10}
	assert.True(t, count.backlogged(temporal.Backlog{Count: 50, AddRate: 3}), "a count bound alone refuses too")
	assert.False(t, count.backlogged(temporal.Backlog{Count: 50, Drain: 10}), "and lets an outage's backlog be cleared within 10 s")
}
