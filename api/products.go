package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/catalog"
	"github.com/orderflow/orderflow/internal/cache"
)

// ProductJSON is a product with its stock, as the API shows it.
type ProductJSON = orderflow.Product

// The catalog tier caches catalog.Product (CACHE_CATALOG_TTL, 5 minutes)
// and the inventory tier catalog.Stock (CACHE_INVENTORY_TTL, 30 seconds),
// in their JSON forms.

// catalogStore is the catalog area's store over the gateway's pool.
func (s *Server) catalogStore() catalog.Store { return catalog.Store{DB: s.DB} }

// products returns the catalog entries of the SKUs that exist, from the cache
// where it has them.
func (s *Server) products(ctx context.Context, skus []string) (map[string]catalog.Product, error) {
	found := map[string]catalog.Product{}
	keys := make([]string, len(skus))
	for i, sku := range skus {
		keys[i] = cache.ProductKey(sku)
	}
	cache.GetManyJSON(ctx, s.Cache, s.warner(), keys, func(i int, raw []byte) error {
		var e catalog.Product
		if err := json.Unmarshal(raw, &e); err != nil {
			return err
		}
		found[skus[i]] = e
		return nil
	})
	var missing []string
	for i, sku := range skus {
		if slices.Contains(skus[:i], sku) {
			continue
		}
		_, hit := found[sku]
		cache.Record(ctx, cache.TierCatalog, hit)
		if !hit {
			missing = append(missing, sku)
		}
	}
	if len(missing) == 0 {
		return found, nil
	}
	loaded, err := s.catalogStore().Products(ctx, missing)
	if err != nil {
		return nil, err
	}
	for _, e := range loaded {
		found[e.SKU] = e
		cache.SetJSON(ctx, s.Cache, s.warner(), cache.ProductKey(e.SKU), e, ttl(s.Tiers.CatalogTTL, cache.CatalogTTL))
	}
	return found, nil
}

func (s *Server) stock(ctx context.Context, sku string) (catalog.Stock, bool, error) {
	var st catalog.Stock
	hit := cache.GetJSON(ctx, s.Cache, s.warner(), cache.InventoryKey(sku), &st)
	cache.Record(ctx, cache.TierInventory, hit)
	if hit {
		return st, true, nil
	}
	st, found, err := s.catalogStore().Stock(ctx, sku)
	if err != nil || !found {
		return st, found, err
	}
	cache.SetJSON(ctx, s.Cache, s.warner(), cache.InventoryKey(sku), st, ttl(s.Tiers.InventoryTTL, cache.InventoryTTL))
	return st, true, nil
}

func product(e catalog.Product, st catalog.Stock) ProductJSON {
	return ProductJSON{SKU: e.SKU, Name: e.Name, PriceCents: e.PriceCents, Currency: e.Currency,
		OnHand: st.OnHand, Reserved: st.Reserved, Available: st.OnHand - st.Reserved}
}

func (s *Server) getProduct(c echo.Context) error {
	sku := c.Param("sku")
	if !skuPattern.MatchString(sku) {
		return newError(http.StatusNotFound, "product_not_found", "no such product")
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), requestTimeout)
	defer cancel()
	found, err := s.products(ctx, []string{sku})
	if err != nil {
		return err
	}
	e, ok := found[sku]
	if !ok {
		return newError(http.StatusNotFound, "product_not_found", "no such product")
	}
	st, _, err := s.stock(ctx, sku)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, product(e, st))
}

// listProducts pages through the catalog in SKU order: ?limit=N&after=SKU;
// with q= it searches instead (searchProducts).
func (s *Server) listProducts(c echo.Context) error {
	if c.QueryParams().Has("q") {
		return s.searchProducts(c)
	}
	limit := 100
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return newError(http.StatusBadRequest, "invalid_request", "limit must be between 1 and 500", Detail{Field: "limit", Issue: "out of range"})
		}
		limit = n
	}
	// The cursor is the last SKU of the previous page; anything else (a
	// NUL or invalid UTF-8, which PostgreSQL text refuses) is a 400.
	after := c.QueryParam("after")
	if after != "" && !skuPattern.MatchString(after) {
		return newError(http.StatusBadRequest, "invalid_request", "after must be a SKU", Detail{Field: "after", Issue: "1-64 characters of letters, digits and ._-"})
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), requestTimeout)
	defer cancel()
	rows, err := s.catalogStore().List(ctx, after, limit)
	if err != nil {
		return err
	}
	list := make([]ProductJSON, len(rows))
	for i, r := range rows {
		list[i] = ProductJSON{SKU: r.SKU, Name: r.Name, PriceCents: r.PriceCents, Currency: r.Currency,
			OnHand: r.OnHand, Reserved: r.Reserved, Available: r.Available}
	}
	return c.JSON(http.StatusOK, map[string]any{"products": list})
}

// PutProductRequest is the body of PUT /v1/products/{sku}.
type PutProductRequest struct {
	Name       *string `json:"name"`
	PriceCents *int64  `json:"price_cents"`
	OnHand     *int    `json:"on_hand"`
	Currency   *string `json:"currency"`
}

func (r *PutProductRequest) validate() *Error {
	var d []Detail
	// PostgreSQL text refuses NUL, and no control character belongs in a
	// name that pages and e-mails show.
	if r.Name == nil || len(*r.Name) == 0 || len(*r.Name) > 200 || strings.IndexFunc(*r.Name, unicode.IsControl) >= 0 {
		d = append(d, Detail{Field: "name", Issue: "required: 1-200 bytes of UTF-8 text without control characters"})
	}
	if r.PriceCents == nil || *r.PriceCents < 0 || *r.PriceCents > 100_000_000_00 {
		d = append(d, Detail{Field: "price_cents", Issue: "required: 0 to 10000000000"})
	}
	if r.OnHand == nil || *r.OnHand < 0 || *r.OnHand > 1_000_000_000 {
		d = append(d, Detail{Field: "on_hand", Issue: "required: 0 to 1000000000"})
	}
	if r.Currency != nil && !currencyPattern.MatchString(*r.Currency) {
		d = append(d, Detail{Field: "currency", Issue: "an ISO 4217 code such as USD"})
	}
	if len(d) > 0 {
		return newError(http.StatusBadRequest, "invalid_request", "the product is invalid", d...)
	}
	return nil
}

var currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)

// putProduct upserts a product and sets its on-hand stock. The change in
// on-hand is appended to inventory_events as a restock, so the event log keeps
// replaying to the row. Stock below what is reserved is refused with 409.
func (s *Server) putProduct(c echo.Context) error {
	sku := c.Param("sku")
	if !skuPattern.MatchString(sku) {
		return newError(http.StatusBadRequest, "invalid_request", "invalid sku", Detail{Field: "sku", Issue: "1-64 characters of letters, digits and ._-"})
	}
	var req PutProductRequest
	if err := decodeJSON(c, s.BodyLimit, &req); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	currency := "USD"
	if req.Currency != nil {
		currency = *req.Currency
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), requestTimeout)
	defer cancel()
	actx, act, err := s.auditInTx(c, ctx, actionProductPut, "product:"+sku, req)
	if err != nil {
		return err
	}
	created, reserved, err := s.catalogStore().Put(actx, catalog.Product{SKU: sku, Name: *req.Name, PriceCents: *req.PriceCents, Currency: currency}, *req.OnHand)
	if err == nil {
		err = act.Done(ctx)
	}
	var refused *catalog.ReservedError
	if errors.As(err, &refused) {
		return newError(http.StatusConflict, "stock_reserved", refused.Error())
	}
	if err != nil {
		return err
	}
	cache.Del(ctx, s.Cache, s.warner(), cache.ProductKey(sku), cache.InventoryKey(sku))
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return c.JSON(status, ProductJSON{SKU: sku, Name: *req.Name, PriceCents: *req.PriceCents, Currency: currency,
		OnHand: *req.OnHand, Reserved: reserved, Available: *req.OnHand - reserved})
}

// Search limits of GET /v1/products?q=.
const (
	defaultSearchLimit = 20
	maxSearchLimit     = 100
	maxSearchText      = 200
	maxSearchWords     = 8
)

// SearchPageJSON is the answer of GET /v1/products?q=: a page of matching
// products, best first. Next is the after= of the following page, absent on
// the last one.
type SearchPageJSON struct {
	Products []ProductJSON `json:"products"`
	Next     string        `json:"next,omitempty"`
}

// searchProducts is GET /v1/products?q=&limit=&after=: products whose SKU
// or name holds every word of q (as a word's prefix, or the name's word
// stemmed), ranked (the SKU counts most, a SKU equal to q comes first), a
// page at a time.
func (s *Server) searchProducts(c echo.Context) error {
	p, err := queryParams(c, "q", "limit", "after")
	if err != nil {
		return err
	}
	text := p["q"]
	words := searchWords(text)
	switch {
	case len(text) > maxSearchText || !utf8.ValidString(text) || strings.IndexFunc(text, unicode.IsControl) >= 0:
		return newError(http.StatusBadRequest, "invalid_request", "q is not a search",
			Detail{Field: "q", Issue: fmt.Sprintf("up to %d bytes of text without control characters", maxSearchText)})
	case len(words) == 0:
		return newError(http.StatusBadRequest, "invalid_request", "q has no word to search for",
			Detail{Field: "q", Issue: "at least one word of letters or digits"})
	case len(words) > maxSearchWords:
		return newError(http.StatusBadRequest, "invalid_request", "q has too many words",
			Detail{Field: "q", Issue: fmt.Sprintf("at most %d words", maxSearchWords)})
	}
	q := catalog.SearchQuery{Words: words, Text: strings.TrimSpace(text)}
	if q.Limit, q.After, err = readPage(p, defaultSearchLimit, maxSearchLimit, parseProductCursor); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), requestTimeout)
	defer cancel()
	page, err := s.catalogStore().Search(ctx, q)
	if err != nil {
		return err
	}
	out := SearchPageJSON{Products: make([]ProductJSON, len(page.Products)), Next: productCursor(page.Next)}
	for i, f := range page.Products {
		out.Products[i] = ProductJSON{SKU: f.SKU, Name: f.Name, PriceCents: f.PriceCents, Currency: f.Currency,
			OnHand: f.OnHand, Reserved: f.Reserved, Available: f.Available}
	}
	return c.JSON(http.StatusOK, out)
}

// searchWords splits a search at everything but letters and digits, as
// migration 0009 splits SKUs and names, lower-cased and without repeats.
func searchWords(text string) []string {
	var words []string
	for _, w := range strings.FieldsFunc(text, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		if w = strings.ToLower(w); len(w) <= 64 && !slices.Contains(words, w) {
			words = append(words, w)
		}
	}
	return words
}
