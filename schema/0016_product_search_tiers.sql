-- +goose Up
-- Product search ranks a match by tier (activities/catalog, Search): the
-- product whose SKU is the search text, then products whose SKU has every
-- word, then those whose SKU and name have them, then those whose name has
-- them stemmed; within a tier, by SKU. Each tier's page is read in SKU
-- order and stops at the page's end, so a word in every product costs a
-- page, not a ranking of every match (ts_rank over 100,000 rows was 364 ms).
-- These two indexes answer the first two tiers without reading the matches
-- of the others: the SKU in any case, and the SKU's words as migration 0009
-- splits them (the GIN index of 0009 cannot tell a SKU's word from a name's:
-- weights are not in it).
CREATE INDEX IF NOT EXISTS products_sku_lower ON products (lower(sku));
CREATE INDEX IF NOT EXISTS products_sku_words ON products
    USING gin (to_tsvector('simple', regexp_replace(sku, '[^[:alnum:]]+', ' ', 'g')));

-- +goose Down
DROP INDEX IF EXISTS products_sku_words;
DROP INDEX IF EXISTS products_sku_lower;
