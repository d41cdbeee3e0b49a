package testkit

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Plan is PostgreSQL's plan for sql with args, with sequential scans and
// each planner method in off ("indexscan", "bitmapscan"...) turned off for
// the statement's transaction alone: what it reads then shows whether an
// index can answer the statement, whatever the few rows of a test database.
func Plan(t *testing.T, pool *pgxpool.Pool, sql string, args []any, off ...string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	for _, method := range append([]string{"seqscan"}, off...) {
		if _, err := tx.Exec(ctx, "SET LOCAL enable_"+method+" = off"); err != nil {
			t.Fatalf("turn %s off: %v", method, err)
		}
	}
	rows, err := tx.Query(ctx, "EXPLAIN "+sql, args...)
	if err != nil {
		t.Fatalf("explain: %v", err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}
