package chaos

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow/activities/webhooks"
	"github.com/orderflow/orderflow/devtools/subscriber"
)

// deliver posts one event to the subscriber as orderflow's sender does.
func deliver(t *testing.T, s *chaosSubscriber, secret string, id int64, typ, order string) {
	t.Helper()
	body := fmt.Sprintf(`{"id":"%d","type":"%s","version":1,"occurred_at":"2026-12-07T09:00:00Z","region":"local","order_id":"%s","data":{}}`, id, typ, order)
	req, err := http.NewRequest(http.MethodPost, "http://"+s.srv.Addr()+"/", strings.NewReader(body))
	require.NoError(t, err)
	require.NoError(t, webhooks.SetHeaders(req.Header, []string{secret}, fmt.Sprint(id), time.Now(), []byte(body)))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
}

func newChaosSubscriber(t *testing.T) (*chaosSubscriber, string) {
	secret, err := webhooks.NewSecret()
	require.NoError(t, err)
	rec, err := subscriber.New(secret)
	require.NoError(t, err)
	srv, err := subscriber.Listen("127.0.0.1:0", rec)
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close(context.Background()) })
	return &chaosSubscriber{name: "erp", types: []string{"order.created", "order.confirmed"}, srv: srv}, secret
}

// Every event once, each order's in id order, redeliveries of the same id
// dropped: no counterexample. A missing event, one of a type not subscribed,
// one of the run's orders not in the outbox, an order's events out of
// order, and a delivery whose signature does not verify are each named.
func TestSubscriberInvariantsNameEveryKindOfBreach(t *testing.T) {
	expected := []outboxEvent{{10, "order.created", "A"}, {11, "order.created", "B"}, {12, "order.confirmed", "A"}, {13, "order.confirmed", "B"}}
	run := []string{"A", "B"}

	clean, secret := newChaosSubscriber(t)
	deliver(t, clean, secret, 10, "order.created", "A")
	deliver(t, clean, secret, 11, "order.created", "B")
	deliver(t, clean, secret, 10, "order.created", "A") // a redelivery
	deliver(t, clean, secret, 12, "order.confirmed", "A")
	deliver(t, clean, secret, 13, "order.confirmed", "B")
	deliver(t, clean, secret, 99, "order.created", "another run's order")
	assert.Empty(t, exactlyOnce(clean, expected, run))
	assert.Empty(t, inOrder(clean))

	broken, secret := newChaosSubscriber(t)
	deliver(t, broken, secret, 12, "order.confirmed", "A")
	deliver(t, broken, secret, 10, "order.created", "A") // after its order's later event
	deliver(t, broken, secret, 11, "order.created", "B")
	deliver(t, broken, secret, 14, "payment.refunded", "B")
	deliver(t, broken, secret, 15, "order.confirmed", "B")
	deliver(t, broken, "whsec_"+strings.Repeat("A", 44), 13, "order.confirmed", "B") // another secret: refused
	once := strings.Join(exactlyOnce(broken, expected, run), "\n")
	assert.Contains(t, once, "event 13 order.confirmed of B never acknowledged")
	assert.Contains(t, once, "event 14 of type payment.refunded, which it did not subscribe to")
	assert.Contains(t, once, "event 15 order.confirmed of B is not in the outbox")
	assert.Contains(t, once, "1 deliveries refused 401")
	assert.Equal(t, []string{"erp: order A: event 10 (order.created) acknowledged after event 12"}, inOrder(broken))
}
