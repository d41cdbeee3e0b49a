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
