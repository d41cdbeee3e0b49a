package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/orderflow/orderflow/activities/audit"
	"github.com/orderflow/orderflow/internal/db"
)

// errAuditBroken makes `orderflow audit verify` exit non-zero.
var errAuditBroken = errors.New("audit log: the hash chain is broken")

// openDatabase opens the database an operator tool reads, from
// DATABASE_URL as migrate reads it.
func openDatabase(ctx context.Context, lookup env) (*pgxpool.Pool, error) {
	cfg, v := loadMigrate(lookup)
	if err := v.Err(); err != nil {
		return nil, err
	}
	return db.Open(ctx, cfg.DatabaseURL)
}

// runAudit is `orderflow audit verify`: it reads the whole audit log in id
// order, checks every row's hash and its link to the row before, and prints
// either the number of rows and the chain's head (the last row's hash, to
// write down: cutting rows off the end leaves a shorter chain that still
// verifies, which a recorded head exposes) or the first broken link, and
// then fails. It reads DATABASE_URL as migrate does.
func runAudit(ctx context.Context, out io.Writer, lookup env, args []string) error {
	if len(args) != 1 || args[0] != "verify" {
		return fmt.Errorf("usage: orderflow audit verify")
	}
	pool, err := openDatabase(ctx, lookup)
	if err != nil {
		return err
	}
	defer pool.Close()
	r, err := audit.Store{DB: pool}.Verify(ctx)
	if err != nil {
		return err
	}
	if r.Broken != nil {
		fmt.Fprintf(out, "audit log BROKEN at row %d (%d rows read, the %d before it intact): %s\n",
			r.Broken.ID, r.Rows, r.Rows-1, r.Broken.Reason)
		return errAuditBroken
	}
	_, err = fmt.Fprintf(out, "audit log intact: %d rows, last row %d, head %x\n", r.Rows, r.LastID, r.Head)
	return err
}
