package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"github.com/labstack/echo/v4"
)

// Limits of an order request.
const (
	MaxLines    = 50
	MinQuantity = 1
	MaxQuantity = 1000
)

var (
	skuPattern      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	customerPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$`)
	tokenPattern    = regexp.MustCompile(`^[A-Za-z0-9_]{1,255}$`)
)

// decodeJSON reads a JSON body strictly: bounded size, one object, no unknown
// fields, keys spelled exactly and none repeated, no trailing data.
func decodeJSON(c echo.Context, limit int64, v any) error {
	body, err := readJSON(c, limit)
	if err != nil {
		return err
	}
	return decodeBody(body, v)
}

// readJSON reads a JSON request's raw body, bounded by limit (a signed
// body is checked before it is decoded).
func readJSON(c echo.Context, limit int64) ([]byte, error) {
	if ct := c.Request().Header.Get(echo.HeaderContentType); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != echo.MIMEApplicationJSON {
			return nil, newError(http.StatusUnsupportedMediaType, "unsupported_media_type", "send the body as application/json")
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, newError(http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("request body exceeds %d bytes", limit))
		}
		return nil, newError(http.StatusBadRequest, "unreadable_body", "could not read the request body")
	}
	return body, nil
}

// decodeBody decodes a JSON body strictly (decodeJSON says how).
func decodeBody(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return newError(http.StatusBadRequest, "malformed_json", "request body is empty")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return newError(http.StatusBadRequest, "malformed_json", "request body has data after the JSON object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return newError(http.StatusBadRequest, "malformed_json", "request body has data after the JSON object")
	}
	if err := exactKeys(body, v); err != nil {
		return err
	}
	return nil
}

func jsonError(err error) *Error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return newError(http.StatusBadRequest, "malformed_json", fmt.Sprintf("malformed JSON at byte %d", syntax.Offset))
	case errors.As(err, &typ):
		return newError(http.StatusBadRequest, "invalid_request", "wrong type for a field",
			Detail{Field: fieldPath(typ.Field), Issue: "must be " + typ.Type.String()})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return newError(http.StatusBadRequest, "unknown_field", "unknown field "+field, Detail{Field: field, Issue: "not allowed"})
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return newError(http.StatusBadRequest, "malformed_json", "request body is truncated JSON")
	}
	return newError(http.StatusBadRequest, "malformed_json", "request body is not valid JSON")
}

// PlaceOrderRequest is the body of POST /v1/orders. CustomerID may be left
// out: the order's customer is always the token's subject.
type PlaceOrderRequest struct {
	CustomerID   string      `json:"customer_id"`
	Items        []OrderItem `json:"items"`
	PaymentToken string      `json:"payment_token"`
	Email        string      `json:"email"`
}

// OrderItem is one requested line.
type OrderItem struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

// Validate checks every field and returns all problems at once.
func (r *PlaceOrderRequest) Validate() *Error {
	var d []Detail
	if !customerPattern.MatchString(r.CustomerID) {
		d = append(d, Detail{Field: "customer_id", Issue: "the token's subject must be 1-128 characters of letters, digits and ._:@-"})
	}
	switch {
	case len(r.Items) == 0:
		d = append(d, Detail{Field: "items", Issue: "at least one item is required"})
	case len(r.Items) > MaxLines:
		d = append(d, Detail{Field: "items", Issue: fmt.Sprintf("at most %d items", MaxLines)})
	default:
		for i, it := range r.Items {
			if !skuPattern.MatchString(it.SKU) {
				d = append(d, Detail{Field: fmt.Sprintf("items[%d].sku", i), Issue: "required: 1-64 characters of letters, digits and ._-"})
			}
			if it.Quantity < MinQuantity || it.Quantity > MaxQuantity {
				d = append(d, Detail{Field: fmt.Sprintf("items[%d].quantity", i), Issue: fmt.Sprintf("must be between %d and %d", MinQuantity, MaxQuantity)})
			}
		}
	}
	if !tokenPattern.MatchString(r.PaymentToken) {
		d = append(d, Detail{Field: "payment_token", Issue: "required: a provider token of letters, digits and _"})
	}
	// net/mail accepts any non-ASCII rune; invisible and control ones (a
	// right-to-left override, a zero-width space) would let an address look
	// like another in the messages we send, so they are refused.
	if a, err := mail.ParseAddress(r.Email); err != nil || a.Address != r.Email || len(r.Email) > 254 ||
		strings.IndexFunc(r.Email, func(c rune) bool { return !unicode.IsGraphic(c) || unicode.Is(unicode.Cf, c) }) >= 0 {
		d = append(d, Detail{Field: "email", Issue: "required: a plain e-mail address"})
	}
	if len(d) > 0 {
		return newError(http.StatusBadRequest, "invalid_request", "the order request is invalid", d...)
	}
	return nil
}

// decodeOrderRequest reads and validates the body of POST /v1/orders for the
// caller subject (the token's sub): the strict decode of decodeJSON, then the
// customer, then Validate. The order's customer is the subject: a body that
// omits customer_id gets it, a body that names another customer is refused
// with 403 customer_mismatch. Every error it returns is an *Error with a 4xx
// status.
func decodeOrderRequest(c echo.Context, limit int64, subject string) (PlaceOrderRequest, error) {
	var req PlaceOrderRequest
	if err := decodeJSON(c, limit, &req); err != nil {
		return PlaceOrderRequest{}, err
	}
	if req.CustomerID != "" && req.CustomerID != subject {
		return PlaceOrderRequest{}, newError(http.StatusForbidden, "customer_mismatch",
			"customer_id must be the token's subject (or left out)", Detail{Field: "customer_id", Issue: "not the token's subject"})
	}
	req.CustomerID = subject
	if err := req.Validate(); err != nil {
		return PlaceOrderRequest{}, err
	}
	return req, nil
}

// idempotencyKey returns the request's Idempotency-Key as sent. A missing or
// empty header, more than one value, or a value ValidIdempotencyKey refuses is
// a 400 *Error.
func idempotencyKey(h http.Header) (string, error) {
	key, ok := h[HeaderIdempotencyKey]
	if !ok || len(key) == 0 || key[0] == "" {
		return "", newError(http.StatusBadRequest, "idempotency_key_required", "the Idempotency-Key header is required")
	}
	if len(key) > 1 || !ValidIdempotencyKey(key[0]) {
		return "", newError(http.StatusBadRequest, "invalid_idempotency_key", "Idempotency-Key must be one value of 1-255 printable ASCII characters")
	}
	return key[0], nil
}

// ValidIdempotencyKey reports whether k is 1-255 printable ASCII characters.
func ValidIdempotencyKey(k string) bool {
	if len(k) == 0 || len(k) > 255 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// fieldPath writes encoding/json's path of a field ("items.0.quantity";
// Go 1.27 names the element, older releases wrote "items.quantity") in the
// notation the validation errors use: "items[0].quantity".
func fieldPath(jsonPath string) string {
	var b strings.Builder
	for i, seg := range strings.Split(jsonPath, ".") {
		if _, err := strconv.Atoi(seg); err == nil && i > 0 {
			b.WriteString("[" + seg + "]")
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(seg)
	}
	return b.String()
}
