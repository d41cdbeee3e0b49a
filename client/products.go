package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/orderflow/orderflow"
)

// Product is a catalog entry with its stock.
type Product = orderflow.Product

// ProductRequest is the body of PUT /v1/products/{sku}. Currency defaults to
// USD when empty.
type ProductRequest struct {
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	OnHand     int    `json:"on_hand"`
	Currency   string `json:"currency,omitempty"`
}

// ListOptions pages through the catalog: at most Limit products (the
// gateway's default when 0) with SKUs after After.
type ListOptions struct {
	Limit int
	After string
}

// GetProduct reads a product with its stock; 404 product_not_found for a SKU
// the catalog does not have.
func (c *Client) GetProduct(ctx context.Context, sku string) (Product, error) {
	var p Product
	if _, err := c.do(ctx, http.MethodGet, "/v1/products/"+escape(sku), nil, nil, &p, http.StatusOK); err != nil {
		return Product{}, fmt.Errorf("get product %s: %w", sku, err)
	}
	return p, nil
}

// ListProducts reads one page of the catalog in SKU order; the next page
// starts after the last SKU of this one.
func (c *Client) ListProducts(ctx context.Context, opts ListOptions) ([]Product, error) {
	q := url.Values{}
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	if opts.After != "" {
		q.Set("after", opts.After)
	}
	var page struct {
		Products []Product `json:"products"`
	}
	if _, err := c.do(ctx, http.MethodGet, withQuery("/v1/products", q), nil, nil, &page, http.StatusOK); err != nil {
		return nil, fmt.Errorf("list products: %w", err)
	}
	return page.Products, nil
}

// PutProduct creates or updates a product and sets its on-hand stock (an
// operator's call). created tells a new product (201) from an update (200);
// stock below what open orders reserve is 409 stock_reserved.
func (c *Client) PutProduct(ctx context.Context, sku string, req ProductRequest) (p Product, created bool, err error) {
	a, err := c.do(ctx, http.MethodPut, "/v1/products/"+escape(sku), nil, req, &p, http.StatusOK, http.StatusCreated)
	if err != nil {
		return Product{}, false, fmt.Errorf("put product %s: %w", sku, err)
	}
	return p, a.status == http.StatusCreated, nil
}

// SearchOptions page through a search: at most Limit products (the
// gateway's default, 20, when 0; at most 100) after the cursor After (a
// previous page's Next).
type SearchOptions struct {
	Limit int
	After string
}

// ProductPage is a page of search results, best first. Next, when not
// empty, is the After of the following page.
type ProductPage struct {
	Products []Product `json:"products"`
	Next     string    `json:"next,omitempty"`
}

// SearchProducts finds products whose SKU or name holds every word of text,
// best first: 400 for a text without a word of letters or digits, with
// more than 8 words or over 200 bytes, or a bad limit or cursor.
func (c *Client) SearchProducts(ctx context.Context, text string, opts SearchOptions) (ProductPage, error) {
	q := url.Values{"q": {text}}
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	if opts.After != "" {
		q.Set("after", opts.After)
	}
	var page ProductPage
	if _, err := c.do(ctx, http.MethodGet, withQuery("/v1/products", q), nil, nil, &page, http.StatusOK); err != nil {
		return ProductPage{}, fmt.Errorf("search products %q: %w", text, err)
	}
	return page, nil
}
