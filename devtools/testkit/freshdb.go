package testkit

import (
	"context"
	"net/url"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderflow/orderflow/devtools/lab"
	"github.com/orderflow/orderflow/internal/db"
	"github.com/orderflow/orderflow/schema"
)

// FreshDB returns a pool on a database of the test's own beside the test
// database (its name with _suffix), created empty and migrated: for a test
// that reads whole tables, which other packages' tests write to at the same
// time in the shared test database.
func FreshDB(t testing.TB, suffix string) *pgxpool.Pool {
	t.Helper()
	u, err := url.Parse(Require(t, EnvDatabase))
	if err != nil {
		t.Fatalf("test database URL: %v", err)
	}
	u.Path += "_" + suffix
	ctx := context.Background()
	if err := (lab.Postgres{URL: u.String()}).RecreateDatabase(ctx); err != nil {
		t.Fatalf("create database %s: %v", u.Path, err)
	}
	pool, err := db.Open(ctx, u.String())
	if err != nil {
		t.Fatalf("open %s: %v", u.Path, err)
	}
	t.Cleanup(pool.Close)
	if err := schema.Migrate(ctx, pool); err != nil {
		t.Fatalf("migrate %s: %v", u.Path, err)
	}
	return pool
}
