package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/api"
	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/auth"
)

// forge signs claims as the stack's secret would, after edit bends them.
func (s *stack) forge(secret string, edit func(jwt.MapClaims)) string {
	s.t.Helper()
	now := time.Now()
	c := jwt.MapClaims{"sub": "c-forge", "iss": s.tok.Config.Issuer, "aud": s.tok.Config.Audience,
		"exp": now.Add(time.Hour).Unix(), "roles": []string{"admin"}}
	edit(c)
	t, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(secret))
	require.NoError(s.t, err)
	return t
}

func errorBody(t *testing.T, r response) api.Error {
	t.Helper()
	var e struct{ Error api.Error }
	r.json(t, &e)
	return e.Error
}

func TestEveryV1RouteRefusesAMissingOrBadTokenWith401(t *testing.T) {
	s := newStack(t, false)
	sku := testkit.Product(t, s.pool, 100, 5)
	secret := s.tok.Config.HS256Secret
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "c-none", "iss": s.tok.Config.Issuer,
		"aud": s.tok.Config.Audience, "exp": time.Now().Add(time.Hour).Unix(), "roles": []string{"admin"}}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	require.NoError(t, err)
	tokens := []struct{ name, authorization, code, says string }{
		{"missing", "", "token_required", ""},
		{"not bearer", "Basic YWRtaW46YWRtaW4=", "token_required", ""},
		{"expired", "Bearer " + s.forge(secret, func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Minute).Unix() }), "invalid_token", "expired"},
		{"forged signature", "Bearer " + s.forge(secret+"-guessed", func(jwt.MapClaims) {}), "invalid_token", "signature"},
		{"wrong audience", "Bearer " + s.forge(secret, func(c jwt.MapClaims) { c["aud"] = "another-service" }), "invalid_token", "aud"},
		{"wrong issuer", "Bearer " + s.forge(secret, func(c jwt.MapClaims) { c["iss"] = "https://evil.example" }), "invalid_token", "iss"},
		{"alg none", "Bearer " + none, "invalid_token", "signature"},
	}
	routes := []struct{ method, path string }{
		{http.MethodPost, "/v1/orders"},
		{http.MethodGet, "/v1/orders"},
		{http.MethodGet, "/v1/orders?status=FAILED&limit=5"},
		{http.MethodGet, "/v1/orders/" + uuid.NewString()},
		{http.MethodPost, "/v1/orders/" + uuid.NewString() + "/cancel"},
		{http.MethodGet, "/v1/products"},
		{http.MethodGet, "/v1/products?q=widget"},
		{http.MethodGet, "/v1/products/" + sku},
		{http.MethodPut, "/v1/products/" + sku},
		{http.MethodGet, "/v1/no-such-route"},
		{http.MethodGet, "/health/deep"},
	}
	for _, tk := range tokens {
		t.Run(tk.name, func(t *testing.T) {
			for _, rt := range routes {
				r := s.do(rt.method, rt.path, map[string]string{"Authorization": tk.authorization, api.HeaderIdempotencyKey: uuid.NewString()}, []byte(`{}`))
				require.Equal(t, http.StatusUnauthorized, r.status, "%s %s: %s", rt.method, rt.path, r.body)
				e := errorBody(t, r)
				assert.Equal(t, tk.code, e.Code, "%s %s", rt.method, rt.path)
				challenge := r.header.Get("WWW-Authenticate")
				assert.True(t, strings.HasPrefix(challenge, `Bearer realm="orderflow"`), challenge)
				if tk.code == "invalid_token" {
					assert.Contains(t, challenge, `error="invalid_token", error_description="`)
					assert.Contains(t, e.Message, tk.says)
				}
			}
		})
	}
	assert.Equal(t, 5, testkit.StockOf(t, s.pool, sku).OnHand, "no refused request changed the stock")

	t.Run("health, metrics and the API's document need no token", func(t *testing.T) {
		for _, path := range []string{"/health", "/health/ready", "/health/live", api.OpenAPIPath} {
			r := s.do(http.MethodGet, path, map[string]string{"Authorization": ""}, nil)
			assert.NotEqual(t, http.StatusUnauthorized, r.status, path)
		}
	})
}

func TestRolesDecideWhatACallerMayDo(t *testing.T) {
	s := newStack(t, false)
	sku := testkit.Product(t, s.pool, 100, 5)
	cust := customer()
	operator, admin := s.tok.Operator(), s.tok.Bearer("root", auth.RoleAdmin)
	product, _ := json.Marshal(map[string]any{"name": "restocked", "price_cents": 100, "on_hand": 9})
	order := func(customerID string) []byte {
		b, _ := json.Marshal(newOrder(customerID, payment.TokenVisa, api.OrderItem{SKU: sku, Quantity: 1}))
		return b
	}
	noRole := s.tok.Bearer("c-norole")

	for _, tc := range []struct {
		name, authorization, method, path string
		body                              []byte
		status                            int
		code                              string
	}{
		{"a customer may not restock", s.as(cust), http.MethodPut, "/v1/products/" + sku, product, 403, "forbidden"},
		{"a customer may not run the deep health check", s.as(cust), http.MethodGet, "/health/deep", nil, 403, "forbidden"},
		{"a customer may not order for another customer", s.as(cust), http.MethodPost, "/v1/orders", order(customer()), 403, "customer_mismatch"},
		{"an operator does not place orders", operator, http.MethodPost, "/v1/orders", order("ops-test"), 403, "forbidden"},
		{"a token without a known role may do nothing", noRole, http.MethodGet, "/v1/products/" + sku, nil, 403, "forbidden"},
		{"a customer reads the catalog", s.as(cust), http.MethodGet, "/v1/products/" + sku, nil, 200, ""},
		{"an operator restocks", operator, http.MethodPut, "/v1/products/" + sku, product, 200, ""},
		{"an admin restocks", admin, http.MethodPut, "/v1/products/" + sku, product, 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.do(tc.method, tc.path, map[string]string{"Authorization": tc.authorization, api.HeaderIdempotencyKey: uuid.NewString()}, tc.body)
			require.Equal(t, tc.status, r.status, string(r.body))
			if tc.code != "" {
				assert.Equal(t, tc.code, errorBody(t, r).Code)
			}
			if tc.code == "forbidden" {
				assert.Contains(t, r.header.Get("WWW-Authenticate"), `error="insufficient_scope"`)
			}
		})
	}
	// Order placements' keys hold their order; the restocks' keys (request
	// keys of other routes) hold none.
	var orders int
	require.NoError(t, s.pool.QueryRow(t.Context(), `SELECT count(*) FROM idempotency_keys WHERE customer_id IN ($1, 'ops-test') AND order_id IS NOT NULL`, cust).Scan(&orders))
	assert.Zero(t, orders, "no refused order claimed a key")
}

func TestCustomersSeeAndCancelOnlyTheirOwnOrders(t *testing.T) {
	s := newStack(t, true)
	sku := testkit.Product(t, s.pool, 100, 5)
	alice, bob := customer(), customer()

	// Alice's order, placed without customer_id: the token's subject is the customer.
	body, _ := json.Marshal(map[string]any{"items": []api.OrderItem{{SKU: sku, Quantity: 1}}, "payment_token": payment.TokenVisa, "email": "a@example.com",
		"shipping_address": shipTo()})
	key := "mine-" + uuid.NewString()
	r := s.do(http.MethodPost, "/v1/orders", map[string]string{"Authorization": s.as(alice), api.HeaderIdempotencyKey: key}, body)
	require.Equal(t, http.StatusAccepted, r.status, string(r.body))
	var acc api.Accepted
	r.json(t, &acc)
	id := acc.OrderID

	// Bob cannot read or cancel it, and learns nothing: the same 404 as an
	// order that does not exist.
	for _, probe := range []string{id, uuid.NewString()} {
		r := s.do(http.MethodGet, "/v1/orders/"+probe, map[string]string{"Authorization": s.as(bob)}, nil)
		assert.Equal(t, http.StatusNotFound, r.status, string(r.body))
		assert.Equal(t, "order_not_found", errorBody(t, r).Code)
		r = s.do(http.MethodPost, "/v1/orders/"+probe+"/cancel", map[string]string{"Authorization": s.as(bob)}, nil)
		assert.Equal(t, http.StatusNotFound, r.status, string(r.body))
		assert.Equal(t, "order_not_found", errorBody(t, r).Code)
	}

	// Bob's use of the same Idempotency-Key is his own: a new order, not Alice's.
	r = s.do(http.MethodPost, "/v1/orders", map[string]string{"Authorization": s.as(bob), api.HeaderIdempotencyKey: key}, body)
	require.Equal(t, http.StatusAccepted, r.status, string(r.body))
	assert.Empty(t, r.header.Get(api.HeaderReplayed))
	var bobs api.Accepted
	r.json(t, &bobs)
	assert.NotEqual(t, id, bobs.OrderID, "keys are scoped by the token's subject")

	o := s.waitTerminal(id) // as an operator, who reads any order
	assert.Equal(t, orderflow.StatusConfirmed, o.Status, "Bob's cancel did not touch Alice's order")
	assert.Equal(t, alice, o.CustomerID)
	r = s.do(http.MethodGet, "/v1/orders/"+id, map[string]string{"Authorization": s.as(alice)}, nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	r = s.do(http.MethodGet, "/v1/orders/"+bobs.OrderID, map[string]string{"Authorization": s.as(alice)}, nil)
	assert.Equal(t, http.StatusNotFound, r.status, "nor does Alice see Bob's")
	assert.Equal(t, bob, s.waitTerminal(bobs.OrderID).CustomerID)
}

// A customer may cancel their own order before a worker has written it: the
// owner then comes from the saga's CustomerId search attribute.
func TestACustomerCancelsTheirOrderBeforeItIsWritten(t *testing.T) {
	s := newStack(t, false) // no worker: the saga waits in its task queue
	sku := testkit.Product(t, s.pool, 100, 5)
	owner := customer()
	id := s.placeOK(newOrder(owner, payment.TokenVisa, api.OrderItem{SKU: sku, Quantity: 1}))

	r := s.do(http.MethodPost, "/v1/orders/"+id+"/cancel", map[string]string{"Authorization": s.as(customer())}, nil)
	require.Equal(t, http.StatusNotFound, r.status, "another customer: %s", r.body)

	done := make(chan response, 1)
	go func() {
		done <- s.do(http.MethodPost, "/v1/orders/"+id+"/cancel", map[string]string{"Authorization": s.as(owner)}, nil)
	}()
	time.Sleep(300 * time.Millisecond) // let the update reach the server before any worker polls
	s.startWorker()
	r = <-done
	require.Equal(t, http.StatusAccepted, r.status, string(r.body))
	assert.Equal(t, orderflow.StatusCancelled, s.waitTerminal(id).Status)
}
