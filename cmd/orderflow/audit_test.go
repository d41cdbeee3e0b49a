package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderflow/orderflow/activities/audit"
	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/schema"
)

// The audit log on its own PostgreSQL, as in production: the application's
// role owns its database and migrated it, yet may not change a row of the
// audit log; a superuser who edits one anyway (triggers off) is caught by
// `orderflow audit verify`, which names the edited row and fails.
func TestAuditLogRefusesTheAppsUpdateAndVerifyFindsASuperusersTampering(t *testing.T) {
	pg := testkit.PostgresServer(t)
	ctx := context.Background()
	super := connect(t, pg.URL)
	for _, stmt := range []string{
		`CREATE ROLE app LOGIN PASSWORD 'app'`,
		`CREATE DATABASE appdb OWNER app`,
	} {
		if _, err := super.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	u, _ := url.Parse(pg.URL)
	u.User, u.Path = url.UserPassword("app", "app"), "/appdb"
	appURL := u.String()
	app := connect(t, appURL)
	if err := schema.Migrate(ctx, app); err != nil {
		t.Fatal(err)
	}
	store := audit.Store{DB: app}
	for i := range 5 {
		if _, err := store.Append(ctx, audit.Entry{Actor: "ops-1", Role: "operator", Action: "product.put",
			Target: fmt.Sprintf("product:SKU-%d", i), Reason: "restock", RequestID: fmt.Sprintf("req-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	lookup := func(k string) (string, bool) {
		if k == "DATABASE_URL" {
			return appURL, true
		}
		return "", false
	}
	if err := runAudit(ctx, &out, lookup, []string{"verify"}); err != nil {
		t.Fatalf("verify of an untouched log: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "intact: 5 rows") {
		t.Fatalf("verify said %q, want 5 intact rows", out.String())
	}

	for _, stmt := range []string{
		`UPDATE audit_log SET reason = 'nothing to see' WHERE target = 'product:SKU-2'`,
		`DELETE FROM audit_log WHERE target = 'product:SKU-2'`,
		`TRUNCATE audit_log`,
	} {
		_, err := app.Exec(ctx, stmt)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			t.Fatalf("the application's %s: got %v, want permission denied (42501)", strings.Fields(stmt)[0], err)
		}
	}

	// A superuser gets past the privileges and, with triggers off, past
	// the trigger too.
	supdb := connect(t, strings.Replace(pg.URL, "/postgres?", "/appdb?", 1))
	var id int64
	if err := supdb.QueryRow(ctx, `SELECT id FROM audit_log WHERE target = 'product:SKU-2'`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	conn, err := supdb.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SET session_replication_role = replica`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `UPDATE audit_log SET reason = 'nothing to see' WHERE id = $1`, id); err != nil {
		t.Fatalf("superuser tampering: %v", err)
	}
	out.Reset()
	err = runAudit(ctx, &out, lookup, []string{"verify"})
	if !errors.Is(err, errAuditBroken) {
		t.Fatalf("verify of a tampered log: %v, want errAuditBroken\n%s", err, out.String())
	}
	if want := fmt.Sprintf("BROKEN at row %d ", id); !strings.Contains(out.String(), want) {
		t.Fatalf("verify said %q, want it to name row %d", out.String(), id)
	}
}

func connect(t *testing.T, u string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}
