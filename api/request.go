package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/mail"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/catalog"
	"github.com/orderflow/orderflow/activities/orders"
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
	// ShippingAddress is required: every product ships. It is part of the
	// request's fingerprint, so an Idempotency-Key reused with another
	// address is refused with 422.
	ShippingAddress *orderflow.Address `json:"shipping_address"`
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
	d = append(d, validateAddress("shipping_address", r.ShippingAddress)...)
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
		return "", errInvalidIdempotencyKey
	}
	return key[0], nil
}

var errInvalidIdempotencyKey = newError(http.StatusBadRequest, "invalid_idempotency_key",
	"Idempotency-Key must be one value of 1-255 printable ASCII characters")

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

// queryParams returns the request's query parameters, each given at most
// once and each one of allowed: an unknown parameter (a typo would
// otherwise be ignored silently) or a repeated one is a 400.
func queryParams(c echo.Context, allowed ...string) (map[string]string, error) {
	out := map[string]string{}
	for k, vs := range c.QueryParams() {
		if !slices.Contains(allowed, k) {
			return nil, newError(http.StatusBadRequest, "unknown_parameter", "unknown query parameter "+strconv.Quote(k),
				Detail{Field: k, Issue: "not allowed; allowed: " + strings.Join(allowed, ", ")})
		}
		if len(vs) != 1 {
			return nil, newError(http.StatusBadRequest, "invalid_request", "query parameter "+k+" is given more than once",
				Detail{Field: k, Issue: "give it once"})
		}
		out[k] = vs[0]
	}
	return out, nil
}

// readPage reads a page's limit= (def when absent, else 1 to max) and its
// after= cursor, decoded by parse (the zero C when absent).
func readPage[C any](p map[string]string, def, max int, parse func(string) (C, error)) (limit int, after C, err error) {
	limit = def
	if v, given := p["limit"]; given {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > max {
			return 0, after, newError(http.StatusBadRequest, "invalid_request", fmt.Sprintf("limit must be between 1 and %d", max),
				Detail{Field: "limit", Issue: fmt.Sprintf("an integer from 1 to %d", max)})
		}
		limit = n
	}
	if v, given := p["after"]; given {
		if after, err = parse(v); err != nil {
			return 0, after, err
		}
	}
	return limit, after, nil
}

// parseIDCursor reads the after= of a list paged by row id, whose cursors
// are of kind: a row id, 0 or more.
func parseIDCursor(v, kind string) (int64, error) {
	f, err := decodeCursor(v, kind, 1)
	if err != nil {
		return 0, err
	}
	id, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil || id < 0 {
		return 0, errBadCursor
	}
	return id, nil
}

// Cursors (after=) are opaque to clients: base64url of a kind, a version
// and the position the previous page ended at. A cursor is only a position,
// never a permission: every page is filtered by the caller's rights anew.
const (
	cursorOrders   = "o1"
	cursorProducts = "p1"
)

// encodeCursor makes the after= of a page that ends at fields.
func encodeCursor(kind string, fields ...string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + "|" + strings.Join(fields, "|")))
}

// errBadCursor answers an after= that is not a cursor the endpoint gave.
var errBadCursor = newError(http.StatusBadRequest, "invalid_cursor", "after is not a cursor this endpoint returned",
	Detail{Field: "after", Issue: "pass the next value of the previous page as it is"})

// decodeCursor reads a cursor of kind with n fields.
func decodeCursor(v, kind string, n int) ([]string, error) {
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || !utf8.Valid(b) {
		return nil, errBadCursor
	}
	parts := strings.SplitN(string(b), "|", n+1)
	if len(parts) != n+1 || parts[0] != kind {
		return nil, errBadCursor
	}
	return parts[1:], nil
}

// orderCursor writes the position a page of order history ended at.
func orderCursor(p *orders.Position) string {
	if p == nil {
		return ""
	}
	return encodeCursor(cursorOrders, strconv.FormatInt(p.CreatedAt.UnixMicro(), 10), p.OrderID)
}

// parseOrderCursor reads orderCursor's form.
func parseOrderCursor(v string) (*orders.Position, error) {
	f, err := decodeCursor(v, cursorOrders, 2)
	if err != nil {
		return nil, err
	}
	micros, err := strconv.ParseInt(f[0], 10, 64)
	id, uerr := uuid.Parse(f[1])
	if err != nil || uerr != nil || micros < 0 || micros > maxCursorMicros {
		return nil, errBadCursor
	}
	return &orders.Position{CreatedAt: time.UnixMicro(micros).UTC(), OrderID: id.String()}, nil
}

// maxCursorMicros is the year 9999 (PostgreSQL's timestamps end at 294276).
var maxCursorMicros = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC).UnixMicro()

// productCursor writes the position a page of search results ended at; the
// score goes as its exact bits, so the next page starts exactly after it.
func productCursor(r *catalog.Rank) string {
	if r == nil {
		return ""
	}
	return encodeCursor(cursorProducts, strconv.FormatUint(uint64(math.Float32bits(r.Score)), 16), r.SKU)
}

// parseProductCursor reads productCursor's form.
func parseProductCursor(v string) (*catalog.Rank, error) {
	f, err := decodeCursor(v, cursorProducts, 2)
	if err != nil {
		return nil, err
	}
	bits, err := strconv.ParseUint(f[0], 16, 32)
	score := math.Float32frombits(uint32(bits))
	if err != nil || math.IsNaN(float64(score)) || !skuPattern.MatchString(f[1]) {
		return nil, errBadCursor
	}
	return &catalog.Rank{Score: score, SKU: f[1]}, nil
}
