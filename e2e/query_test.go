package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/client"
	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/auth"
)

// get sends GET path through the contract with bearer, for the query
// strings the client never builds (unknown or repeated parameters); it
// returns the status and the API error code of the answer.
func (c *contract) get(s *stack, bearer, path string) (int, string) {
	c.t.Helper()
	status, body := c.call(s, bearer, http.MethodGet, path, nil)
	var e struct{ Error struct{ Code string } }
	_ = json.Unmarshal(body, &e)
	return status, e.Error.Code
}

// call sends method path with body (JSON, none when nil) through the
// contract with bearer (none when empty) and returns the answer's status
// and body, for the routes the Go client does not cover.
func (c *contract) call(s *stack, bearer, method, path string, body any) (int, []byte) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(c.t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	require.NoError(c.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", bearer)
	}
	res, err := (&http.Client{Transport: c}).Do(req)
	require.NoError(c.t, err)
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	require.NoError(c.t, err)
	return res.StatusCode, out
}

// badRequest asserts err is a 400 with the JSON error body's code and, when
// field is not empty, a detail naming field.
func badRequest(t *testing.T, err error, code, field, what string) {
	t.Helper()
	var e *client.Error
	if !assert.ErrorAs(t, err, &e, what) {
		return
	}
	assert.Equal(t, http.StatusBadRequest, e.Status, "%s: %v", what, err)
	assert.Equal(t, code, e.Code, "%s: %v", what, err)
	if field != "" {
		fields := make([]string, len(e.Details))
		for i, d := range e.Details {
			fields[i] = d.Field
			assert.NotEmpty(t, d.Issue, what)
		}
		assert.Equal(t, []string{field}, fields, "%s: the details name the field at fault", what)
	}
}

func orderIDs(page client.OrderPage) []string {
	ids := make([]string, len(page.Orders))
	for i, o := range page.Orders {
		ids[i] = o.OrderID
	}
	return ids
}

func TestOrderHistoryListsTheCallersOrdersNewestFirstAPageAtATime(t *testing.T) {
	s := newStack(t, true)
	c := newContract(t)
	ctx := context.Background()
	sku := testkit.Product(t, s.pool, 250, 100)
	cust, other := customer(), customer()
	mine, theirs := c.client(s, s.as(cust)), c.client(s, s.as(other))

	// Placed one after another, each ended before the next: created in
	// this order, so listed in the reverse.
	var placed []string
	for _, token := range []string{payment.TokenVisa, payment.TokenChargeDeclined, payment.TokenVisa} {
		acc, _, err := mine.PlaceOrder(ctx, client.OrderRequest{Items: []client.Item{{SKU: sku, Quantity: 1}}, PaymentToken: token,
			Email: "history@example.com", ShippingAddress: shipTo()}, uuid.NewString())
		require.NoError(t, err)
		_, err = mine.AwaitTerminal(ctx, acc.OrderID, 20*time.Millisecond)
		require.NoError(t, err)
		placed = append(placed, acc.OrderID)
	}
	newestFirst := []string{placed[2], placed[1], placed[0]}

	all, err := mine.ListOrders(ctx, client.HistoryOptions{})
	require.NoError(t, err)
	assert.Equal(t, newestFirst, orderIDs(all))
	assert.Empty(t, all.Next, "one page holds them all")
	assert.Equal(t, orderflow.StatusFailed, all.Orders[1].Status)
	assert.Equal(t, int64(250), all.Orders[0].TotalCents)
	assert.Equal(t, cust, all.Orders[0].CustomerID)

	// Pages of two: every order once, in order, and the last page says so.
	first, err := mine.ListOrders(ctx, client.HistoryOptions{Limit: 2})
	require.NoError(t, err)
	require.NotEmpty(t, first.Next)
	second, err := mine.ListOrders(ctx, client.HistoryOptions{Limit: 2, After: first.Next})
	require.NoError(t, err)
	assert.Equal(t, newestFirst, append(orderIDs(first), orderIDs(second)...))
	assert.Empty(t, second.Next)

	failed, err := mine.ListOrders(ctx, client.HistoryOptions{Status: orderflow.StatusFailed})
	require.NoError(t, err)
	assert.Equal(t, []string{placed[1]}, orderIDs(failed))
	confirmed, err := mine.ListOrders(ctx, client.HistoryOptions{Status: orderflow.StatusConfirmed, Limit: 1})
	require.NoError(t, err)
	assert.Equal(t, []string{placed[2]}, orderIDs(confirmed))
	confirmed, err = mine.ListOrders(ctx, client.HistoryOptions{Status: orderflow.StatusConfirmed, Limit: 1, After: confirmed.Next})
	require.NoError(t, err)
	assert.Equal(t, []string{placed[0]}, orderIDs(confirmed))

	// Nobody else's orders: another customer sees none, and may not ask.
	none, err := theirs.ListOrders(ctx, client.HistoryOptions{})
	require.NoError(t, err)
	assert.Empty(t, none.Orders)
	_, err = theirs.ListOrders(ctx, client.HistoryOptions{CustomerID: cust})
	assert.Equal(t, http.StatusForbidden, client.StatusOf(err))
	assert.Equal(t, "customer_mismatch", client.CodeOf(err))
	self, err := mine.ListOrders(ctx, client.HistoryOptions{CustomerID: cust})
	require.NoError(t, err)
	assert.Equal(t, newestFirst, orderIDs(self), "naming oneself is allowed")

	// Operators and admins name the customer.
	for _, bearer := range []string{s.tok.Operator(), s.tok.Bearer("dpo", auth.RoleAdmin)} {
		got, err := c.client(s, bearer).ListOrders(ctx, client.HistoryOptions{CustomerID: cust})
		require.NoError(t, err)
		assert.Equal(t, newestFirst, orderIDs(got))
	}

	// A cursor is a position, not a permission: another customer replaying
	// it gets their own (empty) history.
	replayed, err := theirs.ListOrders(ctx, client.HistoryOptions{Limit: 2, After: first.Next})
	require.NoError(t, err)
	assert.Empty(t, replayed.Orders)

	// Bad input on every parameter: a 400 naming it, never a 5xx.
	productCursor := base64.RawURLEncoding.EncodeToString([]byte("p1|3f800000|SKU-1"))
	for _, tc := range []struct {
		name  string
		opts  client.HistoryOptions
		code  string
		field string
	}{
		{"unknown status", client.HistoryOptions{Status: "SHIPPED_TO_MARS"}, "invalid_request", "status"},
		{"lower-case status", client.HistoryOptions{Status: "confirmed"}, "invalid_request", "status"},
		{"NUL status", client.HistoryOptions{Status: "\x00"}, "invalid_request", "status"},
		{"limit over 100", client.HistoryOptions{Limit: 101}, "invalid_request", "limit"},
		{"garbage cursor", client.HistoryOptions{After: "not a cursor"}, "invalid_cursor", "after"},
		{"base64 of garbage", client.HistoryOptions{After: base64.RawURLEncoding.EncodeToString([]byte("o1|x|y"))}, "invalid_cursor", "after"},
		{"a search cursor", client.HistoryOptions{After: productCursor}, "invalid_cursor", "after"},
		{"a cursor past year 9999", client.HistoryOptions{After: base64.RawURLEncoding.EncodeToString([]byte("o1|999999999999999999|" + uuid.NewString()))}, "invalid_cursor", "after"},
		{"bad customer id", client.HistoryOptions{CustomerID: "-no good"}, "invalid_request", "customer_id"},
	} {
		_, err := mine.ListOrders(ctx, tc.opts)
		badRequest(t, err, tc.code, tc.field, tc.name)
	}
	for path, code := range map[string]string{"/v1/orders?limit=0": "invalid_request", "/v1/orders?limit=-1": "invalid_request",
		"/v1/orders?limit=abc": "invalid_request", "/v1/orders?limit=1e3": "invalid_request", "/v1/orders?stauts=FAILED": "unknown_parameter",
		"/v1/orders?status=FAILED&status=CONFIRMED": "invalid_request", "/v1/orders?status=": "invalid_request",
		"/v1/orders?after=": "invalid_cursor", "/v1/orders?after=%FF%FE": "invalid_cursor"} {
		status, got := c.get(s, s.as(cust), path)
		assert.Equal(t, http.StatusBadRequest, status, path)
		assert.Equal(t, code, got, path)
	}
	status, _ := c.get(s, "", "/v1/orders")
	assert.Equal(t, http.StatusUnauthorized, status)
}

func TestProductSearchFindsRanksAndPages(t *testing.T) {
	s := newStack(t, false)
	c := newContract(t)
	ctx := context.Background()
	op := c.client(s, s.tok.Operator())
	// A word no other test's product has keeps the results this test's.
	tag := "q" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	exact := "RUN-" + tag
	for sku, name := range map[string]string{
		"S-" + tag + "-1": tag + " Red Running Shoe",
		"S-" + tag + "-2": tag + " Blue Running Shoes",
		"S-" + tag + "-3": tag + " Red Hat",
		exact:             "Trail " + tag + " sandals",
	} {
		_, created, err := op.PutProduct(ctx, sku, client.ProductRequest{Name: name, PriceCents: 1000, OnHand: 5})
		require.NoError(t, err)
		require.True(t, created)
	}
	search := func(text string, opts client.SearchOptions) []string {
		t.Helper()
		page, err := c.client(s, s.as(customer())).SearchProducts(ctx, text, opts)
		require.NoError(t, err, text)
		skus := make([]string, len(page.Products))
		for i, p := range page.Products {
			skus[i] = p.SKU
			assert.Equal(t, 5, p.Available)
		}
		return skus
	}
	sorted := func(v []string) []string { v = slices.Clone(v); slices.Sort(v); return v }

	assert.Equal(t, []string{"S-" + tag + "-1", "S-" + tag + "-3"}, sorted(search(tag+" red", client.SearchOptions{})), "every word must match")
	assert.Equal(t, []string{"S-" + tag + "-1", "S-" + tag + "-2"}, sorted(search(tag+" runn", client.SearchOptions{})), "a word's prefix matches")
	assert.Equal(t, []string{"S-" + tag + "-1", "S-" + tag + "-2"}, sorted(search("SHOES "+tag, client.SearchOptions{})),
		"the stem matches (shoes finds Shoe), in any case and order")
	assert.Equal(t, []string{"S-" + tag + "-2"}, search(tag+"-2", client.SearchOptions{}), "the SKU's words match")
	assert.Equal(t, exact, search(exact, client.SearchOptions{})[0], "the SKU itself ranks first")
	assert.Equal(t, exact, search(strings.ToLower(exact), client.SearchOptions{})[0], "in any case")
	assert.Empty(t, search(tag+" purple", client.SearchOptions{}))

	// Pages of one: every match once, best first, then the end.
	var paged []string
	after := ""
	for range 10 {
		page, err := c.client(s, s.tok.Operator()).SearchProducts(ctx, tag, client.SearchOptions{Limit: 1, After: after})
		require.NoError(t, err)
		for _, p := range page.Products {
			paged = append(paged, p.SKU)
		}
		if after = page.Next; after == "" {
			break
		}
	}
	assert.Equal(t, search(tag, client.SearchOptions{}), paged, "the pages, joined, are the one page")
	assert.Len(t, paged, 4)

	// The catalog list without q is as it was.
	list, err := op.ListProducts(ctx, client.ListOptions{After: "RUN-" + tag[:len(tag)-1], Limit: 500})
	require.NoError(t, err)
	assert.Contains(t, func() []string {
		var skus []string
		for _, p := range list {
			skus = append(skus, p.SKU)
		}
		return skus
	}(), exact)

	orderCursor := base64.RawURLEncoding.EncodeToString([]byte("o1|1|" + uuid.NewString()))
	for _, tc := range []struct {
		name, text string
		opts       client.SearchOptions
		code       string
	}{
		{"no word", "!!! ---", client.SearchOptions{}, "invalid_request"},
		{"nine words", "a b c d e f g h i", client.SearchOptions{}, "invalid_request"},
		{"over 200 bytes", strings.Repeat("x", 201), client.SearchOptions{}, "invalid_request"},
		{"a control character", tag + "\x07", client.SearchOptions{}, "invalid_request"},
		{"NUL", tag + "\x00", client.SearchOptions{}, "invalid_request"},
		{"tsquery syntax", "a & !b | c:*", client.SearchOptions{}, ""},
		{"limit over 100", tag, client.SearchOptions{Limit: 101}, "invalid_request"},
		{"garbage cursor", tag, client.SearchOptions{After: "%%%"}, "invalid_cursor"},
		{"an order cursor", tag, client.SearchOptions{After: orderCursor}, "invalid_cursor"},
	} {
		_, err := op.SearchProducts(ctx, tc.text, tc.opts)
		if tc.code == "" {
			assert.NoError(t, err, "%s: its words are searched, its operators are not", tc.name)
			continue
		}
		field := map[bool]string{true: "q", false: "limit"}[tc.opts.Limit == 0 && tc.opts.After == ""]
		if tc.opts.After != "" {
			field = "after"
		}
		badRequest(t, err, tc.code, field, tc.name)
	}
	for path, code := range map[string]string{"/v1/products?q=": "invalid_request", "/v1/products?q=" + tag + "&limit=0": "invalid_request",
		"/v1/products?q=%FF": "invalid_request", "/v1/products?q=" + tag + "&sort=price": "unknown_parameter",
		"/v1/products?q=a&q=b": "invalid_request"} {
		status, got := c.get(s, s.tok.Operator(), path)
		assert.Equal(t, http.StatusBadRequest, status, path)
		assert.Equal(t, code, got, path)
	}
}

func TestShippingAddressIsRequiredAndValidatedFieldByField(t *testing.T) {
	s := newStack(t, false) // nothing here needs a saga to run
	c := newContract(t)
	ctx := context.Background()
	sku := testkit.Product(t, s.pool, 100, 10)
	cust := customer()
	buyer := c.client(s, s.as(cust))
	order := func(edit func(a *client.Address)) client.OrderRequest {
		a := shipTo()
		if edit != nil {
			edit(a)
		}
		return client.OrderRequest{Items: []client.Item{{SKU: sku, Quantity: 1}}, PaymentToken: payment.TokenVisa, Email: "a@example.com", ShippingAddress: a}
	}
	missing := order(nil)
	missing.ShippingAddress = nil
	_, _, err := buyer.PlaceOrder(ctx, missing, uuid.NewString())
	badRequest(t, err, "invalid_request", "shipping_address", "no address")

	for _, tc := range []struct {
		name  string
		edit  func(a *client.Address)
		field string
	}{
		{"no name", func(a *client.Address) { a.Name = "" }, "name"},
		{"a blank name", func(a *client.Address) { a.Name = "   " }, "name"},
		{"no line1", func(a *client.Address) { a.Line1 = "" }, "line1"},
		{"a bell in line1", func(a *client.Address) { a.Line1 = "12 Test\aStreet" }, "line1"},
		{"NUL in line2", func(a *client.Address) { a.Line2 = "x\x00" }, "line2"},
		{"line2 over 200 bytes", func(a *client.Address) { a.Line2 = strings.Repeat("ü", 101) }, "line2"},
		{"no city", func(a *client.Address) { a.City = "" }, "city"},
		{"a right-to-left override in the city", func(a *client.Address) { a.City = "Berlin\u202e" }, "city"},
		{"no country", func(a *client.Address) { a.Country = "" }, "country"},
		{"a lower-case country", func(a *client.Address) { a.Country = "de" }, "country"},
		{"an unassigned country", func(a *client.Address) { a.Country = "XX" }, "country"},
		{"an alpha-3 country", func(a *client.Address) { a.Country = "DEU" }, "country"},
		{"no postal code in Germany", func(a *client.Address) { a.PostalCode = "" }, "postal_code"},
		{"a postal code with a hash", func(a *client.Address) { a.PostalCode = "10#15" }, "postal_code"},
		{"a postal code over 16 characters", func(a *client.Address) { a.PostalCode = strings.Repeat("1", 17) }, "postal_code"},
		{"a state with a tab", func(a *client.Address) { a.State = "B\tE" }, "state"},
	} {
		_, _, err := buyer.PlaceOrder(ctx, order(tc.edit), uuid.NewString())
		badRequest(t, err, "invalid_request", "shipping_address."+tc.field, tc.name)
	}
	var keys int
	require.NoError(t, s.pool.QueryRow(ctx, `SELECT count(*) FROM idempotency_keys WHERE customer_id = $1`, cust).Scan(&keys))
	assert.Zero(t, keys, "no refused order claimed a key")

	// Hong Kong has no postal codes; line2 and state may be left out.
	hk := order(func(a *client.Address) { a.Country, a.PostalCode, a.City, a.Line2 = "HK", "", "Kowloon", "" })
	key := uuid.NewString()
	first, status, err := buyer.PlaceOrder(ctx, hk, key)
	require.NoError(t, err)
	assert.Equal(t, http.StatusAccepted, status)

	// The address is part of the request: the same key with the same body
	// replays, with another address it is refused.
	again, _, err := buyer.PlaceOrder(ctx, hk, key)
	require.NoError(t, err)
	assert.True(t, again.Replayed)
	assert.Equal(t, first.OrderID, again.OrderID)
	moved := order(func(a *client.Address) {
		a.Country, a.PostalCode, a.City, a.Line2, a.Line1 = "HK", "", "Kowloon", "", "13 Other Road"
	})
	_, status, err = buyer.PlaceOrder(ctx, moved, key)
	assert.Equal(t, http.StatusUnprocessableEntity, status)
	assert.Equal(t, "idempotency_key_reused", client.CodeOf(err))
}
