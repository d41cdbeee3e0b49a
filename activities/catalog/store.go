package catalog

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderflow/orderflow/activities"
	"github.com/orderflow/orderflow/internal/db"
)

// Store is the catalog's SQL for the gateway: product and stock reads, the
// product list, the operator's upsert and the synthetic SKU's bookkeeping.
// The Inventory activities' writes are in inventory.go; the reads both
// share (products) are written once here.
type Store struct {
	DB *pgxpool.Pool
}

// Product is a catalog entry; its JSON form is what the gateway's catalog
// cache tier holds.
type Product struct {
	SKU        string `json:"sku"`
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	Currency   string `json:"currency"`
}

// Stock is a SKU's inventory row; its JSON form is what the gateway's
// inventory cache tier holds.
type Stock struct {
	OnHand   int `json:"on_hand"`
	Reserved int `json:"reserved"`
}

// Listed is one row of the product list: a product with its stock.
type Listed struct {
	Product
	Stock
	Available int
}

const qProducts = `SELECT sku, name, price_cents, currency FROM products WHERE sku = ANY($1)`

// products loads the catalog entries of the SKUs that exist, keyed by SKU.
func products(ctx context.Context, q activities.Querier, skus []string) (map[string]Product, error) {
	rows, err := q.Query(ctx, qProducts, skus)
	if err != nil {
		return nil, fmt.Errorf("load products: %w", err)
	}
	list, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Product])
	if err != nil {
		return nil, fmt.Errorf("load products: %w", err)
	}
	known := make(map[string]Product, len(list))
	for _, p := range list {
		known[p.SKU] = p
	}
	return known, nil
}

// Products returns the catalog entries of the SKUs that exist, keyed by SKU;
// a SKU the catalog lacks is simply absent.
func (s Store) Products(ctx context.Context, skus []string) (map[string]Product, error) {
	return products(ctx, s.DB, skus)
}

// Stock returns a SKU's stock, and false when it has no inventory row.
func (s Store) Stock(ctx context.Context, sku string) (Stock, bool, error) {
	var st Stock
	err := s.DB.QueryRow(ctx, `SELECT on_hand, reserved FROM inventory WHERE sku = $1`, sku).Scan(&st.OnHand, &st.Reserved)
	if errors.Is(err, pgx.ErrNoRows) {
		return st, false, nil
	}
	if err != nil {
		return st, false, fmt.Errorf("load stock of %s: %w", sku, err)
	}
	return st, true, nil
}

// List pages through the catalog in SKU order: up to limit products after
// the SKU after ("" for the first page), with their stock, leaving out
// synthetic ones.
func (s Store) List(ctx context.Context, after string, limit int) ([]Listed, error) {
	const q = `SELECT p.sku, p.name, p.price_cents, p.currency, i.on_hand, i.reserved, i.on_hand - i.reserved
		FROM products p JOIN inventory i USING (sku) WHERE p.sku > $1 AND NOT p.synthetic ORDER BY p.sku LIMIT $2`
	rows, err := s.DB.Query(ctx, q, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list products: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Listed, error) {
		var l Listed
		err := row.Scan(&l.SKU, &l.Name, &l.PriceCents, &l.Currency, &l.OnHand, &l.Reserved, &l.Available)
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("list products: %w", err)
	}
	return list, nil
}

// ReservedError refuses to set a SKU's on-hand stock below what open orders
// hold of it.
type ReservedError struct {
	OnHand, Reserved int
}

func (e *ReservedError) Error() string {
	return fmt.Sprintf("on_hand %d is below the %d units reserved by open orders", e.OnHand, e.Reserved)
}

// Put upserts a product and sets its on-hand stock, in one transaction. The
// change in on-hand is appended to inventory_events as a restock, so the
// event log keeps replaying to the row. It returns whether the product is
// new and the stock now reserved; stock below what is reserved is a
// *ReservedError, changing nothing. The caller drops the SKU's cached entry
// and stock once Put has returned.
func (s Store) Put(ctx context.Context, p Product, onHand int) (created bool, reserved int, err error) {
	err = db.InTx(ctx, s.DB, func(tx pgx.Tx) error {
		const qp = `INSERT INTO products (sku, name, price_cents, currency) VALUES ($1, $2, $3, $4)
			ON CONFLICT (sku) DO UPDATE SET name = EXCLUDED.name, price_cents = EXCLUDED.price_cents,
				currency = EXCLUDED.currency, updated_at = now()
			RETURNING (xmax = 0)`
		if err := tx.QueryRow(ctx, qp, p.SKU, p.Name, p.PriceCents, p.Currency).Scan(&created); err != nil {
			return fmt.Errorf("upsert product: %w", err)
		}
		var was int
		err := tx.QueryRow(ctx, `SELECT on_hand, reserved FROM inventory WHERE sku = $1 FOR UPDATE`, p.SKU).Scan(&was, &reserved)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			if _, err := tx.Exec(ctx, `INSERT INTO inventory (sku, on_hand) VALUES ($1, 0)`, p.SKU); err != nil {
				return fmt.Errorf("insert stock: %w", err)
			}
		case err != nil:
			return fmt.Errorf("lock stock: %w", err)
		case onHand < reserved:
			return &ReservedError{OnHand: onHand, Reserved: reserved}
		}
		// Through the warehouses: stock that arrives goes to the default
		// one, stock taken away leaves unallocated stock by priority.
		if delta := onHand - was; delta != 0 {
			if err := adjust(ctx, tx, "", p.SKU, "", "restock", delta, 0); err != nil {
				return fmt.Errorf("set stock of %s: %w", p.SKU, err)
			}
		}
		return nil
	})
	if err != nil {
		return false, 0, err
	}
	return created, reserved, nil
}

// SyntheticStock reads a SKU's available stock and whether its product is
// marked synthetic; found is false when the SKU has no inventory row.
func (s Store) SyntheticStock(ctx context.Context, sku string) (available int, synthetic, found bool, err error) {
	const q = `SELECT i.on_hand - i.reserved, p.synthetic FROM inventory i JOIN products p USING (sku) WHERE i.sku = $1`
	err = s.DB.QueryRow(ctx, q, sku).Scan(&available, &synthetic)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return 0, false, false, nil
	case err != nil:
		return 0, false, false, fmt.Errorf("read inventory of %s: %w", sku, err)
	}
	return available, synthetic, true, nil
}

// Synthetic reports whether a SKU's product is marked synthetic; a SKU
// without a product is an error.
func (s Store) Synthetic(ctx context.Context, sku string) (bool, error) {
	var synthetic bool
	if err := s.DB.QueryRow(ctx, `SELECT synthetic FROM products WHERE sku = $1`, sku).Scan(&synthetic); err != nil {
		return false, fmt.Errorf("read product %s: %w", sku, err)
	}
	return synthetic, nil
}

// RestockSynthetic puts back on the shelf the stock that the synthetic
// customer's confirmed synthetic orders of the last day took, once per order
// and only on SKUs marked synthetic, each with a restock event naming the
// order. It also catches up orders whose deep check gave up before they
// confirmed. It returns the units put back.
func (s Store) RestockSynthetic(ctx context.Context, owner string) (int, error) {
	var n int
	err := db.InTx(ctx, s.DB, func(tx pgx.Tx) error {
		// Gateways restocking at once would both see an order as due.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('orderflow.synthetic_restock'))`); err != nil {
			return fmt.Errorf("lock synthetic restock: %w", err)
		}
		const q = `SELECT r.order_id::text, r.sku, r.quantity
			FROM orders o
			JOIN reservations r ON r.order_id = o.order_id AND r.status = 'committed'
			JOIN products p ON p.sku = r.sku AND p.synthetic
			WHERE o.customer_id = $1 AND o.synthetic AND o.created_at > now() - interval '1 day'
				AND NOT EXISTS (SELECT 1 FROM inventory_events e
					WHERE e.order_id = r.order_id AND e.sku = r.sku AND e.reason = 'restock')
			ORDER BY r.sku, r.order_id`
		rows, err := tx.Query(ctx, q, owner)
		if err != nil {
			return fmt.Errorf("restock synthetic orders: %w", err)
		}
		type due struct {
			OrderID, SKU string
			Quantity     int
		}
		list, err := pgx.CollectRows(rows, pgx.RowToStructByPos[due])
		if err != nil {
			return fmt.Errorf("restock synthetic orders: %w", err)
		}
		for _, d := range list {
			if err := adjust(ctx, tx, d.OrderID, d.SKU, "", "restock", d.Quantity, 0); err != nil {
				return fmt.Errorf("restock synthetic order %s: %w", d.OrderID, err)
			}
			n += d.Quantity
		}
		return nil
	})
	return n, err
}

// Rank is where a search page ends: the last product's rank and SKU, the
// keys the results are ordered by (best first, then by SKU).
type Rank struct {
	Score float32
	SKU   string
}

// Found is one search result: a product with its stock and its rank.
type Found struct {
	Listed
	Score float32
}

// SearchQuery asks for a page of products matching words.
type SearchQuery struct {
	// Words are what to look for, each a run of letters and digits (the
	// caller splits the text at anything else, as migration 0009 splits
	// names and SKUs). Every word must match: as the prefix of a word of
	// the SKU or name, or, stemmed, as a word of the name.
	Words []string
	// Text is the search as typed: a product whose SKU it is, in any case,
	// ranks first.
	Text string
	// After is the previous page's end; nil for the first page.
	After *Rank
	// Limit is the page's size, 1 or more.
	Limit int
}

// SearchPage is a page of results. Next is where the next page starts, nil
// when this one is the last.
type SearchPage struct {
	Products []Found
	Next     *Rank
}

// A match's rank is its tier (Score): the product whose SKU is the search
// text in any case (4), then the products whose SKU has every word as a
// prefix of its words (3), then those whose SKU and name together have them
// (2), then those whose name has them only stemmed (1); within a tier, by
// SKU. No match is ranked by reading every other: the tiers run best first
// until the page is full, each reading its page in SKU order from the
// cursor. A tier's statement first looks at the next searchWindow products
// in SKU order (the primary key) for the page: a word in many names (one in
// 12, or in every SKU) fills it there, reading a few hundred rows at most.
// Only a rarer match, short of a page there, is looked up in a GIN index
// (search, migration 0009; the SKU's words, 0016) and its few matches
// sorted; the planner never has to guess which of the two a word is. Every
// statement reads $1, the SKU after which the page starts in that tier (”
// from its start), and $2, how many rows are still wanted.
const searchWindow = "2000"

// A tier's statement has two matches: its window's, on a product p read in
// SKU order, and its index's, the same match as a GIN index answers it. The
// index's matches (g) are read, only when the window fell short, without
// the cursor: with it, a plan could trade the GIN index for a range of the
// primary key, which is the window's way, not the rare match's.
//
// A tier's statement is searchHead + its window's match + searchMid + its
// index's match + searchTail: constants, like every statement sent.
const (
	searchHead = `WITH w AS MATERIALIZED (
		SELECT p.sku FROM (SELECT sku, search, synthetic FROM products WHERE sku > $1 ORDER BY sku LIMIT ` + searchWindow + `) p
		WHERE NOT p.synthetic AND `
	searchMid = ` ORDER BY p.sku LIMIT $2),
	g AS MATERIALIZED (SELECT p.sku FROM products p WHERE NOT p.synthetic AND `
	searchTail = `),
	m AS (
		SELECT sku FROM w WHERE (SELECT count(*) FROM w) >= $2
		UNION ALL
		(SELECT g.sku FROM g WHERE g.sku > $1 AND (SELECT count(*) FROM w) < $2 ORDER BY g.sku LIMIT $2))
	SELECT p.sku, p.name, p.price_cents, p.currency, i.on_hand, i.reserved, i.on_hand - i.reserved
	FROM m JOIN products p USING (sku) JOIN inventory i USING (sku)
	ORDER BY p.sku LIMIT $2`
)

// The tiers' matches. $3 is the words as prefixes of the SKU's words (the
// 'simple' configuration, weight A in the search column), $4 the words as
// prefixes, $5 the words stemmed ('english'), $6 the search text.
const (
	// skuWords is the SKU split into words as migration 0009 splits it,
	// the expression of the products_sku_words index.
	skuWords = `to_tsvector('simple', regexp_replace(p.sku, '[^[:alnum:]]+', ' ', 'g'))`
	// $3: the search text.
	qSearchExact = `SELECT p.sku, p.name, p.price_cents, p.currency, i.on_hand, i.reserved, i.on_hand - i.reserved
	FROM products p JOIN inventory i USING (sku)
	WHERE p.sku > $1 AND NOT p.synthetic AND lower(p.sku) = lower($3) ORDER BY p.sku LIMIT $2`
)

const (
	// $3: the words as prefixes of the SKU's, $4: as prefixes, $5: the text.
	qSearchSKU = searchHead + `p.search @@ to_tsquery('simple', $3) AND lower(p.sku) <> lower($5)` + searchMid +
		skuWords + ` @@ to_tsquery('simple', $4) AND lower(p.sku) <> lower($5)` + searchTail
	// $3: the words as prefixes of the SKU's, $4: as prefixes.
	qSearchName = searchHead + `p.search @@ to_tsquery('simple', $4) AND NOT p.search @@ to_tsquery('simple', $3)` + searchMid +
		`p.search @@ to_tsquery('simple', $4) AND NOT p.search @@ to_tsquery('simple', $3)` + searchTail
	// $3: the words as prefixes, $4: stemmed.
	qSearchStem = searchHead + `p.search @@ to_tsquery('english', $4) AND NOT p.search @@ to_tsquery('simple', $3)` + searchMid +
		`p.search @@ to_tsquery('english', $4) AND NOT p.search @@ to_tsquery('simple', $3)` + searchTail
)

// searchTier is one rank of matches and the arguments of its statement
// after the cursor's SKU and the row count.
type searchTier struct {
	score float32
	// query runs the tier's statement (constant text, like every one).
	query func(ctx context.Context, db *pgxpool.Pool, args ...any) (pgx.Rows, error)
	args  func(skuPrefixes, prefixes, stems, text string) []any
}

var searchTiers = []searchTier{
	{4, func(ctx context.Context, db *pgxpool.Pool, args ...any) (pgx.Rows, error) {
		return db.Query(ctx, qSearchExact, args...)
	}, func(_, _, _, text string) []any { return []any{text} }},
	{3, func(ctx context.Context, db *pgxpool.Pool, args ...any) (pgx.Rows, error) {
		return db.Query(ctx, qSearchSKU, args...)
	}, func(sku, pre, _, text string) []any { return []any{sku, pre, text} }},
	{2, func(ctx context.Context, db *pgxpool.Pool, args ...any) (pgx.Rows, error) {
		return db.Query(ctx, qSearchName, args...)
	}, func(sku, pre, _, _ string) []any { return []any{sku, pre} }},
	{1, func(ctx context.Context, db *pgxpool.Pool, args ...any) (pgx.Rows, error) {
		return db.Query(ctx, qSearchStem, args...)
	}, func(_, pre, stem, _ string) []any { return []any{pre, stem} }},
}

// Search finds products whose SKU or name has every word, best first (see
// searchTiers), a page at a time. No words finds nothing.
func (s Store) Search(ctx context.Context, q SearchQuery) (SearchPage, error) {
	if q.Limit < 1 {
		return SearchPage{}, fmt.Errorf("search products: limit %d", q.Limit)
	}
	if len(q.Words) == 0 {
		return SearchPage{}, nil
	}
	skuPrefixes, prefixes, stems := make([]string, len(q.Words)), make([]string, len(q.Words)), make([]string, len(q.Words))
	for i, w := range q.Words {
		// A word of letters and digits only needs no quoting in a tsquery;
		// anything else is refused rather than risk its syntax.
		if !searchWord(w) {
			return SearchPage{}, fmt.Errorf("search products: %q is not a word of letters and digits", w)
		}
		skuPrefixes[i], prefixes[i], stems[i] = w+":*A", w+":*", w
	}
	after := Rank{Score: float32(math.Inf(1))}
	if q.After != nil {
		after = *q.After
	}
	sku, pre, stem := strings.Join(skuPrefixes, " & "), strings.Join(prefixes, " & "), strings.Join(stems, " & ")
	// One row past the page says whether another follows.
	var list []Found
	for _, t := range searchTiers {
		if t.score > after.Score || len(list) > q.Limit {
			continue
		}
		from := ""
		if t.score == after.Score {
			from = after.SKU
		}
		// Planned for these arguments each time (an unnamed statement),
		// never from a cached generic plan: a generic plan cannot fold
		// the tsqueries into constants (it runs to_tsquery on every row
		// read) nor see that '' starts at the first SKU.
		args := append([]any{pgx.QueryExecModeExec, from, q.Limit + 1 - len(list)}, t.args(sku, pre, stem, q.Text)...)
		rows, err := t.query(ctx, s.DB, args...)
		if err != nil {
			return SearchPage{}, fmt.Errorf("search products: %w", err)
		}
		found, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Found, error) {
			f := Found{Score: t.score}
			err := row.Scan(&f.SKU, &f.Name, &f.PriceCents, &f.Currency, &f.OnHand, &f.Reserved, &f.Available)
			return f, err
		})
		if err != nil {
			return SearchPage{}, fmt.Errorf("search products: %w", err)
		}
		list = append(list, found...)
	}
	var page SearchPage
	var last *Found
	if page.Products, last = activities.Page(list, q.Limit); last != nil {
		page.Next = &Rank{Score: last.Score, SKU: last.SKU}
	}
	return page, nil
}

// searchWord reports whether w is a non-empty run of letters and digits.
func searchWord(w string) bool {
	return w != "" && strings.IndexFunc(w, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) < 0
}
