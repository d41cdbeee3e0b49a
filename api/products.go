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

	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"

	"github.com/orderflow/orderflow/internal/cache"
	"github.com/orderflow/orderflow/internal/db"
)

// ProductJSON is a product with its stock, as the API shows it.
type ProductJSON struct {
	SKU        string `json:"sku"`
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	Currency   string `json:"currency"`
	OnHand     int    `json:"on_hand"`
	Reserved   int    `json:"reserved"`
	Available  int    `json:"available"`
}

// catalogEntry is the catalog tier's cached value (CACHE_CATALOG_TTL, 5 minutes).
type catalogEntry struct {
	SKU        string `json:"sku"`
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	Currency   string `json:"currency"`
}

// stockEntry is the inventory tier's cached value (CACHE_INVENTORY_TTL, 30 seconds).
type stockEntry struct {
	OnHand   int `json:"on_hand"`
	Reserved int `json:"reserved"`
}

// products returns the catalog entries of the SKUs that exist, from the cache
// where it has them.
func (s *Server) products(ctx context.Context, skus []string) (map[string]catalogEntry, error) {
	found := map[string]catalogEntry{}
	keys := make([]string, len(skus))
	for i, sku := range skus {
		keys[i] = cache.ProductKey(sku)
	}
	cache.GetManyJSON(ctx, s.Cache, s.warner(), keys, func(i int, raw []byte) error {
		var e catalogEntry
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
	rows, err := s.DB.Query(ctx, `SELECT sku, name, price_cents, currency FROM products WHERE sku = ANY($1)`, missing)
	if err != nil {
		return nil, fmt.Errorf("load products: %w", err)
	}
	entries, err := pgx.CollectRows(rows, pgx.RowToStructByPos[catalogEntry])
	if err != nil {
		return nil, fmt.Errorf("load products: %w", err)
	}
	for _, e := range entries {
		found[e.SKU] = e
		cache.SetJSON(ctx, s.Cache, s.warner(), cache.ProductKey(e.SKU), e, ttl(s.Tiers.CatalogTTL, cache.CatalogTTL))
	}
	return found, nil
}

func (s *Server) stock(ctx context.Context, sku string) (stockEntry, bool, error) {
	var st stockEntry
	hit := cache.GetJSON(ctx, s.Cache, s.warner(), cache.InventoryKey(sku), &st)
	cache.Record(ctx, cache.TierInventory, hit)
	if hit {
		return st, true, nil
	}
	err := s.DB.QueryRow(ctx, `SELECT on_hand, reserved FROM inventory WHERE sku = $1`, sku).Scan(&st.OnHand, &st.Reserved)
	if errors.Is(err, pgx.ErrNoRows) {
		return st, false, nil
	}
	if err != nil {
		return st, false, fmt.Errorf("load stock of %s: %w", sku, err)
	}
	cache.SetJSON(ctx, s.Cache, s.warner(), cache.InventoryKey(sku), st, ttl(s.Tiers.InventoryTTL, cache.InventoryTTL))
	return st, true, nil
}

func product(e catalogEntry, st stockEntry) ProductJSON {
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

// listProducts pages through the catalog in SKU order: ?limit=N&after=SKU.
func (s *Server) listProducts(c echo.Context) error {
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
	const q = `SELECT p.sku, p.name, p.price_cents, p.currency, i.on_hand, i.reserved, i.on_hand - i.reserved
		FROM products p JOIN inventory i USING (sku) WHERE p.sku > $1 AND NOT p.synthetic ORDER BY p.sku LIMIT $2`
	rows, err := s.DB.Query(ctx, q, after, limit)
	if err != nil {
		return fmt.Errorf("list products: %w", err)
	}
	list, err := pgx.CollectRows(rows, pgx.RowToStructByPos[ProductJSON])
	if err != nil {
		return fmt.Errorf("list products: %w", err)
	}
	if list == nil {
		list = []ProductJSON{}
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
	var out ProductJSON
	created := false
	err := db.InTx(ctx, s.DB, func(tx pgx.Tx) error {
		const qp = `INSERT INTO products (sku, name, price_cents, currency) VALUES ($1, $2, $3, $4)
			ON CONFLICT (sku) DO UPDATE SET name = EXCLUDED.name, price_cents = EXCLUDED.price_cents,
				currency = EXCLUDED.currency, updated_at = now()
			RETURNING (xmax = 0)`
		if err := tx.QueryRow(ctx, qp, sku, *req.Name, *req.PriceCents, currency).Scan(&created); err != nil {
			return fmt.Errorf("upsert product: %w", err)
		}
		var onHand, reserved int
		err := tx.QueryRow(ctx, `SELECT on_hand, reserved FROM inventory WHERE sku = $1 FOR UPDATE`, sku).Scan(&onHand, &reserved)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			if _, err := tx.Exec(ctx, `INSERT INTO inventory (sku, on_hand) VALUES ($1, $2)`, sku, *req.OnHand); err != nil {
				return fmt.Errorf("insert stock: %w", err)
			}
		case err != nil:
			return fmt.Errorf("lock stock: %w", err)
		default:
			if *req.OnHand < reserved {
				return newError(http.StatusConflict, "stock_reserved",
					fmt.Sprintf("on_hand %d is below the %d units reserved by open orders", *req.OnHand, reserved))
			}
			const qu = `UPDATE inventory SET on_hand = $2, version = version + 1, updated_at = now() WHERE sku = $1`
			if _, err := tx.Exec(ctx, qu, sku, *req.OnHand); err != nil {
				return fmt.Errorf("update stock: %w", err)
			}
		}
		if delta := *req.OnHand - onHand; delta != 0 {
			const qe = `INSERT INTO inventory_events (sku, delta_on_hand, delta_reserved, reason) VALUES ($1, $2, 0, 'restock')`
			if _, err := tx.Exec(ctx, qe, sku, delta); err != nil {
				return fmt.Errorf("append restock event: %w", err)
			}
		}
		out = ProductJSON{SKU: sku, Name: *req.Name, PriceCents: *req.PriceCents, Currency: currency,
			OnHand: *req.OnHand, Reserved: reserved, Available: *req.OnHand - reserved}
		return nil
	})
	if err != nil {
		return err
	}
	cache.Del(ctx, s.Cache, s.warner(), cache.ProductKey(sku), cache.InventoryKey(sku))
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return c.JSON(status, out)
}
