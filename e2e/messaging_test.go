package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow/activities/events"
	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/api"
	"github.com/orderflow/orderflow/devtools/testkit"
)

// TestWorkerMailsCustomersAndPublishesEvents runs `orderflow worker` and
// `orderflow api` as deployed, with SMTP_URL pointing at a real mailpit and
// NATS_URL at a real nats-server: a confirmed and a declined order each get
// their mail, and the streams carry each order's events once, in order, with
// the analytics consumer counting them.
func TestWorkerMailsCustomersAndPublishesEvents(t *testing.T) {
	pool := testkit.DB(t)
	provider := testkit.StartPaysim(t, "paysim-msg")
	pit, ns := testkit.StartMailpit(t), testkit.NATS(t)
	region := "msg-" + uuid.NewString()[:8]
	gateway := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
	workerAddr := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
	authCfg := testkit.AuthConfig()
	env := append(testkit.RedisEnv(t),
		"DATABASE_URL="+testkit.Require(t, testkit.EnvDatabase),
		"TEMPORAL_ADDRESS="+testkit.Require(t, testkit.EnvTemporal), "ORDERFLOW_REGION="+region, "LOG_LEVEL=warn",
		"PAYMENT_PROVIDERS=paysim-msg=paysim:"+provider.URL, "API_ADDR="+gateway, "WORKER_HEALTH_ADDR="+workerAddr,
		"AUTH_HS256_SECRET="+authCfg.HS256Secret,
		fmt.Sprintf("SMTP_URL=smtp://%s:%d?tls=none", pit.SMTPHost, pit.SMTPPort), "MAIL_FROM=orders@shop.test",
		"NATS_URL="+ns.URL,
	)
	startProcess(t, env, "http://"+workerAddr+"/health/live", "worker")
	startProcess(t, env, "http://"+gateway+"/health/live", "api")
	s := &stack{t: t, pool: pool, url: "http://" + gateway, tok: testkit.AuthWith(t, authCfg)}

	sku := testkit.Product(t, pool, 1250, 10)
	confirmed := s.placeOK(newOrder(customer(), payment.TokenVisa, api.OrderItem{SKU: sku, Quantity: 2}))
	declined := s.placeOK(newOrder(customer(), payment.TokenChargeDeclined, api.OrderItem{SKU: sku, Quantity: 1}))
	require.Equal(t, "CONFIRMED", s.waitTerminal(confirmed).Status)
	require.Equal(t, "FAILED", s.waitTerminal(declined).Status)

	// The mails, through SMTP into mailpit.
	var mails []testkit.MailSummary
	require.Eventually(t, func() bool { mails = pit.Messages(t); return len(mails) == 2 }, 30*time.Second, 50*time.Millisecond)
	bySubject := map[string]testkit.MailMessage{}
	for _, m := range mails {
		bySubject[m.Subject] = pit.Message(t, m.ID)
	}
	ok := bySubject["Your order is confirmed"]
	require.NotEmpty(t, ok.ID, "the confirmation: %v", mails)
	assert.Equal(t, "buyer@example.com", ok.To[0].Address)
	assert.Contains(t, ok.Text, confirmed)
	assert.Contains(t, ok.Text, "25.00 USD")
	assert.Contains(t, ok.HTML, "<td>"+confirmed+"</td>")
	assert.True(t, strings.HasSuffix(ok.MessageID, "."+confirmed+"@shop.test"), ok.MessageID)
	assert.Contains(t, bySubject["Your order could not be completed"].Text, declined)

	// The events, through the worker's relay into JetStream.
	want := map[string][]string{
		confirmed: {events.OrderCreated, events.InventoryUpdated, events.PaymentProcessed, events.InventoryUpdated, events.OrderConfirmed},
		declined:  {events.OrderCreated, events.InventoryUpdated, events.InventoryUpdated, events.OrderFailed},
	}
	nc, js, err := events.Connect(events.Config{URL: ns.URL}, "e2e")
	require.NoError(t, err)
	defer nc.Close()
	var got map[string][]string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		got = streamEvents(t, js) // it asserts, so not inside require.Eventually's goroutine
		if len(got[confirmed]) >= len(want[confirmed]) && len(got[declined]) >= len(want[declined]) || time.Now().After(deadline) {
			break
		}
	}
	for id, typs := range want {
		assert.Equal(t, typs, got[id], "order %s: its events once, in the order they happened", id)
	}

	// The analytics consumer counted them on the worker's /metrics.
	require.Eventually(t, func() bool {
		m := scrape(t, "http://"+workerAddr+"/metrics")
		return sum(m, "orderflow_analytics_orders_total", map[string]string{"outcome": "confirmed"}) == 1 &&
			sum(m, "orderflow_analytics_orders_total", map[string]string{"outcome": "failed"}) == 1 &&
			sum(m, "orderflow_analytics_order_value_cents_total", nil) == 2500 &&
			sum(m, "orderflow_events_published_total", nil) >= 9 // and restocks of other tests' products
	}, 30*time.Second, 100*time.Millisecond)
}

// streamEvents reads every message of the streams and returns the event
// types per order, merged across streams by id; within a stream, an
// order's events must come in id order (a restock, of no order, is ordered
// with its SKU's only).
func streamEvents(t *testing.T, js jetstream.JetStream) map[string][]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type ev struct {
		id  int
		typ string
	}
	per := map[string][]ev{}
	for _, st := range events.Streams {
		last := map[string]int{}
		s, err := js.Stream(ctx, st.Name)
		if err != nil {
			continue // not created yet
		}
		info, err := s.Info(ctx)
		require.NoError(t, err)
		// An ordered consumer reads the stream from the start in batches:
		// the shared scope's relay also publishes every other test's restocks.
		c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
		require.NoError(t, err)
		for read := uint64(0); read < info.State.Msgs; {
			batch, err := c.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
			require.NoError(t, err)
			n := 0
			for m := range batch.Messages() {
				n++
				var env events.Envelope
				require.NoError(t, json.Unmarshal(m.Data(), &env))
				require.Equal(t, env.ID, m.Headers().Get(jetstream.MsgIDHeader))
				var id int
				_, err = fmt.Sscan(env.ID, &id)
				require.NoError(t, err)
				if env.OrderID != "" { // events of no order (restocks) are ordered per SKU only
					require.Greater(t, id, last[env.OrderID], "stream %s: order %s's events in order", st.Name, env.OrderID)
					last[env.OrderID] = id
				}
				per[env.OrderID] = append(per[env.OrderID], ev{id, env.Type})
			}
			require.NoError(t, batch.Error())
			require.NotZero(t, n, "stream %s: %d of %d messages read", st.Name, read, info.State.Msgs)
			read += uint64(n)
		}
	}
	out := map[string][]string{}
	for order, evs := range per {
		for i := 1; i < len(evs); i++ {
			for j := i; j > 0 && evs[j].id < evs[j-1].id; j-- {
				evs[j], evs[j-1] = evs[j-1], evs[j]
			}
		}
		for _, e := range evs {
			out[order] = append(out[order], e.typ)
		}
	}
	return out
}
