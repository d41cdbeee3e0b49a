package events_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/orderflow/orderflow/activities/events"
	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/db"
)

// relayEnv is a real NATS server, a client of it and a region of the test
// database that no other test writes events for.
type relayEnv struct {
	t      *testing.T
	pool   *pgxpool.Pool
	nats   *testkit.NATSServer
	nc     *nats.Conn
	js     jetstream.JetStream
	region string
}

func newRelayEnv(t *testing.T, natsConfig ...string) *relayEnv {
	e := &relayEnv{t: t, pool: testkit.DB(t), nats: testkit.NATS(t, natsConfig...), region: "relay-" + uuid.NewString()[:8]}
	var err error
	e.nc, e.js, err = events.Connect(events.Config{URL: e.nats.URL}, "relay-test")
	require.NoError(t, err)
	t.Cleanup(e.nc.Close)
	return e
}

// relay runs a relay of the test's region until the test ends (or stop is called).
func (e *relayEnv) relay() (r *events.Relay, stop func()) {
	r = &events.Relay{DB: e.pool, JS: e.js, Region: e.region, Log: zaptest.NewLogger(e.t),
		Poll: 20 * time.Millisecond, Backoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		PublishTimeout: time.Second, Standby: 100 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	e.t.Cleanup(stop)
	return r, stop
}

// enqueue writes one event per type for a new order of the test's region,
// in one transaction each, and returns the order id.
func (e *relayEnv) enqueue(typs ...string) string {
	e.t.Helper()
	id := newOrder(e.t, e.pool, e.region)
	ctx := context.Background()
	for i, typ := range typs {
		ev := events.Event{Type: typ, OrderID: id, Key: typ + ":" + id + ":" + string(rune('a'+i)),
			Data: map[string]any{"order_id": id, "name": "n", "seq": i}}
		require.NoError(e.t, db.InTx(ctx, e.pool, func(tx pgx.Tx) error { return events.Enqueue(ctx, tx, ev) }))
	}
	return id
}

// pending counts the region's events not yet published.
func (e *relayEnv) pending() int {
	e.t.Helper()
	var n int
	require.NoError(e.t, e.pool.QueryRow(context.Background(),
		`SELECT count(*) FROM event_outbox WHERE region = $1 AND status = 'pending'`, e.region).Scan(&n))
	return n
}

func (e *relayEnv) waitPublished() {
	e.t.Helper()
	require.Eventually(e.t, func() bool { return e.pending() == 0 }, 30*time.Second, 20*time.Millisecond)
}

// received reads every message of the streams from the start, as a new
// subscriber would: the envelopes in stream order, and the raw bodies.
func (e *relayEnv) received() (envs []events.Envelope, raw [][]byte) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, st := range events.Streams {
		s, err := e.js.Stream(ctx, st.Name)
		require.NoError(e.t, err)
		info, err := s.Info(ctx)
		require.NoError(e.t, err)
		for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
			m, err := s.GetMsg(ctx, seq)
			require.NoError(e.t, err)
			var env events.Envelope
			require.NoError(e.t, json.Unmarshal(m.Data, &env))
			assert.Equal(e.t, env.ID, m.Header.Get(jetstream.MsgIDHeader), "Nats-Msg-Id is the outbox row id")
			assert.Equal(e.t, env.Type, m.Subject)
			envs, raw = append(envs, env), append(raw, m.Data)
		}
	}
	return envs, raw
}

// assertOncePerOrderInOrder checks that every event of orders arrived once
// and that each order's events are in outbox order within their stream.
func (e *relayEnv) assertOncePerOrderInOrder(envs []events.Envelope, orders map[string][]string) {
	e.t.Helper()
	seen := map[string]int{}
	byOrder := map[string][]events.Envelope{}
	for _, env := range envs {
		seen[env.ID]++
		byOrder[env.OrderID] = append(byOrder[env.OrderID], env)
	}
	for id, n := range seen {
		assert.Equal(e.t, 1, n, "event %s published once", id)
	}
	for id, want := range orders {
		got := byOrder[id]
		require.Len(e.t, got, len(want), "order %s", id)
		last := map[string]string{}
		for _, env := range got {
			stream, _ := events.StreamOf(env.Type)
			if prev, ok := last[stream]; ok {
				assert.Less(e.t, mustInt(e.t, prev), mustInt(e.t, env.ID), "order %s: events of one stream in id order", id)
			}
			last[stream] = env.ID
		}
	}
}

func TestRelayPublishesEveryEventOnceInOrderPerOrder(t *testing.T) {
	e := newRelayEnv(t)
	schemas := compileSchemas(t)
	orders := map[string][]string{}
	for range 20 {
		typs := []string{events.OrderShipped, events.OrderShipped, events.OrderDelivered}
		orders[e.enqueue(typs...)] = typs
	}
	r, _ := e.relay()
	e.waitPublished()
	assert.Equal(t, int64(60), r.Published())
	envs, raw := e.received()
	assert.Len(t, envs, 60)
	e.assertOncePerOrderInOrder(envs, orders)
	for _, body := range raw {
		validate(t, schemas, body)
	}
	for _, env := range envs {
		assert.Equal(t, e.region, env.Region)
		assert.NotNil(t, env.OrderAcceptedAt, "an order's event carries its acceptance time")
	}
}

// A relay that dies after publishing and before recording publishes the
// batch again; JetStream keeps one copy of each, by Nats-Msg-Id.
func TestRepublishedEventsAreDroppedByTheirMessageID(t *testing.T) {
	e := newRelayEnv(t)
	for range 5 {
		e.enqueue(events.OrderShipped, events.OrderDelivered)
	}
	_, stop := e.relay()
	e.waitPublished()
	stop()
	_, err := e.pool.Exec(context.Background(), `UPDATE event_outbox SET status = 'pending', published_at = NULL WHERE region = $1`, e.region)
	require.NoError(t, err)
	r, _ := e.relay()
	e.waitPublished()
	assert.Equal(t, int64(10), r.Published(), "the second relay published every event again")
	envs, _ := e.received()
	assert.Len(t, envs, 10, "and the streams hold each once")
}

// An event JetStream refuses holds back its order's later events, and
// only those: other orders go on.
func TestAFailedEventHoldsBackItsOrdersLaterEventsOnly(t *testing.T) {
	e := newRelayEnv(t, "max_payload: 2048")
	stuck := newOrder(t, e.pool, e.region)
	ctx := context.Background()
	for i, data := range []map[string]any{
		{"order_id": stuck, "shipment_id": "s1"},
		{"order_id": stuck, "shipment_id": "s2", "note": strings.Repeat("x", 4096)}, // over max_payload
		{"order_id": stuck, "shipment_id": "s3"},
	} {
		ev := events.Event{Type: events.OrderShipped, OrderID: stuck, Key: "order.shipped:" + stuck + ":" + string(rune('a'+i)), Data: data}
		require.NoError(t, db.InTx(ctx, e.pool, func(tx pgx.Tx) error { return events.Enqueue(ctx, tx, ev) }))
	}
	other := e.enqueue(events.OrderShipped, events.OrderDelivered)
	e.relay()
	require.Eventually(t, func() bool { return e.pending() == 2 }, 30*time.Second, 20*time.Millisecond)
	var lastError string
	require.NoError(t, e.pool.QueryRow(ctx, `SELECT last_error FROM event_outbox WHERE region = $1 AND status = 'pending' ORDER BY id LIMIT 1`,
		e.region).Scan(&lastError))
	assert.Contains(t, lastError, "maximum payload")
	envs, _ := e.received()
	var got []string
	for _, env := range envs {
		got = append(got, env.OrderID)
	}
	assert.ElementsMatch(t, []string{stuck, other, other}, got, "the stuck order's first event and the other order's two")
}

// While NATS is down the events wait in the outbox; once it is back each
// arrives once, in order, including those written while it was down.
func TestEventsWaitWhileNATSIsDownAndArriveOnceAfter(t *testing.T) {
	e := newRelayEnv(t)
	orders := map[string][]string{}
	typs := []string{events.OrderShipped, events.OrderDelivered}
	for range 5 {
		orders[e.enqueue(typs...)] = typs
	}
	r, _ := e.relay()
	e.waitPublished()

	e.nats.Stop()
	for range 5 {
		orders[e.enqueue(typs...)] = typs
	}
	require.Eventually(t, r.Leader, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, 10, e.pending(), "nothing is published, or lost, while NATS is down")

	e.nats.Start()
	e.waitPublished()
	envs, _ := e.received()
	assert.Len(t, envs, 20)
	e.assertOncePerOrderInOrder(envs, orders)
}

// One relay leads a region at a time; when it stops, a standby takes over.
func TestOneRelayLeadsARegionAndAStandbyTakesOver(t *testing.T) {
	e := newRelayEnv(t)
	a, stopA := e.relay()
	b, stopB := e.relay()
	require.Eventually(t, func() bool { return a.Leader() || b.Leader() }, 10*time.Second, 20*time.Millisecond)
	assert.False(t, a.Leader() && b.Leader(), "never two leaders")
	leader, standby, stopLeader := a, b, stopA
	if b.Leader() {
		leader, standby, stopLeader = b, a, stopB
	}
	e.enqueue(events.OrderShipped)
	e.waitPublished()
	stopLeader()
	require.Eventually(t, standby.Leader, 10*time.Second, 20*time.Millisecond)
	e.enqueue(events.OrderShipped)
	e.waitPublished()
	assert.Equal(t, int64(1), leader.Published())
	assert.Equal(t, int64(1), standby.Published())
	envs, _ := e.received()
	assert.Len(t, envs, 2)
}

func mustInt(t *testing.T, s string) int {
	t.Helper()
	var n int
	for _, c := range s {
		require.True(t, c >= '0' && c <= '9', "id %q", s)
		n = n*10 + int(c-'0')
	}
	return n
}

// The lead deletes events published and handed to the webhook dispatcher
// longer ago than Retain, and only those: an old event the dispatcher has
// not handed over yet stays.
func TestTheLeaderPrunesEventsPublishedLongAgo(t *testing.T) {
	e := newRelayEnv(t)
	old := e.enqueue(events.OrderShipped)
	recent := e.enqueue(events.OrderShipped)
	undispatched := e.enqueue(events.OrderShipped)
	_, stop := e.relay()
	e.waitPublished()
	stop()
	_, err := e.pool.Exec(context.Background(), `UPDATE event_outbox SET published_at = now() - interval '8 days',
		webhooks_at = CASE WHEN order_id = $1 THEN now() - interval '8 days' END WHERE order_id IN ($1, $2)`, old, undispatched)
	require.NoError(t, err)
	e.relay() // prunes when it takes the lead
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, e.pool.QueryRow(context.Background(), `SELECT count(*) FROM event_outbox WHERE order_id = $1`, old).Scan(&n))
		return n == 0
	}, 10*time.Second, 20*time.Millisecond)
	var n int
	require.NoError(t, e.pool.QueryRow(context.Background(), `SELECT count(*) FROM event_outbox WHERE order_id = $1`, recent).Scan(&n))
	assert.Equal(t, 1, n, "an event published recently stays")
	require.NoError(t, e.pool.QueryRow(context.Background(), `SELECT count(*) FROM event_outbox WHERE order_id = $1`, undispatched).Scan(&n))
	assert.Equal(t, 1, n, "an old event not yet handed to the webhook dispatcher stays")
}

// A stream that disappears (a NATS server started without its store) is
// created again by the leader, and the events that wait go into it.
func TestTheLeaderRecreatesAStreamThatIsGone(t *testing.T) {
	e := newRelayEnv(t)
	e.enqueue(events.OrderShipped)
	e.relay()
	e.waitPublished()
	require.NoError(t, e.js.DeleteStream(context.Background(), "ORDERS"))
	e.enqueue(events.OrderShipped, events.OrderDelivered)
	e.waitPublished()
	envs, _ := e.received()
	assert.Len(t, envs, 2, "the new ORDERS stream holds the two events published after it was gone")
}
