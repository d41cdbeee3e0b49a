package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/orderflow/orderflow/activities/orders"
	"github.com/orderflow/orderflow/api"
	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/auth"
)

// hostile are strings that have broken SQL built by concatenation, escaped
// a template, or upset a text column or a path: each must reach PostgreSQL
// only as a bind parameter, so it is stored as sent or refused with a 4xx.
var hostile = []string{
	`'; DROP TABLE orders; --`,
	`" OR 1=1 --`,
	`' OR '1'='1`,
	`Robert'); DROP TABLE products;--`,
	`1; SELECT pg_sleep(10)`,
	`$1`,
	`\`,
	"\x00",
	"nul\x00inside",
	`%00`,
	`%s%n%x`,
	`../../etc/passwd`,
	`..%2F..%2Fetc%2Fpasswd`,
	`<script>alert(1)</script>`,
	"Ünïcødé 名前 🚀 \u202eevil",
	"line\nbreak\r\ntab\t",
	strings.Repeat("A", 300),
	strings.Repeat("💥", 5000),
}

// schemaTables are the tables a DROP smuggled through any field would take.
var schemaTables = []string{"products", "inventory", "inventory_events", "orders", "order_items", "reservations",
	"order_status_history", "payments", "payment_transactions", "idempotency_keys", "notifications", "payment_attempts"}

// Every string a client controls, in every /v1 route (body fields, the
// shipping address's fields, the history's and the search's parameters, the
// Idempotency-Key header, path ids, query parameters, the token's subject),
// carries each hostile string to the real gateway and PostgreSQL: the answer
// is a 2xx with the value stored byte for byte (read back through the API
// and from the row), or a 4xx with the JSON error body; never a 5xx, and
// every table is still there afterwards.
func TestHostileStringsInEveryFieldAreStoredLiterallyOrRefusedWith4xx(t *testing.T) {
	s := newStack(t, true)
	ctx := context.Background()
	op := map[string]string{"Authorization": s.tok.Operator()}
	stored := 0

	// check fails on a 5xx, and on a 4xx without the JSON error body.
	check := func(what string, r response) bool {
		t.Helper()
		if r.status >= 500 {
			t.Errorf("%s: %d %s", what, r.status, r.body)
			return false
		}
		if r.status >= 400 {
			mt, _, _ := mime.ParseMediaType(r.header.Get("Content-Type"))
			var e struct {
				Error *struct{ Code, Message string } `json:"error"`
			}
			if mt != "application/json" || json.Unmarshal(r.body, &e) != nil || e.Error == nil || e.Error.Code == "" {
				t.Errorf("%s: %d without the JSON error body: %q", what, r.status, r.body)
			}
			return false
		}
		return true
	}

	sku := testkit.Product(t, s.pool, 1000, 1_000_000)
	for i, h := range hostile {
		q := fmt.Sprintf("%q", h)
		if len(q) > 40 {
			q = q[:40] + "…"
		}

		// PUT /v1/products/{sku}: the name is free text, stored as sent.
		psku := fmt.Sprintf("INJ-%s-%d", uuid.NewString()[:8], i)
		body, _ := json.Marshal(map[string]any{"name": h, "price_cents": 100, "on_hand": 5})
		if r := s.do(http.MethodPut, "/v1/products/"+psku, op, body); check("product name "+q, r) {
			var p api.ProductJSON
			r.json(t, &p)
			got := s.do(http.MethodGet, "/v1/products/"+psku, op, nil)
			var back api.ProductJSON
			got.json(t, &back)
			var row string
			if err := s.pool.QueryRow(ctx, `SELECT name FROM products WHERE sku = $1`, psku).Scan(&row); err != nil {
				t.Fatal(err)
			}
			if p.Name != h || back.Name != h || row != h {
				t.Errorf("product name %s came back as %q (answer), %q (GET), %q (row)", q, p.Name, back.Name, row)
			}
			stored++
		}
		body, _ = json.Marshal(map[string]any{"name": "n", "price_cents": 100, "on_hand": 5, "currency": h})
		check("product currency "+q, s.do(http.MethodPut, "/v1/products/"+psku+"x", op, body))

		// Path ids and query parameters.
		esc := url.PathEscape(h)
		check("PUT product sku "+q, s.do(http.MethodPut, "/v1/products/"+esc, op, body))
		check("GET product sku "+q, s.do(http.MethodGet, "/v1/products/"+esc, op, nil))
		check("GET order id "+q, s.do(http.MethodGet, "/v1/orders/"+esc, op, nil))
		check("cancel order id "+q, s.do(http.MethodPost, "/v1/orders/"+esc+"/cancel", op, nil))
		qh := url.QueryEscape(h)
		check("products after "+q, s.do(http.MethodGet, "/v1/products?after="+qh, op, nil))
		check("products limit "+q, s.do(http.MethodGet, "/v1/products?limit="+qh, op, nil))
		check("search q "+q, s.do(http.MethodGet, "/v1/products?q="+qh, op, nil))
		check("search after "+q, s.do(http.MethodGet, "/v1/products?q=widget&after="+qh, op, nil))
		for _, param := range []string{"status", "limit", "after", "customer_id"} {
			check("history "+param+" "+q, s.do(http.MethodGet, "/v1/orders?"+param+"="+qh, op, nil))
		}

		// POST /v1/orders, each field in turn.
		cust := customer()
		fields := map[string]orderReq{
			"sku":           newOrder(cust, "tok_visa", api.OrderItem{SKU: h, Quantity: 1}),
			"payment_token": newOrder(cust, h, api.OrderItem{SKU: sku, Quantity: 1}),
			"email":         {CustomerID: cust, Items: []api.OrderItem{{SKU: sku, Quantity: 1}}, PaymentToken: "tok_visa", Email: h, ShippingAddress: shipTo()},
			"customer_id":   newOrder(h, "tok_visa", api.OrderItem{SKU: sku, Quantity: 1}),
		}
		for field, o := range fields {
			b, _ := json.Marshal(o)
			check("order "+field+" "+q, s.do(http.MethodPost, "/v1/orders", map[string]string{
				api.HeaderIdempotencyKey: uuid.NewString(), "Authorization": s.as(cust)}, b))
		}
		// Every field of the shipping address; a street accepted is stored
		// as sent.
		for _, field := range []string{"name", "line1", "line2", "city", "postal_code", "state", "country"} {
			o := newOrder(cust, "tok_visa", api.OrderItem{SKU: sku, Quantity: 1})
			a := o.ShippingAddress
			*map[string]*string{"name": &a.Name, "line1": &a.Line1, "line2": &a.Line2, "city": &a.City, "postal_code": &a.PostalCode,
				"state": &a.State, "country": &a.Country}[field] = h
			b, _ := json.Marshal(o)
			r := s.do(http.MethodPost, "/v1/orders", map[string]string{api.HeaderIdempotencyKey: uuid.NewString(), "Authorization": s.as(cust)}, b)
			if !check("shipping_address."+field+" "+q, r) || field != "line1" {
				continue
			}
			var acc api.Accepted
			r.json(t, &acc)
			s.waitTerminal(acc.OrderID)
			if got, err := orders.ShippingAddress(ctx, s.pool, testkit.PII(t), acc.OrderID); err != nil || got == nil || got.Line1 != h {
				t.Errorf("shipping_address.line1 %s stored as %+v (%v)", q, got, err)
			}
			stored++
		}

		// The token's subject is the order's customer.
		b, _ := json.Marshal(newOrder("", "tok_visa", api.OrderItem{SKU: sku, Quantity: 1}))
		check("token subject "+q, s.do(http.MethodPost, "/v1/orders", map[string]string{
			api.HeaderIdempotencyKey: uuid.NewString(), "Authorization": s.tok.Bearer(h, auth.RoleCustomer)}, b))

		// The Idempotency-Key is stored as sent, or refused; a value
		// net/http will not even send goes over a raw connection.
		b, _ = json.Marshal(newOrder(cust, "tok_visa", api.OrderItem{SKU: sku, Quantity: 1}))
		hdr := map[string]string{api.HeaderIdempotencyKey: h, "Authorization": s.as(cust)}
		if !validHeaderValue(h) {
			if status := s.raw(http.MethodPost, "/v1/orders", hdr, b); status < 400 || status > 499 {
				t.Errorf("Idempotency-Key %s over a raw connection: %d, want a 4xx", q, status)
			}
			continue
		}
		if r := s.do(http.MethodPost, "/v1/orders", hdr, b); check("Idempotency-Key "+q, r) {
			var a api.Accepted
			r.json(t, &a)
			var key string
			if err := s.pool.QueryRow(ctx, `SELECT idempotency_key FROM idempotency_keys WHERE order_id = $1`, a.OrderID).Scan(&key); err != nil {
				t.Fatal(err)
			}
			if key != h {
				t.Errorf("Idempotency-Key %s stored as %q", q, key)
			}
			again := s.do(http.MethodPost, "/v1/orders", hdr, b)
			var a2 api.Accepted
			again.json(t, &a2)
			if a2.OrderID != a.OrderID || again.header.Get(api.HeaderReplayed) != "true" {
				t.Errorf("Idempotency-Key %s did not replay its order: %d %s", q, again.status, again.body)
			}
			stored++
		}
	}

	// E-mail addresses are refused unless they are plain addresses, and
	// those can still hold quotes, dashes and non-ASCII: stored as sent.
	for _, email := range []string{`o'brien@example.com`, `'OR'1'='1'--@example.com`, `x';DROP_TABLE_orders;--@example.com`,
		"üser@exämple.de", `"'; DROP TABLE orders; --"@example.com`, `a@b.c'; --`} {
		cust := customer()
		o := orderReq{CustomerID: cust, Items: []api.OrderItem{{SKU: sku, Quantity: 1}}, PaymentToken: "tok_visa", Email: email, ShippingAddress: shipTo()}
		b, _ := json.Marshal(o)
		r := s.do(http.MethodPost, "/v1/orders", map[string]string{api.HeaderIdempotencyKey: uuid.NewString(), "Authorization": s.as(cust)}, b)
		if !check(fmt.Sprintf("email %q", email), r) {
			continue
		}
		var a api.Accepted
		r.json(t, &a)
		s.waitTerminal(a.OrderID)
		if got := storedEmail(t, s, a.OrderID); got != email {
			t.Errorf("email %q stored as %q", email, got)
		}
		stored++
	}
	if stored == 0 {
		t.Fatal("no hostile string was stored: the test proved nothing about literal storage")
	}
	t.Logf("%d hostile values stored literally; the rest refused with a 4xx", stored)

	for _, table := range schemaTables {
		var exists bool
		if err := s.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, "public."+table).Scan(&exists); err != nil || !exists {
			t.Errorf("table %s is gone (%v)", table, err)
		}
	}
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM orders`).Scan(&n); err != nil || n == 0 {
		t.Errorf("orders: %d rows, %v", n, err)
	}
}

// storedEmail reads an order's e-mail address as the saga stored it.
func storedEmail(t *testing.T, s *stack, orderID string) string {
	t.Helper()
	var sealed []byte
	if err := s.pool.QueryRow(context.Background(), `SELECT email_enc FROM orders WHERE order_id = $1`, orderID).Scan(&sealed); err != nil {
		t.Fatalf("read email of %s: %v", orderID, err)
	}
	email, err := testkit.PII(t).OpenString(sealed, orderID)
	if err != nil {
		t.Fatalf("decrypt email of %s: %v", orderID, err)
	}
	return email
}

// validHeaderValue reports whether net/http's client sends v as a header
// value (no control characters but tab; no leading or trailing blanks it
// would strip).
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// raw sends a request over a plain connection with the header values as
// given, which net/http's client refuses to send, and returns the status:
// net/http's server answers 400 for a malformed header before the gateway
// runs.
func (s *stack) raw(method, path string, header map[string]string, body []byte) int {
	s.t.Helper()
	u, _ := url.Parse(s.url)
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		s.t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n", method, path, u.Host, len(body))
	for k, v := range header {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n")
	if _, err := conn.Write(append([]byte(b.String()), body...)); err != nil {
		s.t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		s.t.Fatalf("raw %s %s: %v", method, path, err)
	}
	res.Body.Close()
	return res.StatusCode
}
