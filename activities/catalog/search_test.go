package catalog_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow/activities/catalog"
	"github.com/orderflow/orderflow/devtools/testkit"
)

// searchAll reads every page of a search of limit products each.
func searchAll(t *testing.T, store catalog.Store, q catalog.SearchQuery) []string {
	t.Helper()
	var skus []string
	for range 100 {
		page, err := store.Search(context.Background(), q)
		require.NoError(t, err)
		require.LessOrEqual(t, len(page.Products), q.Limit)
		for i, p := range page.Products {
			skus = append(skus, p.SKU)
			if i > 0 {
				prev := page.Products[i-1]
				require.True(t, prev.Score > p.Score || (prev.Score == p.Score && prev.SKU < p.SKU), "best first, then by SKU")
			}
		}
		if page.Next == nil {
			return skus
		}
		q.After = page.Next
	}
	t.Fatal("more than 100 pages")
	return nil
}

func putProducts(t *testing.T, pool *pgxpool.Pool, names map[string]string) {
	t.Helper()
	store := catalog.Store{DB: pool}
	for sku, name := range names {
		_, _, err := store.Put(context.Background(), catalog.Product{SKU: sku, Name: name, PriceCents: 100, Currency: "USD"}, 3)
		require.NoError(t, err)
	}
}

func TestSearchMatchesEveryWordRanksAndPages(t *testing.T) {
	pool := testkit.DB(t)
	store := catalog.Store{DB: pool}
	tag := "t" + strings.ReplaceAll(uuid.NewString()[:13], "-", "")
	putProducts(t, pool, map[string]string{
		"A-" + tag: "Waterproof " + tag + " Hiking Boots",
		"B-" + tag: "Leather " + tag + " boot polish",
		"C-" + tag: "Hiking " + tag + " socks",
		"D-" + tag: tag + " sock drawer",
		tag:        "Plain " + tag + " item",
	})
	_, err := pool.Exec(context.Background(), `UPDATE products SET synthetic = true WHERE sku = $1`, "D-"+tag)
	require.NoError(t, err)

	find := func(text string) []string {
		words := strings.Fields(strings.ToLower(text))
		got := searchAll(t, store, catalog.SearchQuery{Words: words, Text: text, Limit: 2})
		slices.Sort(got)
		return got
	}
	assert.Equal(t, []string{"A-" + tag, "C-" + tag}, find(tag+" hiking"))
	assert.Equal(t, []string{"A-" + tag, "B-" + tag}, find(tag+" boot"), "a prefix finds boots and boot")
	assert.Equal(t, []string{"A-" + tag, "B-" + tag}, find(tag+" boots"), "the stem finds boot from boots")
	assert.Equal(t, []string{"C-" + tag}, find(tag+" sock"), "a synthetic product is never found")
	assert.Empty(t, find(tag+" sandals"))

	// The SKU's words weigh more than the name's, and the SKU itself most.
	all := searchAll(t, store, catalog.SearchQuery{Words: []string{tag}, Text: tag, Limit: 1})
	require.Len(t, all, 4)
	assert.Equal(t, tag, all[0])
	byDefault := searchAll(t, store, catalog.SearchQuery{Words: []string{tag}, Text: tag, Limit: 100})
	assert.Equal(t, all, byDefault, "pages of one read as one page")

	page, err := store.Search(context.Background(), catalog.SearchQuery{Limit: 5})
	require.NoError(t, err)
	assert.Empty(t, page.Products, "no words find nothing")
	_, err = store.Search(context.Background(), catalog.SearchQuery{Words: []string{"a:*|b"}, Limit: 5})
	assert.Error(t, err, "tsquery syntax is refused, not run")
	_, err = store.Search(context.Background(), catalog.SearchQuery{Words: []string{tag}})
	assert.Error(t, err)
}

func TestSearchFindsItsMatchesThroughTheGINIndexes(t *testing.T) {
	pool := testkit.DB(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name, q, index string
		args           []any
	}{
		{"the SKU's words", catalog.QSearchSKU, "products_sku_words", []any{"", 21, "boot:*A", "boot:*", "boot"}},
		{"the SKU's and name's words", catalog.QSearchName, "products_search", []any{"", 21, "boot:*A", "boot:*"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := pool.Acquire(ctx)
			require.NoError(t, err)
			defer conn.Release()
			tx, err := conn.Begin(ctx)
			require.NoError(t, err)
			defer func() { _ = tx.Rollback(ctx) }()
			// With sequential and plain index scans off, a bitmap scan
			// remains: only on an index the match can use (the primary
			// key's has no condition to offer), whatever the few rows of
			// the test database.
			_, err = tx.Exec(ctx, `SET LOCAL enable_seqscan = off`)
			require.NoError(t, err)
			_, err = tx.Exec(ctx, `SET LOCAL enable_indexscan = off`)
			require.NoError(t, err)
			rows, err := tx.Query(ctx, "EXPLAIN "+tc.q, tc.args...)
			require.NoError(t, err)
			var plan []string
			for rows.Next() {
				var l string
				require.NoError(t, rows.Scan(&l))
				plan = append(plan, l)
			}
			require.NoError(t, rows.Err())
			assert.Contains(t, strings.Join(plan, "\n"), "Bitmap Index Scan on "+tc.index, strings.Join(plan, "\n"))
		})
	}
}

func TestSearchRanksTheSKUThenItsWordsThenTheNameThenStems(t *testing.T) {
	pool := testkit.DB(t)
	store := catalog.Store{DB: pool}
	tag := "r" + strings.ReplaceAll(uuid.NewString()[:13], "-", "")
	// The name-only matches sort before the SKU matches by SKU, so only
	// the ranking puts the SKU's first.
	putProducts(t, pool, map[string]string{
		"Z-" + tag + "-BOOTS": "Plain item",
		"Z-" + tag:            "Waterproof boots",
		"A-" + tag + "-1":     tag + " boots",
		"A-" + tag + "-2":     tag + " boot",
		"A-" + tag + "-3":     tag + " bootees",
		"A-" + tag + "-4":     tag + " booting",
	})
	text := tag + " boots"
	got := searchAll(t, store, catalog.SearchQuery{Words: []string{tag, "boots"}, Text: text, Limit: 2})
	// Z-..-BOOTS has every word in its SKU; A-..-1 and Z-.. have them in
	// SKU and name together (by SKU within the tier); A-..-2 (boot) and
	// A-..-4 (booting) only stemmed; bootees has "boots" neither way.
	assert.Equal(t, []string{"Z-" + tag + "-BOOTS", "A-" + tag + "-1", "Z-" + tag, "A-" + tag + "-2", "A-" + tag + "-4"}, got)
	got = searchAll(t, store, catalog.SearchQuery{Words: []string{"z", tag}, Text: "z-" + tag, Limit: 1})
	assert.Equal(t, []string{"Z-" + tag, "Z-" + tag + "-BOOTS"}, got, "the SKU itself, in any case, before the SKUs with its words")
}
