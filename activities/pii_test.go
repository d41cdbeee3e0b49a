package activities_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"
	"go.uber.org/zap/zaptest"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/notify"
	"github.com/orderflow/orderflow/activities/orders"
	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/pii"
)

// recorder is a mailer that keeps the address each order's message went to.
type recorder struct {
	mu sync.Mutex
	to map[string]string // order id -> recipient
}

func (r *recorder) Send(_ context.Context, m notify.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.to[m.OrderID] = m.Recipient
	return nil
}

func (r *recorder) sentTo(orderID string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.to[orderID]
}

func ring(t *testing.T, spec, active string) *pii.Keyring {
	t.Helper()
	k, err := pii.Load(pii.Config{Keys: spec, ActiveKey: active})
	require.NoError(t, err)
	return k
}

// runOutbox delivers region's messages with keys until the test ends.
func runOutbox(t *testing.T, f *fixture, region string, keys *pii.Keyring, box *recorder) {
	ob := &notify.Outbox{DB: f.pool, PII: keys, Region: region, Mailer: box, Log: zaptest.NewLogger(t), Workers: 2,
		Poll: 20 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); ob.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// stored is what the database holds of an order's e-mail and its message's
// recipient: plaintext columns and the key id of the ciphertexts.
type stored struct {
	email, recipient       *string
	emailKID, recipientKID string
	emailEnc, recipientEnc []byte
}

func storedPII(t *testing.T, f *fixture, orderID string) stored {
	t.Helper()
	var s stored
	require.NoError(t, f.pool.QueryRow(context.Background(), `SELECT o.email, o.email_enc, n.recipient, n.recipient_enc
		FROM orders o LEFT JOIN notifications n ON n.order_id = o.order_id WHERE o.order_id = $1`, orderID).
		Scan(&s.email, &s.emailEnc, &s.recipient, &s.recipientEnc))
	if s.emailEnc != nil {
		s.emailKID, _ = pii.KeyID(s.emailEnc)
	}
	if s.recipientEnc != nil {
		s.recipientKID, _ = pii.KeyID(s.recipientEnc)
	}
	return s
}

// failedOrder creates an order for email under keys and fails it, which
// puts a message to email in the outbox.
func failedOrder(t *testing.T, f *fixture, keys *pii.Keyring, region, sku, email string) string {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	ord := &orders.Activities{DB: f.pool, PII: keys}
	env.RegisterActivity(ord)
	id := uuid.NewString()
	_, err := env.ExecuteActivity(ord.Create, orders.CreateOrderInput{OrderID: id, CustomerID: "c-pii", Email: email, Region: region,
		Items: []orderflow.Item{{SKU: sku, Quantity: 1}}})
	require.NoError(t, err)
	_, err = env.ExecuteActivity(ord.SetStatus, orders.SetStatusInput{OrderID: id, Status: orderflow.StatusFailed, FailureReason: "x"})
	require.NoError(t, err)
	return id
}

func TestStoredEmailIsCiphertextUnderTheActiveKey(t *testing.T) {
	f := newFixture(t)
	sku := testkit.Product(t, f.pool, 100, 10)
	k1 := "k1:" + pii.NewKey()
	keys := ring(t, k1, "")
	id := failedOrder(t, f, keys, "pii-"+uuid.NewString()[:8], sku, "grace@example.com")

	s := storedPII(t, f, id)
	assert.Nil(t, s.email, "no plaintext column value")
	assert.Nil(t, s.recipient, "no plaintext recipient")
	assert.Equal(t, "k1", s.emailKID)
	assert.Equal(t, "k1", s.recipientKID)
	var plain int
	require.NoError(t, f.pool.QueryRow(context.Background(), `SELECT count(*) FROM orders o JOIN notifications n USING (order_id)
		WHERE o.order_id = $1 AND (position(convert_to('grace@', 'UTF8') IN o.email_enc) > 0
		   OR position(convert_to('grace@', 'UTF8') IN n.recipient_enc) > 0 OR o::text LIKE '%grace@%' OR n::text LIKE '%grace@%')`, id).Scan(&plain))
	assert.Zero(t, plain, "the address appears nowhere in the rows")
	got, err := keys.OpenString(s.emailEnc, id)
	require.NoError(t, err)
	assert.Equal(t, "grace@example.com", got)
}

// Rotation end to end: orders sealed under k1 are still sent once k2 is
// active; a worker that lost k1 fails their messages naming k1 (and never
// sends them elsewhere) until `orderflow migrate`'s re-encryption puts them
// under k2, after which they go out.
func TestKeyRotationKeepsOldRowsDeliverable(t *testing.T) {
	f := newFixture(t)
	sku := testkit.Product(t, f.pool, 100, 10)
	region := "pii-" + uuid.NewString()[:8]
	k1, k2 := "k1:"+pii.NewKey(), "k2:"+pii.NewKey()
	before, rotated, after := ring(t, k1, ""), ring(t, k1+","+k2, "k2"), ring(t, k2, "")

	old := failedOrder(t, f, before, region, sku, "old@example.com")
	fresh := failedOrder(t, f, rotated, region, sku, "new@example.com")
	assert.Equal(t, "k1", storedPII(t, f, old).emailKID)
	assert.Equal(t, "k2", storedPII(t, f, fresh).emailKID, "writes use the active key")

	// A worker that lost k1 too early: the k2 message goes, the k1 one fails.
	box := &recorder{to: map[string]string{}}
	runOutbox(t, f, region, after, box)
	require.Eventually(t, func() bool {
		var lastErr *string
		require.NoError(t, f.pool.QueryRow(context.Background(),
			`SELECT last_error FROM notifications WHERE order_id = $1`, old).Scan(&lastErr))
		return box.sentTo(fresh) != "" && lastErr != nil
	}, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, "new@example.com", box.sentTo(fresh))
	assert.Empty(t, box.sentTo(old))
	var lastErr string
	require.NoError(t, f.pool.QueryRow(context.Background(), `SELECT last_error FROM notifications WHERE order_id = $1`, old).Scan(&lastErr))
	assert.Contains(t, lastErr, `unknown key id "k1"`)

	// Re-encryption without k1 cannot open those rows: it leaves them and
	// says which key is missing.
	n, err := orders.EncryptPII(context.Background(), f.pool, after, region)
	require.NoError(t, err)
	assert.Equal(t, 2, n.Unreadable, "the k1 order and its message")
	assert.Zero(t, n.Orders+n.Notifications)
	require.ErrorIs(t, n.UnreadableErr, pii.ErrUnknownKey)
	assert.Equal(t, "k1", storedPII(t, f, old).emailKID)

	// Re-encryption with both keys puts every row of the region under k2.
	n, err = orders.EncryptPII(context.Background(), f.pool, rotated, region)
	require.NoError(t, err)
	assert.Equal(t, orders.Reencrypted{Orders: 1, Notifications: 1}, n)
	s := storedPII(t, f, old)
	assert.Equal(t, "k2", s.emailKID)
	assert.Equal(t, "k2", s.recipientKID)
	got, err := after.OpenString(s.emailEnc, old)
	require.NoError(t, err)
	assert.Equal(t, "old@example.com", got)
	n, err = orders.EncryptPII(context.Background(), f.pool, rotated, region)
	require.NoError(t, err)
	assert.Zero(t, n, "nothing left to re-encrypt")

	// The retried message now opens with k2 alone (after its 1-2 s backoff).
	require.Eventually(t, func() bool { return box.sentTo(old) != "" }, 15*time.Second, 50*time.Millisecond)
	assert.Equal(t, "old@example.com", box.sentTo(old))
}

// Rows written before migration 0006 hold the address in plaintext: the
// outbox still delivers them, and EncryptPII encrypts and clears them; it
// refuses without keys rather than leave them.
func TestPlaintextRowsAreEncryptedAtMigrate(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	region := "pii-" + uuid.NewString()[:8]
	id := uuid.NewString()
	insertPlaintextOrder(t, f, id, region, "legacy@example.com")

	_, err := orders.EncryptPII(ctx, f.pool, nil, region)
	require.ErrorIs(t, err, pii.ErrNoKeys)

	keys := ring(t, "k1:"+pii.NewKey(), "")
	n, err := orders.EncryptPII(ctx, f.pool, keys, region)
	require.NoError(t, err)
	assert.Equal(t, orders.Reencrypted{Orders: 1, Notifications: 1}, n)
	s := storedPII(t, f, id)
	assert.Nil(t, s.email)
	assert.Nil(t, s.recipient)
	assert.NotContains(t, string(s.emailEnc)+string(s.recipientEnc), "legacy@")
	got, err := keys.OpenString(s.recipientEnc, id)
	require.NoError(t, err)
	assert.Equal(t, "legacy@example.com", got)

	box := &recorder{to: map[string]string{}}
	runOutbox(t, f, region, keys, box)
	require.Eventually(t, func() bool { return box.sentTo(id) != "" }, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, "legacy@example.com", box.sentTo(id))
}

// A row still in plaintext (a worker of the previous release wrote it during
// a rolling upgrade) is delivered as it is until the next migrate.
func TestOutboxStillDeliversPlaintextRows(t *testing.T) {
	f := newFixture(t)
	region := "pii-" + uuid.NewString()[:8]
	id := uuid.NewString()
	insertPlaintextOrder(t, f, id, region, "rolling@example.com")
	box := &recorder{to: map[string]string{}}
	runOutbox(t, f, region, testkit.PII(t), box)
	require.Eventually(t, func() bool { return box.sentTo(id) != "" }, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, "rolling@example.com", box.sentTo(id))
}

func TestCreateWithoutKeyringFails(t *testing.T) {
	ord := &orders.Activities{DB: testkit.DB(t)}
	_, err := ord.Create(context.Background(), orders.CreateOrderInput{OrderID: uuid.NewString(), Email: "a@b.co"})
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "no PII keyring"), err.Error())
}

// insertPlaintextOrder writes a failed order and its pending message with the
// address in plaintext, as releases before migration 0006 stored them.
func insertPlaintextOrder(t *testing.T, f *fixture, id, region, email string) {
	t.Helper()
	ctx := context.Background()
	_, err := f.pool.Exec(ctx, `INSERT INTO orders (order_id, customer_id, email, region, status, total_cents, currency)
		VALUES ($1, 'c-legacy', $3, $2, 'FAILED', 100, 'USD')`, id, region, email)
	require.NoError(t, err)
	_, err = f.pool.Exec(ctx, `INSERT INTO notifications (order_id, region, kind, channel, recipient, subject, body)
		VALUES ($1, $2, 'order_failed', 'email', $3, 's', 'b')`, id, region, email)
	require.NoError(t, err)
}
