package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow"
)

func TestValidIdempotencyKey(t *testing.T) {
	cases := []struct {
		key  string
		want bool
	}{
		{"a", true},
		{"order-2026-11-27 #1", true},
		{strings.Repeat("k", 255), true},
		{"", false},
		{strings.Repeat("k", 256), false},
		{"tab\there", false},
		{"new\nline", false},
		{"ключ", false},
		{"del\x7f", false},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, ValidIdempotencyKey(tc.key), "%q", tc.key)
	}
}

func decode(t *testing.T, body string) (PlaceOrderRequest, *Error) {
	t.Helper()
	e := echo.New()
	req := httptest.NewRequest(http.MethodPost, "/v1/orders", strings.NewReader(body))
	req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	c := e.NewContext(req, httptest.NewRecorder())
	r, err := decodeOrderRequest(c, 64<<10, "c-1")
	if err != nil {
		return r, classify(err)
	}
	return r, nil
}

func TestDecodeAndValidateOrderRequest(t *testing.T) {
	const ship = `"shipping_address":{"name":"Ada","line1":"1 Main St","city":"Springfield","postal_code":"62701","state":"IL","country":"US"}`
	const ok = `{"customer_id":"c-1","items":[{"sku":"SKU-1","quantity":2}],"payment_token":"tok_visa","email":"a@b.c",` + ship + `}`
	r, err := decode(t, ok)
	require.Nil(t, err)
	assert.Equal(t, PlaceOrderRequest{CustomerID: "c-1", Items: []OrderItem{{SKU: "SKU-1", Quantity: 2}}, PaymentToken: "tok_visa", Email: "a@b.c",
		ShippingAddress: &orderflow.Address{Name: "Ada", Line1: "1 Main St", City: "Springfield", PostalCode: "62701", State: "IL", Country: "US"}}, r)
	r, err = decode(t, `{"items":[{"sku":"SKU-1","quantity":2}],"payment_token":"tok_visa","email":"a@b.c",`+ship+`}`)
	require.Nil(t, err)
	assert.Equal(t, "c-1", r.CustomerID, "an order without customer_id is the token subject's")

	cases := []struct{ name, body, code, field string }{
		{"unknown top-level field", `{"customer_id":"c-1","items":[{"sku":"S","quantity":1}],"payment_token":"tok_visa","email":"a@b.c","total":1}`, "unknown_field", "total"},
		{"null items", `{"customer_id":"c-1","items":null,"payment_token":"tok_visa","email":"a@b.c"}`, "invalid_request", "items"},
		{"sku with spaces", `{"customer_id":"c-1","items":[{"sku":"S 1","quantity":1}],"payment_token":"tok_visa","email":"a@b.c"}`, "invalid_request", "items[0].sku"},
		{"quantity float", `{"customer_id":"c-1","items":[{"sku":"S","quantity":1.5}],"payment_token":"tok_visa","email":"a@b.c"}`, "invalid_request", "items[0].quantity"},
		{"email with display name", `{"customer_id":"c-1","items":[{"sku":"S","quantity":1}],"payment_token":"tok_visa","email":"A <a@b.c>"}`, "invalid_request", "email"},
		{"email with a right-to-left override", `{"customer_id":"c-1","items":[{"sku":"S","quantity":1}],"payment_token":"tok_visa","email":"a\u202e@b.c"}`, "invalid_request", "email"},
		{"email with a zero-width space", `{"customer_id":"c-1","items":[{"sku":"S","quantity":1}],"payment_token":"tok_visa","email":"a\u200b@b.c"}`, "invalid_request", "email"},
		{"token with spaces", `{"customer_id":"c-1","items":[{"sku":"S","quantity":1}],"payment_token":"tok visa","email":"a@b.c"}`, "invalid_request", "payment_token"},
		{"another customer than the token's subject", `{"customer_id":"c-2","items":[{"sku":"S","quantity":1}],"payment_token":"tok_visa","email":"a@b.c"}`, "customer_mismatch", "customer_id"},
		{"no shipping address", `{"items":[{"sku":"S","quantity":1}],"payment_token":"tok_visa","email":"a@b.c"}`, "invalid_request", "shipping_address"},
		{"null shipping address", `{"items":[{"sku":"S","quantity":1}],"payment_token":"tok_visa","email":"a@b.c","shipping_address":null}`, "invalid_request", "shipping_address"},
		{"shipping address not an object", `{"items":[{"sku":"S","quantity":1}],"payment_token":"tok_visa","email":"a@b.c","shipping_address":"1 Main St"}`, "invalid_request", "shipping_address"},
		{"unknown field in the address", `{"items":[{"sku":"S","quantity":1}],"payment_token":"tok_visa","email":"a@b.c","shipping_address":{"zip":"1"}}`, "unknown_field", "zip"},
		{"country in lower case", `{"items":[{"sku":"S","quantity":1}],"payment_token":"tok_visa","email":"a@b.c",` + strings.Replace(ship, `"US"`, `"us"`, 1) + `}`, "invalid_request", "shipping_address.country"},
		{"two objects", ok + ok, "malformed_json", ""},
		{"truncated", ok[:20], "malformed_json", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decode(t, tc.body)
			require.NotNil(t, err)
			assert.Equal(t, tc.code, err.Code)
			assert.Less(t, err.Status, 500)
			if tc.field != "" {
				require.NotEmpty(t, err.Details)
				assert.Equal(t, tc.field, err.Details[0].Field)
			}
		})
	}
}

// encoding/json alone would accept these: keys are matched to fields
// case-insensitively and the last of two equal keys wins. The gateway reads
// only the exact spelling, once.
func TestOrderRequestKeysMustBeExactAndUnique(t *testing.T) {
	const rest = `"items":[{"sku":"SKU-1","quantity":2}],"payment_token":"tok_visa",` +
		`"shipping_address":{"name":"Ada","line1":"1 Main St","city":"Springfield","postal_code":"62701","country":"US"}`
	cases := []struct{ name, body, code, field string }{
		{"upper-case key", `{"EMAIL":"a@b.c",` + rest + `}`, "unknown_field", "EMAIL"},
		{"mixed-case key in an item", `{"items":[{"Sku":"SKU-1","quantity":2}],"payment_token":"tok_visa","email":"a@b.c"}`, "unknown_field", "Sku"},
		{"Kelvin sign folding to k", `{"items":[{"s\u212au":"SKU-1","quantity":2}],"payment_token":"tok_visa","email":"a@b.c"}`, "unknown_field", "s\u212au"},
		{"repeated key, last would win", `{"customer_id":"c-2","customer_id":"c-1","email":"a@b.c",` + rest + `}`, "duplicate_field", "customer_id"},
		{"repeated key spelled with an escape", `{"email":"x@y.z","em\u0061il":"a@b.c",` + rest + `}`, "duplicate_field", "email"},
		{"repeated key in an item", `{"items":[{"sku":"SKU-1","sku":"SKU-2","quantity":2}],"payment_token":"tok_visa","email":"a@b.c"}`, "duplicate_field", "sku"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decode(t, tc.body)
			require.NotNil(t, err, "accepted %s", tc.body)
			assert.Equal(t, http.StatusBadRequest, err.Status)
			assert.Equal(t, tc.code, err.Code)
			require.NotEmpty(t, err.Details)
			assert.Equal(t, tc.field, err.Details[0].Field)
		})
	}
	// The same key in two objects is not a repeat, and an escaped key is
	// the key it spells.
	r, err := decode(t, `{"em\u0061il":"a@b.c","items":[{"sku":"SKU-1","quantity":2},{"sku":"SKU-2","quantity":1}],"payment_token":"tok_visa",`+
		`"shipping_address":{"name":"Ada","line1":"1 Main St","city":"Hong Kong","country":"HK"}}`)
	require.Nil(t, err)
	assert.Equal(t, "a@b.c", r.Email)
	assert.Len(t, r.Items, 2)
	_, err = decode(t, `{"EMAIL":"a@b.c",`+rest+`}`)
	require.NotNil(t, err)
	assert.Contains(t, err.Details[0].Issue, `did you mean "email"`)
}

// BenchmarkDecodeOrderRequest prices POST /v1/orders's strict decode of a
// typical body; BenchmarkExactKeys the part of it that checks key spelling
// and repeats.
func BenchmarkDecodeOrderRequest(b *testing.B) {
	e := echo.New()
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v1/orders", strings.NewReader(validOrder))
		req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
		if _, err := decodeOrderRequest(e.NewContext(req, httptest.NewRecorder()), 64<<10, "c-1"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkExactKeys(b *testing.B) {
	var req PlaceOrderRequest
	b.ReportAllocs()
	for b.Loop() {
		if err := exactKeys([]byte(validOrder), &req); err != nil {
			b.Fatal(err)
		}
	}
}
