package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/api"
	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/admission"
)

// A burst of placements far above the adaptive limit (a limit of 4, a 100 ms
// wait budget, 120 placements at once): some are refused with 503
// overloaded and Retry-After, every accepted order completes CONFIRMED with
// exactly one net charge, and a refused placement started no saga.
func TestBurstAboveTheLimitIsRefusedWithRetryAfterAndEveryAcceptedOrderCompletesOnce(t *testing.T) {
	s := newStack(t, true, func(srv *api.Server) {
		srv.Resilience = api.Resilience{Admission: true,
			Limit: admission.Config{InitialLimit: 4, MinLimit: 4, MaxLimit: 4, QueueWait: 100 * time.Millisecond}}
	})
	sku := testkit.Product(t, s.pool, 700, 1000)

	type outcome struct {
		customer string
		status   int
		header   http.Header
		body     []byte
	}
	const burst = 120
	start := make(chan struct{})
	out := make(chan outcome, burst)
	var wg sync.WaitGroup
	for range burst {
		customer := "burst-" + uuid.NewString()
		b, err := json.Marshal(newOrder(customer, "tok_visa", api.OrderItem{SKU: sku, Quantity: 1}))
		require.NoError(t, err)
		req, err := http.NewRequest(http.MethodPost, s.url+"/v1/orders", bytes.NewReader(b))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", s.as(customer))
		req.Header.Set(api.HeaderIdempotencyKey, uuid.NewString())
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				out <- outcome{customer: customer}
				return
			}
			defer res.Body.Close()
			rb, _ := io.ReadAll(res.Body)
			out <- outcome{customer, res.StatusCode, res.Header, rb}
		}()
	}
	close(start)
	wg.Wait()
	close(out)

	var accepted []string
	var refused []string
	for o := range out {
		switch o.status {
		case http.StatusAccepted:
			var a api.Accepted
			require.NoError(t, json.Unmarshal(o.body, &a), "%s", o.body)
			accepted = append(accepted, a.OrderID)
		case http.StatusServiceUnavailable:
			assert.Equal(t, "overloaded", errorBody(t, response{status: o.status, header: o.header, body: o.body}).Code, "%s", o.body)
			ra, err := strconv.Atoi(o.header.Get("Retry-After"))
			assert.NoError(t, err, "Retry-After %q", o.header.Get("Retry-After"))
			assert.GreaterOrEqual(t, ra, 1)
			refused = append(refused, o.customer)
		default:
			t.Errorf("placement answered %d: %s", o.status, o.body)
		}
	}
	t.Logf("%d accepted, %d refused", len(accepted), len(refused))
	require.NotEmpty(t, accepted, "admission let nothing in")
	require.NotEmpty(t, refused, "a burst 30 times the limit was all admitted")

	for id, status := range s.waitAllTerminal(accepted, 60*time.Second) {
		assert.Equal(t, orderflow.StatusConfirmed, status, "order %s", id)
		requireOneNetCharge(t, s, id, status)
	}
	for _, customer := range refused {
		assert.Zero(t, s.workflowsOf(customer), "refused placement of %s started a saga", customer)
	}
}
