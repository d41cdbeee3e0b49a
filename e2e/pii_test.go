package e2e

import (
	"context"
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/orders"
	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/api"
	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/auth"
)

// An order placed through the API and run by the saga leaves no plaintext
// e-mail in PostgreSQL: orders and the outbox hold a ciphertext under the
// workers' key, which opens to the address the customer gave.
func TestOrderThroughTheAPIStoresNoPlaintextEmail(t *testing.T) {
	s := newStack(t, true)
	sku := testkit.Product(t, s.pool, 700, 10)
	o := newOrder(customer(), payment.TokenChargeDeclined, api.OrderItem{SKU: sku, Quantity: 1})
	o.Email = "pii-" + uuid.NewString()[:8] + "@example.com"
	o.ShippingAddress.Line1 = "PII Street " + uuid.NewString()[:8]
	id := s.placeOK(o)
	require.Equal(t, orderflow.StatusFailed, s.waitTerminal(id).Status)

	ctx := context.Background()
	var email, recipient *string
	var emailEnc, recipientEnc []byte
	require.NoError(t, s.pool.QueryRow(ctx, `SELECT o.email, o.email_enc, n.recipient, n.recipient_enc
		FROM orders o JOIN notifications n USING (order_id) WHERE o.order_id = $1`, id).Scan(&email, &emailEnc, &recipient, &recipientEnc))
	assert.Nil(t, email)
	assert.Nil(t, recipient)
	for _, c := range [][]byte{emailEnc, recipientEnc} {
		require.NotEmpty(t, c)
		assert.NotContains(t, string(c), o.Email)
		got, err := testkit.PII(t).OpenString(c, id)
		require.NoError(t, err)
		assert.Equal(t, o.Email, got)
	}
	// The shipping address is sealed too, bound to the order and the
	// field: it opens to what the customer sent, and not as the e-mail.
	address, err := orders.ShippingAddress(ctx, s.pool, testkit.PII(t), id)
	require.NoError(t, err)
	assert.Equal(t, o.ShippingAddress, address)
	var addressEnc []byte
	require.NoError(t, s.pool.QueryRow(ctx, `SELECT shipping_address_enc FROM orders WHERE order_id = $1`, id).Scan(&addressEnc))
	_, err = testkit.PII(t).OpenString(addressEnc, id)
	assert.Error(t, err, "the address is not sealed as the e-mail is")

	for _, plain := range []string{o.Email, o.ShippingAddress.Line1} {
		var found int
		require.NoError(t, s.pool.QueryRow(ctx, `SELECT
			  (SELECT count(*) FROM orders x WHERE x.order_id = $1 AND x::text LIKE '%' || $2 || '%')
			+ (SELECT count(*) FROM notifications x WHERE x.order_id = $1 AND x::text LIKE '%' || $2 || '%')
			+ (SELECT count(*) FROM idempotency_keys x WHERE x.order_id = $1 AND x::text LIKE '%' || $2 || '%')
			+ (SELECT count(*) FROM order_status_history x WHERE x.order_id = $1 AND x::text LIKE '%' || $2 || '%')
			+ (SELECT count(*) FROM payment_transactions x WHERE x.order_id = $1 AND x::text LIKE '%' || $2 || '%')`,
			id, plain).Scan(&found))
		assert.Zero(t, found, "%q is in no row of the order", plain)
	}
}

// auditCounts counts the rows that record what happened to a customer's
// orders; erasure must leave every one.
func auditCounts(t *testing.T, s *stack, customer string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for name, q := range map[string]string{
		"orders":               `SELECT count(*) FROM orders WHERE customer_id = $1`,
		"order_items":          `SELECT count(*) FROM order_items i JOIN orders o USING (order_id) WHERE o.customer_id = $1`,
		"order_status_history": `SELECT count(*) FROM order_status_history h JOIN orders o USING (order_id) WHERE o.customer_id = $1`,
		"payments":             `SELECT count(*) FROM payments p JOIN orders o USING (order_id) WHERE o.customer_id = $1`,
		"payment_transactions": `SELECT count(*) FROM payment_transactions p JOIN orders o USING (order_id) WHERE o.customer_id = $1`,
		"inventory_events":     `SELECT count(*) FROM inventory_events e JOIN orders o USING (order_id) WHERE o.customer_id = $1`,
		"notifications":        `SELECT count(*) FROM notifications n JOIN orders o USING (order_id) WHERE o.customer_id = $1`,
	} {
		var n int
		require.NoError(t, s.pool.QueryRow(context.Background(), q, customer).Scan(&n), name)
		out[name] = n
	}
	return out
}

func TestErasureRemovesPIIAndKeepsTheAuditRows(t *testing.T) {
	s := newStack(t, true) // no outbox: the messages stay pending
	sku := testkit.Product(t, s.pool, 900, 10)
	cust, other := customer(), customer()
	confirmed := s.placeOK(newOrder(cust, payment.TokenVisa, api.OrderItem{SKU: sku, Quantity: 2}))
	declined := s.placeOK(newOrder(cust, payment.TokenChargeDeclined, api.OrderItem{SKU: sku, Quantity: 1}))
	kept := s.placeOK(newOrder(other, payment.TokenVisa, api.OrderItem{SKU: sku, Quantity: 1}))
	require.Equal(t, orderflow.StatusConfirmed, s.waitTerminal(confirmed).Status)
	require.Equal(t, orderflow.StatusFailed, s.waitTerminal(declined).Status)
	require.Equal(t, orderflow.StatusConfirmed, s.waitTerminal(kept).Status)
	before := auditCounts(t, s, cust)
	require.Equal(t, 2, before["orders"])
	require.Positive(t, before["payments"])
	require.Positive(t, before["payment_transactions"])
	require.Positive(t, before["inventory_events"])
	require.Equal(t, 2, before["notifications"])

	erase := func(authorization, id string) response {
		return s.do(http.MethodDelete, "/v1/customers/"+id+"/pii", map[string]string{"Authorization": authorization}, nil)
	}
	admin := s.tok.Bearer("dpo", auth.RoleAdmin)
	for _, tc := range []struct {
		name, authorization, customer string
		status                        int
		code                          string
	}{
		{"no token", "", cust, http.StatusUnauthorized, ""},
		{"the customer themself", s.as(cust), cust, http.StatusForbidden, ""},
		{"an operator", s.tok.Operator(), cust, http.StatusForbidden, ""},
		{"an id that cannot be a customer's", admin, "-bad%20id", http.StatusBadRequest, "invalid_customer_id"},
		{"a customer without orders", admin, customer(), http.StatusNotFound, "customer_not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := erase(tc.authorization, tc.customer)
			assert.Equal(t, tc.status, r.status, string(r.body))
			var e struct{ Error api.Error }
			r.json(t, &e)
			assert.NotEmpty(t, e.Error.Code, "a JSON error body")
			if tc.code != "" {
				assert.Equal(t, tc.code, e.Error.Code)
			}
		})
	}
	require.Equal(t, before, auditCounts(t, s, cust))
	var stillSealed int
	require.NoError(t, s.pool.QueryRow(context.Background(),
		`SELECT count(*) FROM orders WHERE customer_id = $1 AND email_enc IS NOT NULL AND shipping_address_enc IS NOT NULL`, cust).Scan(&stillSealed))
	require.Equal(t, 2, stillSealed, "refused calls changed nothing")

	r := erase(admin, cust)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	var got api.ErasureJSON
	r.json(t, &got)
	assert.Equal(t, api.ErasureJSON{CustomerID: cust, OrdersScrubbed: 2, OrdersRetained: 2, NotificationsCancelled: 2, NotificationsScrubbed: 2}, got)

	assert.Equal(t, before, auditCounts(t, s, cust), "orders, lines, payments, transactions, history and stock events stay")
	var left, erased, cancelled int
	require.NoError(t, s.pool.QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM orders WHERE customer_id = $1 AND (email IS NOT NULL OR email_enc IS NOT NULL OR shipping_address_enc IS NOT NULL))
		+ (SELECT count(*) FROM notifications n JOIN orders o USING (order_id) WHERE o.customer_id = $1 AND (n.recipient IS NOT NULL OR n.recipient_enc IS NOT NULL)),
		(SELECT count(*) FROM orders WHERE customer_id = $1 AND pii_erased_at IS NOT NULL),
		(SELECT count(*) FROM notifications n JOIN orders o USING (order_id) WHERE o.customer_id = $1 AND n.status = 'cancelled')`,
		cust).Scan(&left, &erased, &cancelled))
	assert.Zero(t, left, "no e-mail or shipping address left")
	assert.Equal(t, 2, erased)
	assert.Equal(t, 2, cancelled, "nothing will be sent to the erased address")
	o, status := s.order(confirmed)
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, orderflow.StatusConfirmed, o.Status, "the order still reads")

	var otherSealed, otherAddress []byte
	require.NoError(t, s.pool.QueryRow(context.Background(), `SELECT email_enc, shipping_address_enc FROM orders WHERE order_id = $1`,
		kept).Scan(&otherSealed, &otherAddress))
	assert.NotEmpty(t, otherSealed, "another customer's e-mail stays")
	assert.NotEmpty(t, otherAddress, "another customer's shipping address stays")
	gone, err := orders.ShippingAddress(context.Background(), s.pool, testkit.PII(t), confirmed)
	require.NoError(t, err)
	assert.Nil(t, gone, "fulfillment reads no address for an erased order")

	r = erase(admin, cust)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	r.json(t, &got)
	assert.Equal(t, api.ErasureJSON{CustomerID: cust, OrdersRetained: 2}, got, "a repeat changes nothing")
}
