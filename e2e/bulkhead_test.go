package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/notify"
	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/api"
	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/workers"
)

// A flood of notifications keeps the non-critical pool saturated for the
// whole test, while orders placed meanwhile are charged and confirmed within
// the design's payment target: the pools share a process but no slots.
func TestNotificationFloodDoesNotDelayCharges(t *testing.T) {
	s := newStack(t, false)
	ctx := context.Background()
	sku := testkit.Product(t, s.pool, 100, 100)

	// 3000 messages for one order, each taking the mail provider 300 ms: the
	// pool's 6 senders need 150 s for them, far longer than the test.
	flood := s.placeOK(newOrder(customer(), payment.TokenVisa, api.OrderItem{SKU: sku, Quantity: 1}))
	s.startWorkerFlooded()
	require.Equal(t, orderflow.StatusConfirmed, s.waitTerminal(flood).Status)
	_, err := s.pool.Exec(ctx, `INSERT INTO notifications (order_id, region, kind, channel, recipient, subject, body)
		SELECT $1, $2, 'flood-' || g, 'email', 'flood@example.com', 'flood', 'flood' FROM generate_series(1, 3000) g`, flood, s.region)
	require.NoError(t, err)
	time.Sleep(time.Second) // let the pool fill up

	var slowest time.Duration
	for range 10 {
		start := time.Now()
		id := s.placeOK(newOrder(customer(), payment.TokenVisa, api.OrderItem{SKU: sku, Quantity: 1}))
		o := s.waitTerminal(id)
		took := time.Since(start)
		require.Equal(t, orderflow.StatusConfirmed, o.Status)
		slowest = max(slowest, took)
	}
	t.Logf("slowest order under the flood: %s", slowest)
	assert.Less(t, slowest, 2*time.Second, "charges complete within the design's payment target")

	var pending, sent int
	require.NoError(t, s.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'pending'), count(*) FILTER (WHERE status = 'sent')
		FROM notifications WHERE order_id = $1 AND kind LIKE 'flood-%'`, flood).Scan(&pending, &sent))
	t.Logf("flood: %d sent, %d pending", sent, pending)
	assert.Greater(t, sent, 0, "the notification pool was working")
	assert.Greater(t, pending, 2000, "the notification pool was still saturated")
}

// startWorkerFlooded starts a worker whose 20 activity slots split 60/30/10
// and whose mail provider takes 300 ms a message.
func (s *stack) startWorkerFlooded() {
	log := zaptest.NewLogger(s.t)
	_, provider := testkit.Paysim(s.t, s.pool, "paysim-e2e")
	w := workers.New(s.temporal, workers.Deps{DB: s.pool, Cache: s.rc, PII: testkit.PII(s.t), Log: log,
		Payments: payment.NewRouter(e2eBreaker, provider),
		Mailer:   notify.LogMailer{Log: log, Latency: 300 * time.Millisecond}},
		workers.Config{Region: s.region, MaxConcurrentActivities: 20, MaxConcurrentLocalActivities: 20,
			MaxConcurrentWorkflowTasks: 10, Outbox: true,
			Bulkhead: designShares})
	require.Equal(s.t, 6, w.Outbox.Workers)
	require.NoError(s.t, w.Start())
	s.t.Cleanup(w.Stop)
}
