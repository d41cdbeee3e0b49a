package notify_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/orderflow/orderflow/activities/notify"
	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/db"
)

// mailEnv is a real mailpit, the SMTP mailer pointed at it, and a region of
// the test database that no other test writes notifications for.
type mailEnv struct {
	t      *testing.T
	pool   *pgxpool.Pool
	pit    *testkit.Mailpit
	mailer *notify.SMTPMailer
	region string
}

func newMailEnv(t *testing.T) *mailEnv {
	// The server refuses, for good, recipients outside customer.test.
	e := &mailEnv{t: t, pool: testkit.DB(t), pit: testkit.StartMailpit(t, "--smtp-allowed-recipients", `@customer\.test$`),
		region: "mail-" + uuid.NewString()[:8]}
	var err error
	e.mailer, err = notify.NewSMTPMailer(notify.SMTPConfig{Host: e.pit.SMTPHost, Port: e.pit.SMTPPort, TLS: "none",
		Username: "orderflow", Password: "secret", From: "orders@orderflow.test", Timeout: 2 * time.Second})
	require.NoError(t, err)
	return e
}

// notify writes an order of the test's region for recipient and puts its
// message of kind in the outbox, as the confirming transaction does.
func (e *mailEnv) notify(kind, recipient string) string {
	e.t.Helper()
	id := uuid.NewString()
	ctx := context.Background()
	require.NoError(e.t, db.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO orders (order_id, customer_id, email_enc, region, status, total_cents, currency)
			VALUES ($1, 'c-mail', $2, $3, 'CONFIRMED', 1250, 'USD')`, id, testkit.PII(e.t).SealString(recipient, id), e.region); err != nil {
			return err
		}
		return notify.Enqueue(ctx, tx, id, kind, "Subject of "+kind)
	}))
	return id
}

// run delivers the region's outbox through the SMTP mailer until the test
// ends or stop is called.
func (e *mailEnv) run() (ob *notify.Outbox, stop func()) {
	ob = &notify.Outbox{DB: e.pool, PII: testkit.PII(e.t), Region: e.region, Mailer: e.mailer, Log: zaptest.NewLogger(e.t),
		Workers: 4, Poll: 20 * time.Millisecond, Backoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, MaxAttempts: 2}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); ob.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	e.t.Cleanup(stop)
	return ob, stop
}

// count counts the region's notifications in status.
func (e *mailEnv) count(status string, minAttempts int) int {
	e.t.Helper()
	var n int
	require.NoError(e.t, e.pool.QueryRow(context.Background(),
		`SELECT count(*) FROM notifications WHERE region = $1 AND status = $2 AND attempts >= $3`, e.region, status, minAttempts).Scan(&n))
	return n
}

func (e *mailEnv) waitSent(n int) {
	e.t.Helper()
	require.Eventually(e.t, func() bool { return e.count("sent", 0) == n }, 30*time.Second, 20*time.Millisecond)
}

func TestEachKindIsMailedWithItsTemplatesAndAStableMessageID(t *testing.T) {
	e := newMailEnv(t)
	kinds := []string{notify.OrderConfirmed, notify.OrderFailed, notify.OrderShipped, notify.OrderDelivered,
		notify.OrderCancelled, notify.OrderRefunded}
	ids := map[string]string{}
	for _, k := range kinds {
		ids[k] = e.notify(k, k+"@customer.test")
	}
	e.run()
	e.waitSent(len(kinds))

	got := map[string]testkit.MailMessage{}
	for _, s := range e.pit.Messages(t) {
		got[s.Subject] = e.pit.Message(t, s.ID)
	}
	require.Len(t, got, len(kinds))
	for _, k := range kinds {
		m, ok := got["Subject of "+k]
		require.True(t, ok, k)
		require.Len(t, m.To, 1)
		assert.Equal(t, k+"@customer.test", m.To[0].Address)
		assert.Regexp(t, `^notification-[0-9]+\.`+ids[k]+`@orderflow\.test$`, m.MessageID)
		assert.Contains(t, m.Text, "Order: "+ids[k], k)
		assert.Contains(t, m.Text, "12.50 USD", k)
		assert.Contains(t, m.HTML, "<td>"+ids[k]+"</td>", k)
	}
	assert.Contains(t, got["Subject of order_shipped"].Text, "has left our warehouse")
	assert.Contains(t, got["Subject of order_refunded"].HTML, "<h1>Your refund is on its way</h1>")
}

// With the mail server down, messages stay pending and are retried with
// backoff, past MaxAttempts (an outage is no reason to give up); once it
// is back every message arrives, each once.
func TestMailsWaitWhileSMTPIsDownAndEachArrivesOnceAfter(t *testing.T) {
	e := newMailEnv(t)
	e.pit.Stop()
	const n = 8
	for i := range n {
		e.notify(notify.OrderConfirmed, "down"+string(rune('a'+i))+"@customer.test")
	}
	ob, _ := e.run()
	require.Eventually(t, func() bool { return e.count("pending", 3) == n }, 30*time.Second, 20*time.Millisecond,
		"every message retried at least three times")
	assert.Zero(t, ob.Sent())
	assert.Zero(t, e.count("dead", 0), "no message given up while the server is down")
	var lastError string
	require.NoError(t, e.pool.QueryRow(context.Background(), `SELECT last_error FROM notifications WHERE region = $1 LIMIT 1`, e.region).Scan(&lastError))
	assert.Contains(t, lastError, "smtp dial")

	e.pit.Start()
	e.waitSent(n)
	msgs := e.pit.Messages(t)
	assert.Len(t, msgs, n)
	seen := map[string]int{}
	for _, m := range msgs {
		seen[m.MessageID]++
	}
	assert.Len(t, seen, n, "n distinct messages, none twice")
}

// A message sent again after a crash between the server taking it and
// the outbox recording it carries the same Message-ID, so the copy is
// recognizable as one.
func TestAMessageSentAgainAfterACrashKeepsItsMessageID(t *testing.T) {
	e := newMailEnv(t)
	e.notify(notify.OrderConfirmed, "twice@customer.test")
	_, stop := e.run()
	e.waitSent(1)
	stop()
	_, err := e.pool.Exec(context.Background(), `UPDATE notifications SET status = 'pending', sent_at = NULL, next_attempt_at = now() WHERE region = $1`, e.region)
	require.NoError(t, err)
	e.run()
	e.waitSent(1)
	msgs := e.pit.Messages(t)
	require.Len(t, msgs, 2)
	assert.Equal(t, msgs[0].MessageID, msgs[1].MessageID)
}

// A recipient the server refuses for good (a 5xx), or that is no address,
// is given up after MaxAttempts; the error kept names no address.
func TestARefusedRecipientIsGivenUpAndNotRecorded(t *testing.T) {
	e := newMailEnv(t)
	e.notify(notify.OrderConfirmed, "someone@elsewhere.test")
	e.notify(notify.OrderConfirmed, "not an address")
	e.run()
	require.Eventually(t, func() bool { return e.count("dead", 2) == 2 }, 30*time.Second, 20*time.Millisecond)
	assert.Empty(t, e.pit.Messages(t))
	rows, err := e.pool.Query(context.Background(), `SELECT last_error FROM notifications WHERE region = $1 ORDER BY id`, e.region)
	require.NoError(t, err)
	errs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Len(t, errs, 2)
	assert.Contains(t, errs[0], "smtp refused")
	assert.Contains(t, errs[1], "recipient")
	for _, e := range errs {
		assert.NotContains(t, e, "@", "no address in %q", e)
		assert.NotContains(t, e, "not an address")
	}
}

func TestParseSMTPURL(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want notify.SMTPConfig
		err  string
	}{
		{raw: "smtp://mail.example.com", want: notify.SMTPConfig{Host: "mail.example.com", Port: 587}},
		{raw: "smtp://u:p%40ss@127.0.0.1:1025?tls=none", want: notify.SMTPConfig{Host: "127.0.0.1", Port: 1025, Username: "u", Password: "p@ss", TLS: "none"}},
		{raw: "smtps://mail.example.com", want: notify.SMTPConfig{Host: "mail.example.com", Port: 465, TLS: "implicit"}},
		{raw: "smtp://mail.example.com?tls=maybe", err: "tls"},
		{raw: "http://mail.example.com", err: "scheme"},
		{raw: "smtp://:25", err: "no host"},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			got, err := notify.ParseSMTPURL(tc.raw)
			if tc.err != "" {
				require.Error(t, err)
				assert.True(t, strings.Contains(err.Error(), tc.err), err.Error())
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}
