package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"
)

// The fuzz targets run their seeds (f.Add below and testdata/fuzz/<target>/)
// under plain `go test`; `make fuzz` explores beyond them. Neither starts a
// saga nor touches a database: they cover what the gateway does with the
// bytes before it asks any service.

const validOrder = `{"customer_id":"c-1","items":[{"sku":"SKU-1","quantity":2}],"payment_token":"tok_visa","email":"a@b.c",` +
	`"shipping_address":{"name":"Ada","line1":"1 Main St","city":"Springfield","postal_code":"62701","country":"US"}}`

// gatewayBodyLimit is the body limit the gateway applies when none is
// configured, read from a Server that Handler has defaulted.
func gatewayBodyLimit(f *testing.F) int64 {
	f.Helper()
	s := &Server{Log: zap.NewNop()}
	s.Handler()
	if s.BodyLimit <= 0 {
		f.Fatalf("Handler left BodyLimit at %d", s.BodyLimit)
	}
	return s.BodyLimit
}

// fuzzSubject is the token subject the fuzzed orders are placed under: a
// body naming another customer is a 403, one naming none is the subject's.
const fuzzSubject = "c-1"

// smallBodyLimit makes the fuzzer's small inputs reach the 413 path too.
const smallBodyLimit = 96

func FuzzOrderRequest(f *testing.F) {
	limit := gatewayBodyLimit(f)
	for _, s := range []string{
		validOrder,
		"",
		"{}",
		"null",
		`{"customer_id":"c-1","items":[{"sku":"SKU-1","quantity":2}],"payment_token":"tok_visa","email":"a@b.c","total":1}`,
		`{"customer_id":"c-1","items":[{"sku":"SKU-1","quantity":1e400}],"payment_token":"tok_visa","email":"a@b.c"}`,
		`{"customer_id":"c-1","items":[{"sku":"SKU-1","quantity":2}],"payment_token":"tok_visa","email":"a@b.c"}{}`,
		`{"customer_id":"\u0000","items":[{"sku":"\ud800","quantity":2}],"payment_token":"tok_visa","email":"ü@exämple.de"}`,
		`[[[[[[[[[[{"items":{"items":[]}}]]]]]]]]]]`,
	} {
		f.Add([]byte(s))
	}
	// Just past the gateway's limit, otherwise valid: 413, not 400.
	f.Add([]byte(validOrder[:len(validOrder)-1] + `,"email":"` + strings.Repeat("a", int(limit)) + `@b.c"}`))

	f.Fuzz(func(t *testing.T, body []byte) {
		checkOrderBody(t, body, limit)
		checkOrderBody(t, body, smallBodyLimit)
	})
}

// checkOrderBody decodes body as POST /v1/orders does and checks that the
// outcome is either a request that keeps every documented limit or an error
// the gateway answers with a 4xx and its JSON error body.
func checkOrderBody(t *testing.T, body []byte, limit int64) {
	t.Helper()
	e := echo.New()
	r := httptest.NewRequest(http.MethodPost, "/v1/orders", bytes.NewReader(body))
	r.Header.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	rec := httptest.NewRecorder()
	c := e.NewContext(r, rec)

	req, err := decodeOrderRequest(c, limit, fuzzSubject)
	tooBig := int64(len(body)) > limit
	if err == nil {
		if tooBig {
			t.Fatalf("a %d-byte body passed a %d-byte limit", len(body), limit)
		}
		checkOrderInvariants(t, req)
		// The request hash is taken over the re-encoded request, so that
		// form must decode to the same, still valid, request.
		again, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", req, err)
		}
		c2 := e.NewContext(httptest.NewRequest(http.MethodPost, "/v1/orders", bytes.NewReader(again)), httptest.NewRecorder())
		back, err := decodeOrderRequest(c2, int64(len(again)), fuzzSubject)
		if err != nil {
			t.Fatalf("re-encoded request %s refused: %v", again, err)
		}
		if !equalRequests(req, back) {
			t.Fatalf("re-encoded request decodes differently:\n%+v\n%+v", req, back)
		}
		return
	}

	var ae *Error
	if !errors.As(err, &ae) {
		t.Fatalf("decode error is %T (%v), not *Error: the gateway would answer 500", err, err)
	}
	if tooBig && (ae.Status != http.StatusRequestEntityTooLarge || ae.Code != "body_too_large") {
		t.Fatalf("a %d-byte body over a %d-byte limit got %d %s, want 413 body_too_large", len(body), limit, ae.Status, ae.Code)
	}
	checkErrorAnswer(t, err, c, rec, ae)
}

// checkErrorAnswer runs err through the gateway's error handler and checks
// the answer: the status and code of want, a 4xx, a JSON error body.
func checkErrorAnswer(t *testing.T, err error, c echo.Context, rec *httptest.ResponseRecorder, want *Error) {
	t.Helper()
	errorHandler(zap.NewNop())(err, c)
	if rec.Code < 400 || rec.Code > 499 {
		t.Fatalf("error %v answered %d, want a 4xx", err, rec.Code)
	}
	if rec.Code != want.Status {
		t.Fatalf("error %v answered %d, want its own status %d", err, rec.Code, want.Status)
	}
	if mt, _, perr := mime.ParseMediaType(rec.Header().Get(echo.HeaderContentType)); perr != nil || mt != echo.MIMEApplicationJSON {
		t.Fatalf("error answer has Content-Type %q, want application/json", rec.Header().Get(echo.HeaderContentType))
	}
	var got struct {
		Error *struct {
			Code    string   `json:"code"`
			Message string   `json:"message"`
			Details []Detail `json:"details"`
		} `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	dec.DisallowUnknownFields()
	if derr := dec.Decode(&got); derr != nil || got.Error == nil {
		t.Fatalf("error answer is not the JSON error body (%v): %s", derr, rec.Body.Bytes())
	}
	if got.Error.Code != want.Code || got.Error.Message == "" {
		t.Fatalf("error body %s, want code %q and a message", rec.Body.Bytes(), want.Code)
	}
	for _, d := range got.Error.Details {
		if d.Issue == "" {
			t.Fatalf("error body %s has a detail without an issue", rec.Body.Bytes())
		}
	}
}

// checkOrderInvariants restates the limits of a valid order without the
// validator's regular expressions.
func checkOrderInvariants(t *testing.T, r PlaceOrderRequest) {
	t.Helper()
	if n := len(r.Items); n < 1 || n > 50 {
		t.Fatalf("accepted %d lines, want 1-50", n)
	}
	for i, it := range r.Items {
		if it.Quantity < 1 || it.Quantity > 1000 {
			t.Fatalf("accepted items[%d].quantity %d, want 1-1000", i, it.Quantity)
		}
		if it.SKU == "" || len(it.SKU) > 64 || !asciiWord(it.SKU, "._-") {
			t.Fatalf("accepted items[%d].sku %q", i, it.SKU)
		}
	}
	if r.CustomerID == "" || len(r.CustomerID) > 128 || !asciiWord(r.CustomerID, "._:@-") {
		t.Fatalf("accepted customer_id %q", r.CustomerID)
	}
	if r.PaymentToken == "" || len(r.PaymentToken) > 255 || !asciiWord(r.PaymentToken, "_") {
		t.Fatalf("accepted payment_token %q", r.PaymentToken)
	}
	a, err := mail.ParseAddress(r.Email)
	if err != nil || a.Address != r.Email || a.Name != "" || len(r.Email) > 254 {
		t.Fatalf("accepted email %q (%v)", r.Email, err)
	}
	ship := r.ShippingAddress
	if ship == nil {
		t.Fatalf("accepted an order without a shipping address")
	}
	for name, f := range map[string]struct {
		v        string
		max      int
		required bool
	}{"name": {ship.Name, 200, true}, "line1": {ship.Line1, 200, true}, "line2": {ship.Line2, 200, false}, "city": {ship.City, 100, true},
		"state": {ship.State, 100, false}, "postal_code": {ship.PostalCode, 16, false}} {
		if len(f.v) > f.max || (f.required && strings.TrimSpace(f.v) == "") {
			t.Fatalf("accepted shipping_address.%s %q", name, f.v)
		}
		if strings.IndexFunc(f.v, func(c rune) bool { return unicode.IsControl(c) || unicode.Is(unicode.Cf, c) }) >= 0 {
			t.Fatalf("accepted shipping_address.%s %q with a control or format character", name, f.v)
		}
	}
	if len(ship.Country) != 2 || ship.Country[0] < 'A' || ship.Country[0] > 'Z' || ship.Country[1] < 'A' || ship.Country[1] > 'Z' {
		t.Fatalf("accepted shipping_address.country %q", ship.Country)
	}
	// Everything accepted goes into PostgreSQL text columns and Temporal
	// payloads: valid UTF-8 and no NUL.
	for _, s := range []string{r.CustomerID, r.PaymentToken, r.Email, ship.Name, ship.Line1, ship.Line2, ship.City, ship.State, ship.PostalCode} {
		if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
			t.Fatalf("accepted %q, which PostgreSQL text refuses", s)
		}
	}
}

// asciiWord reports whether s is ASCII letters and digits and the given
// punctuation.
func asciiWord(s, punct string) bool {
	for _, r := range s {
		if r > unicode.MaxASCII || !(unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune(punct, r)) {
			return false
		}
	}
	return true
}

func equalRequests(a, b PlaceOrderRequest) bool {
	if a.CustomerID != b.CustomerID || a.PaymentToken != b.PaymentToken || a.Email != b.Email || len(a.Items) != len(b.Items) {
		return false
	}
	if (a.ShippingAddress == nil) != (b.ShippingAddress == nil) || (a.ShippingAddress != nil && *a.ShippingAddress != *b.ShippingAddress) {
		return false
	}
	for i := range a.Items {
		if a.Items[i] != b.Items[i] {
			return false
		}
	}
	return true
}

// refValidKey is the Idempotency-Key rule written independently of
// ValidIdempotencyKey: 1-255 bytes, each a printable ASCII character.
func refValidKey(k string) bool {
	if len(k) < 1 || len(k) > 255 {
		return false
	}
	return strings.IndexFunc(k, func(r rune) bool { return r > unicode.MaxASCII || !unicode.IsPrint(r) }) < 0
}

func FuzzIdempotencyKey(f *testing.F) {
	for _, k := range []string{
		"a",
		"0c5e6f7e-6d0b-4f43-9a7b-6a1d1b1c2d3e",
		strings.Repeat("k", 255),
		strings.Repeat("k", 256),
		"",
		" ",
		"  padded  ",
		"tab\there",
		"a\r\nIdempotency-Key: b",
		"nul\x00",
		"del\x7f",
		"ключ",
		"\xff\xfe",
	} {
		f.Add(k)
	}

	f.Fuzz(func(t *testing.T, k string) {
		got := ValidIdempotencyKey(k)
		if want := refValidKey(k); got != want {
			t.Fatalf("ValidIdempotencyKey(%q) = %v, reference says %v", k, got, want)
		}
		if got && !ValidIdempotencyKey(strings.Clone(k)) {
			t.Fatalf("%q accepted once, refused when checked again", k)
		}

		// The header as the gateway reads it.
		key, err := idempotencyKey(http.Header{HeaderIdempotencyKey: {k}})
		checkKeyOutcome(t, k, key, err, got)
		if got {
			// One value only: a repeated header is refused even when each
			// value alone is fine.
			if _, err := idempotencyKey(http.Header{HeaderIdempotencyKey: {k, k}}); err == nil {
				t.Fatalf("two Idempotency-Key values %q accepted", k)
			}
		}

		// The header as it arrives on the wire: net/http trims blanks
		// around the value and refuses some bytes before the gateway sees it.
		raw := "POST /v1/orders HTTP/1.1\r\nHost: gateway\r\n" + HeaderIdempotencyKey + ": " + k + "\r\nContent-Length: 0\r\n\r\n"
		hr, rerr := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		if rerr != nil {
			return // net/http answers 400 itself
		}
		key, err = idempotencyKey(hr.Header)
		if err == nil && !refValidKey(key) {
			t.Fatalf("key %q (sent %q) accepted off the wire", key, k)
		}
		if !strings.ContainsAny(k, "\r\n") {
			sent := strings.Trim(k, " \t")
			checkKeyOutcome(t, sent, key, err, ValidIdempotencyKey(sent))
		}
	})
}

// checkKeyOutcome checks idempotencyKey's answer for a header carrying sent:
// the key itself when valid is true, else a 400 error body.
func checkKeyOutcome(t *testing.T, sent, key string, err error, valid bool) {
	t.Helper()
	if valid {
		if err != nil || key != sent {
			t.Fatalf("valid key %q: got %q, %v", sent, key, err)
		}
		if !ValidIdempotencyKey(key) {
			t.Fatalf("accepted key %q refused when checked again", key)
		}
		return
	}
	if err == nil {
		t.Fatalf("invalid key %q accepted as %q", sent, key)
	}
	var ae *Error
	if !errors.As(err, &ae) {
		t.Fatalf("key error is %T, not *Error", err)
	}
	want := "invalid_idempotency_key"
	if sent == "" {
		want = "idempotency_key_required"
	}
	if ae.Status != http.StatusBadRequest || ae.Code != want {
		t.Fatalf("key %q: got %d %s, want 400 %s", sent, ae.Status, ae.Code, want)
	}
	rec := httptest.NewRecorder()
	c := echo.New().NewContext(httptest.NewRequest(http.MethodPost, "/v1/orders", nil), rec)
	checkErrorAnswer(t, err, c, rec, ae)
}
