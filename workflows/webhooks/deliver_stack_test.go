package webhooks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.uber.org/zap/zaptest"

	"github.com/orderflow/orderflow/activities/events"
	hooks "github.com/orderflow/orderflow/activities/webhooks"
	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/workflows/webhooks"
)

// received is one request the test receiver took.
type received struct {
	id, timestamp, signature string
	body                     []byte
	env                      events.Envelope
	// verified lists, per secret the receiver knows, whether the Standard
	// Webhooks reference library accepted the request with it.
	verified map[string]bool
	status   int
}

// receiver is a subscriber's endpoint: it verifies every request with the
// reference library against the secrets it is told, and answers what
// answer says (200 when nil). It keeps only the events of its region (or of
// its ids, for a replay, which reads every region): other packages' tests
// share the database and may run dispatchers of their own.
type receiver struct {
	srv     *httptest.Server
	region  string
	mu      sync.Mutex
	secrets []string
	got     []received
	answer  func(r received, n int) int
}

func newReceiver(t *testing.T, region string) *receiver {
	rc := &receiver{region: region}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		m := received{id: r.Header.Get(hooks.HeaderID), timestamp: r.Header.Get(hooks.HeaderTimestamp),
			signature: r.Header.Get(hooks.HeaderSignature), body: body, verified: map[string]bool{}}
		_ = json.Unmarshal(body, &m.env)
		if m.env.Region != rc.region {
			return
		}
		rc.mu.Lock()
		defer rc.mu.Unlock()
		for _, s := range rc.secrets {
			wh, err := standardwebhooks.NewWebhook(s)
			m.verified[s] = err == nil && wh.Verify(body, r.Header) == nil
		}
		m.status = http.StatusOK
		if rc.answer != nil {
			m.status = rc.answer(m, len(rc.got))
		}
		rc.got = append(rc.got, m)
		w.WriteHeader(m.status)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) trust(secrets ...string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.secrets = secrets
}

func (rc *receiver) all() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// delivered returns the ids the receiver accepted (2xx), in arrival order.
func (rc *receiver) delivered() []string {
	var ids []string
	for _, m := range rc.all() {
		if m.status < 300 {
			ids = append(ids, m.id)
		}
	}
	return ids
}

// stack is a region of the test database with its own webhooks worker and
// dispatcher on the test Temporal server.
type stack struct {
	t      *testing.T
	pool   *pgxpool.Pool
	c      client.Client
	region string
	policy hooks.Policy
	store  hooks.Store
}

func newStack(t *testing.T, disableAfter time.Duration) *stack {
	s := &stack{t: t, pool: testkit.DB(t), c: testkit.Temporal(t), region: "wh-" + uuid.NewString()[:8]}
	s.store = hooks.Store{DB: s.pool}
	s.policy = hooks.Policy{TaskQueue: hooks.TaskQueue(s.region), RetryFor: time.Minute, RetryInitial: 100 * time.Millisecond,
		RetryMax: 400 * time.Millisecond, Timeout: 5 * time.Second, Idle: 2 * time.Second}
	log := zaptest.NewLogger(t)
	w := worker.New(s.c, s.policy.TaskQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(webhooks.Deliver, workflow.RegisterOptions{Name: webhooks.Workflow})
	w.RegisterWorkflowWithOptions(webhooks.Replay, workflow.RegisterOptions{Name: webhooks.ReplayWorkflow})
	w.RegisterActivity(&hooks.Activities{DB: s.pool, HTTP: hooks.NewHTTPClient(5*time.Second, true), Temporal: s.c,
		DisableAfter: disableAfter, Log: log})
	require.NoError(t, w.Start())
	ctx, cancel := context.WithCancel(context.Background())
	d := &hooks.Dispatcher{DB: s.pool, Temporal: s.c, Region: s.region, Policy: s.policy, Log: log, Poll: 50 * time.Millisecond}
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; w.Stop() })
	return s
}

// endpoint registers rc for types and deletes it when the test ends.
func (s *stack) endpoint(rc *receiver, types ...string) (hooks.Endpoint, string) {
	ep, secret, err := s.store.Create(context.Background(), rc.srv.URL+"/hook", "test", types)
	require.NoError(s.t, err)
	s.t.Cleanup(func() { _ = s.store.Delete(context.Background(), ep.ID) })
	rc.trust(secret)
	return ep, secret
}

// emit writes an event of the stack's region into the outbox, in partition
// (an order), and returns its id.
func (s *stack) emit(partition, typ string) string {
	var id int64
	err := s.pool.QueryRow(context.Background(), `INSERT INTO event_outbox (type, key, partition, region, payload)
		VALUES ($1, $2, $3, $4, jsonb_build_object('n', $2::text)) RETURNING id`,
		typ, typ+":"+uuid.NewString(), partition, s.region).Scan(&id)
	require.NoError(s.t, err)
	return fmt.Sprint(id)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 60*time.Second, 20*time.Millisecond, "waiting for %s", what)
}

// Real deliveries verify with the Standard Webhooks reference library; the
// same library refuses a tampered body and a stale timestamp; after a
// rotation both secrets verify during the overlap, and a retired secret no
// longer does. Only the subscribed types are sent.
func TestDeliveriesVerifyWithTheReferenceLibraryWhichRefusesTamperingStaleTimestampsAndRetiredSecrets(t *testing.T) {
	s := newStack(t, time.Hour)
	rc := newReceiver(t, s.region)
	ep, first := s.endpoint(rc, events.OrderCreated, events.OrderConfirmed)
	order := uuid.NewString()
	created := s.emit(order, events.OrderCreated)
	s.emit(order, events.PaymentProcessed)
	confirmed := s.emit(order, events.OrderConfirmed)
	waitFor(t, "two deliveries", func() bool { return len(rc.all()) >= 2 })
	got := rc.all()
	require.Len(t, got, 2, "the payment event is not subscribed")
	assert.Equal(t, []string{created, confirmed}, []string{got[0].id, got[1].id})
	for _, m := range got {
		assert.True(t, m.verified[first], "reference library accepts delivery %s", m.id)
		assert.Equal(t, m.id, m.env.ID, "webhook-id is the envelope's id")
		assert.Equal(t, s.region, m.env.Region)
	}
	assert.Equal(t, events.OrderConfirmed, got[1].env.Type)

	// Tampered body, stale timestamp: refused by the library.
	wh, err := standardwebhooks.NewWebhook(first)
	require.NoError(t, err)
	h := http.Header{}
	h.Set(hooks.HeaderID, got[0].id)
	h.Set(hooks.HeaderTimestamp, got[0].timestamp)
	h.Set(hooks.HeaderSignature, got[0].signature)
	tampered := []byte(strings.Replace(string(got[0].body), s.region, s.region+"x", 1))
	assert.Error(t, wh.Verify(tampered, h), "a tampered body is refused")
	require.NoError(t, hooks.SetHeaders(h, []string{first}, got[0].id, time.Now().Add(-10*time.Minute), got[0].body))
	assert.Error(t, wh.Verify(got[0].body, h), "a stale timestamp is refused")
	require.NoError(t, hooks.SetHeaders(h, []string{first}, got[0].id, time.Now(), got[0].body))
	assert.NoError(t, wh.Verify(got[0].body, h), "the same message signed now is accepted")

	// Rotation with an overlap: both secrets sign.
	_, second, err := s.store.Rotate(context.Background(), ep.ID, time.Hour)
	require.NoError(t, err)
	rc.trust(first, second)
	shipped := s.emit(order, events.OrderCreated)
	waitFor(t, "the delivery after the rotation", func() bool { return len(rc.all()) >= 3 })
	m := rc.all()[2]
	assert.Equal(t, shipped, m.id)
	assert.True(t, m.verified[first] && m.verified[second], "both secrets verify during the overlap: %v", m.verified)
	assert.Len(t, strings.Fields(m.signature), 2)

	// A second rotation retires the first secret at once (at most two
	// active); with no overlap the second retires too.
	_, third, err := s.store.Rotate(context.Background(), ep.ID, 0)
	require.NoError(t, err)
	rc.trust(first, second, third)
	last := s.emit(order, events.OrderConfirmed)
	waitFor(t, "the delivery after the second rotation", func() bool { return len(rc.all()) >= 4 })
	m = rc.all()[3]
	assert.Equal(t, last, m.id)
	assert.True(t, m.verified[third], "the new secret verifies")
	assert.False(t, m.verified[first], "the retired secret no longer verifies")
	assert.False(t, m.verified[second], "a secret rotated out with no overlap no longer verifies")
}

// An order's later event waits for the earlier one, which fails twice and
// is retried until it succeeds; another order's event is not held up. The
// delivery log has every attempt.
func TestAnOrdersLaterEventWaitsForItsEarlierOneWhichIsRetriedUntilItSucceeds(t *testing.T) {
	s := newStack(t, time.Hour)
	rc := newReceiver(t, s.region)
	ep, _ := s.endpoint(rc, events.OrderCreated, events.OrderConfirmed)
	a, b := uuid.NewString(), uuid.NewString()
	a1 := s.emit(a, events.OrderCreated)
	a2 := s.emit(a, events.OrderConfirmed)
	b1 := s.emit(b, events.OrderCreated)
	failures := 0
	rc.answer = func(m received, _ int) int {
		// a1 fails until b1 has arrived and twice at least: b's events do
		// not wait for a's.
		if m.id == a1 && (failures < 2 || !containsID(rc.got, b1)) {
			failures++
			return http.StatusInternalServerError
		}
		return http.StatusOK
	}
	waitFor(t, "every event delivered", func() bool { return len(rc.delivered()) == 3 })
	var arrivals []string
	for _, m := range rc.all() {
		arrivals = append(arrivals, m.id)
	}
	var aOnly []string
	for _, id := range rc.delivered() {
		if id != b1 {
			aOnly = append(aOnly, id)
		}
	}
	assert.Equal(t, []string{a1, a2}, aOnly, "a's events in order")
	firstA2 := indexOf(arrivals, a2)
	lastA1 := len(arrivals) - 1 - indexOf(reverse(arrivals), a1)
	assert.Greater(t, firstA2, lastA1, "a2 was not sent before a1 succeeded: %v", arrivals)
	assert.Less(t, indexOf(arrivals, b1), lastA1, "b1 went while a1 was failing: %v", arrivals)

	log, err := s.store.Deliveries(context.Background(), ep.ID, 0, 50)
	require.NoError(t, err)
	var a1Attempts []hooks.Attempt
	for _, row := range log {
		if fmt.Sprint(row.EventID) == a1 {
			a1Attempts = append([]hooks.Attempt{row}, a1Attempts...)
		}
	}
	require.GreaterOrEqual(t, len(a1Attempts), 3)
	for i, row := range a1Attempts {
		assert.Equal(t, i+1, row.Attempt)
	}
	assert.Equal(t, http.StatusInternalServerError, a1Attempts[0].StatusCode)
	assert.Contains(t, a1Attempts[0].Error, "500")
	assert.Equal(t, http.StatusOK, a1Attempts[len(a1Attempts)-1].StatusCode)
}

// An endpoint that fails for the declared duration (1 s here, 24 h in
// production) is disabled with its reason, and its later events are not
// sent.
func TestAnEndpointFailingForTheDeclaredDurationIsDisabled(t *testing.T) {
	s := newStack(t, time.Second)
	rc := newReceiver(t, s.region)
	rc.answer = func(received, int) int { return http.StatusServiceUnavailable }
	ep, _ := s.endpoint(rc, events.OrderCreated, events.OrderConfirmed)
	order := uuid.NewString()
	s.emit(order, events.OrderCreated)
	waitFor(t, "the endpoint disabled", func() bool {
		got, err := s.store.Get(context.Background(), ep.ID)
		return err == nil && !got.Enabled
	})
	got, err := s.store.Get(context.Background(), ep.ID)
	require.NoError(t, err)
	assert.Contains(t, got.DisabledReason, "failing since")
	require.NotNil(t, got.FailingSince)
	n := len(rc.all())
	assert.GreaterOrEqual(t, n, 2, "retried before it was disabled")

	// The delivery gives up: its workflow goes on to the next event, which
	// is not sent to a disabled endpoint (the dispatcher skips it too).
	s.emit(order, events.OrderConfirmed)
	wid := hooks.DeliveryWorkflowID(ep.ID, order)
	waitFor(t, "the delivery workflow to finish", func() bool {
		d, err := s.c.DescribeWorkflow(context.Background(), wid, "")
		return err == nil && d.RawResponse.GetWorkflowExecutionInfo().GetCloseTime() != nil
	})
	assert.Len(t, rc.all(), n, "nothing sent after it was disabled")
}

// A replay from a cursor and one from a time send the endpoint's events
// again, in order per order; a second signal of an event is dropped and a
// redelivery sends it again.
func TestReplayRedeliveryAndDuplicateSignals(t *testing.T) {
	s := newStack(t, time.Hour)
	rc := newReceiver(t, s.region)
	ep, _ := s.endpoint(rc, events.OrderCreated, events.OrderConfirmed, events.OrderDelivered)
	a, b := uuid.NewString(), uuid.NewString()
	a1 := s.emit(a, events.OrderCreated)
	b1 := s.emit(b, events.OrderCreated)
	a2 := s.emit(a, events.OrderConfirmed)
	b2 := s.emit(b, events.OrderConfirmed)
	waitFor(t, "four deliveries", func() bool { return len(rc.delivered()) == 4 })

	// The same event signalled again (a dispatcher that died before it
	// marked it): dropped. Forced: sent again.
	ctx := context.Background()
	var a1n int64
	_, _ = fmt.Sscan(a1, &a1n)
	require.NoError(t, hooks.Signal(ctx, s.c, s.policy, ep.ID, a, hooks.Item{EventID: a1n}))
	require.NoError(t, hooks.Signal(ctx, s.c, s.policy, ep.ID, a, hooks.Item{EventID: a1n, Force: true}))
	// An event after both signals: once it is in, both were handled.
	a3 := s.emit(a, events.OrderDelivered)
	waitFor(t, "the redelivery and the next event", func() bool { return indexOf(rc.delivered(), a3) >= 0 })
	assert.Equal(t, []string{a1, a2, a1, a3}, ofPartition(rc.delivered(), a1, a2, a3), "a1 once more, forced; the plain signal dropped")

	// Replay from a cursor: every event after b1.
	mark := len(rc.all())
	var b1n int64
	_, _ = fmt.Sscan(b1, &b1n)
	run, err := s.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "webhook-replay:" + uuid.NewString(), TaskQueue: s.policy.TaskQueue},
		webhooks.ReplayWorkflow, webhooks.ReplayInput{EndpointID: ep.ID, After: b1n, Policy: s.policy})
	require.NoError(t, err)
	var res webhooks.ReplayResult
	require.NoError(t, run.Get(ctx, &res))
	assert.GreaterOrEqual(t, res.Events, 2)
	ofOrder := func(ids ...string) []string {
		var out []string
		for _, m := range rc.all()[mark:] {
			if indexOf(ids, m.id) >= 0 {
				out = append(out, m.id)
			}
		}
		return out
	}
	waitFor(t, "the replay's deliveries", func() bool { return len(ofOrder(a2, b2)) >= 2 })
	assert.Len(t, ofOrder(a1, b1), 0, "nothing at or before the cursor")

	// Replay from a time: all four, a's and b's each in order.
	mark = len(rc.all())
	run, err = s.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "webhook-replay:" + uuid.NewString(), TaskQueue: s.policy.TaskQueue},
		webhooks.ReplayWorkflow, webhooks.ReplayInput{EndpointID: ep.ID, Since: time.Now().Add(-time.Hour), Policy: s.policy})
	require.NoError(t, err)
	require.NoError(t, run.Get(ctx, &res))
	waitFor(t, "the replay from a time", func() bool { return len(ofOrder(a1, a2, b1, b2)) >= 4 })
	ofA, ofB := ofOrder(a1, a2), ofOrder(b1, b2)
	assert.Equal(t, []string{a1, a2}, ofA)
	assert.Equal(t, []string{b1, b2}, ofB)
}

// ofPartition keeps the ids among ids, in their order in xs.
func ofPartition(xs []string, ids ...string) []string {
	var out []string
	for _, x := range xs {
		if indexOf(ids, x) >= 0 {
			out = append(out, x)
		}
	}
	return out
}

func containsID(ms []received, id string) bool {
	for _, m := range ms {
		if m.id == id {
			return true
		}
	}
	return false
}

func indexOf(xs []string, x string) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}

func reverse(xs []string) []string {
	out := make([]string, len(xs))
	for i, v := range xs {
		out[len(xs)-1-i] = v
	}
	return out
}
