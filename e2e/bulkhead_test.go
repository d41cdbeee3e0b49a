package e2e

import (
	"context"
	"sync"
	"sync/atomic"
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

// Every mail sender is stuck on a provider that never answers, with
// thousands of messages queued behind them, while orders placed meanwhile are
// still charged and confirmed: the pools share a process but no slots. The
// test holds no clock: without the bulkhead, the stuck senders would hold the
// slots the saga's steps need and the orders would never confirm.
func TestNotificationFloodDoesNotDelayCharges(t *testing.T) {
	s := newStack(t, false)
	ctx := context.Background()
	sku := testkit.Product(t, s.pool, 100, 100)

	flood := s.placeOK(newOrder(customer(), payment.TokenVisa, api.OrderItem{SKU: sku, Quantity: 1}))
	mailer := newStuckMailer()
	senders := s.startWorkerFlooded(mailer)
	t.Cleanup(mailer.release) // before the worker stops
	require.Equal(t, orderflow.StatusConfirmed, s.waitTerminal(flood).Status)
	_, err := s.pool.Exec(ctx, `INSERT INTO notifications (order_id, region, kind, channel, recipient, subject, body)
		SELECT $1, $2, 'flood-' || g, 'email', 'flood@example.com', 'flood', 'flood' FROM generate_series(1, 3000) g`, flood, s.region)
	require.NoError(t, err)
	// Every sender of the pool is stuck before the orders are placed.
	mailer.hold()
	mailer.waitStuck(t, senders)

	for range 10 {
		id := s.placeOK(newOrder(customer(), payment.TokenVisa, api.OrderItem{SKU: sku, Quantity: 1}))
		require.Equal(t, orderflow.StatusConfirmed, s.waitTerminal(id).Status)
	}

	var pending int
	require.NoError(t, s.pool.QueryRow(ctx, `SELECT count(*) FROM notifications
		WHERE order_id = $1 AND kind LIKE 'flood-%' AND status = 'pending'`, flood).Scan(&pending))
	t.Logf("flood: %d pending, %d senders stuck (most at once: %d)", pending, mailer.stuck.Load(), mailer.most.Load())
	assert.Greater(t, pending, 2900, "the notification pool was still saturated")
	assert.EqualValues(t, senders, mailer.most.Load(), "no more messages in flight than the pool's share")
}

// stuckMailer is a mail provider that, once holding, never answers until
// released: each Send holds its sender. Before it holds, it sends at once.
type stuckMailer struct {
	stuck, most atomic.Int64
	holding     atomic.Bool
	done        chan struct{}
	once        sync.Once
}

func newStuckMailer() *stuckMailer { return &stuckMailer{done: make(chan struct{})} }

func (m *stuckMailer) hold() { m.holding.Store(true) }

func (m *stuckMailer) Send(ctx context.Context, _ notify.Message) error {
	if !m.holding.Load() {
		return nil
	}
	n := m.stuck.Add(1)
	defer m.stuck.Add(-1)
	for {
		most := m.most.Load()
		if n <= most || m.most.CompareAndSwap(most, n) {
			break
		}
	}
	select {
	case <-m.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m *stuckMailer) release() { m.once.Do(func() { close(m.done) }) }

// waitStuck waits until at least n senders are held.
func (m *stuckMailer) waitStuck(t *testing.T, n int) {
	t.Helper()
	var last int64
	require.Eventually(t, func() bool { last = m.stuck.Load(); return last >= int64(n) }, 30*time.Second, 20*time.Millisecond,
		"senders stuck: want %d", n)
	t.Logf("%d senders stuck", last)
}

// startWorkerFlooded starts a worker whose 20 activity slots split 60/30/10
// and whose mail goes to mailer; it returns the notification pool's size.
func (s *stack) startWorkerFlooded(mailer notify.Mailer) int {
	log := zaptest.NewLogger(s.t)
	_, provider := testkit.Paysim(s.t, s.pool, "paysim-e2e")
	w := workers.New(s.temporal, workers.Deps{DB: s.pool, Cache: s.rc, PII: testkit.PII(s.t), Log: log,
		Payments: payment.NewRouter(e2eBreaker, provider),
		Mailer:   mailer},
		workers.Config{Region: s.region, MaxConcurrentActivities: 20, MaxConcurrentLocalActivities: 20,
			MaxConcurrentWorkflowTasks: 10, Outbox: true,
			Bulkhead: designShares})
	require.Equal(s.t, 6, w.Outbox.Workers)
	require.NoError(s.t, w.Start())
	s.t.Cleanup(w.Stop)
	return w.Outbox.Workers
}
