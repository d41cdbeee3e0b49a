-- +goose Up
-- Product search (GET /v1/products?q=): PostgreSQL full-text search over the
-- SKU and the name, in a generated column the catalog's writes keep current,
-- with a GIN index. The SKU weighs most (A); the name counts once as written
-- ('simple': prefixes of any word, in any language) and once stemmed
-- ('english': "boots" finds "boot"). Punctuation is read as a space before
-- either is parsed, as the gateway splits the query, so "SKU-00123" is the
-- words sku and 00123 (the parser alone would read -00123 as a number) and
-- a search for "00123" finds it. Full-text search needs no extension:
-- pg_trgm would add fuzzy matching but needs CREATE on the database, which
-- the application's role may not have where PostgreSQL is managed.
ALTER TABLE products ADD COLUMN search tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('simple', regexp_replace(sku, '[^[:alnum:]]+', ' ', 'g')), 'A')
    || setweight(to_tsvector('simple', regexp_replace(name, '[^[:alnum:]]+', ' ', 'g')), 'B')
    || setweight(to_tsvector('english', regexp_replace(name, '[^[:alnum:]]+', ' ', 'g')), 'C')) STORED;
CREATE INDEX IF NOT EXISTS products_search ON products USING gin (search);

-- +goose Down
DROP INDEX IF EXISTS products_search;
ALTER TABLE products DROP COLUMN search;
