package audit_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow/activities/audit"
	"github.com/orderflow/orderflow/devtools/testkit"
)

// Appends from many transactions at once still form one chain: each row
// links to the row committed before it.
func TestConcurrentAppendsKeepOneUnbrokenChain(t *testing.T) {
	store := audit.Store{DB: testkit.DB(t)}
	ctx := context.Background()
	const writers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				_, err := store.Append(ctx, audit.Entry{Actor: fmt.Sprintf("ops-%d", w), Role: "operator", Action: "test.append",
					Target: fmt.Sprintf("test:%d-%d", w, i), Details: []byte(`{"b": 2, "a": [1, 2]}`)})
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	r, err := store.Verify(ctx)
	require.NoError(t, err)
	assert.Nil(t, r.Broken, "the chain is broken: %+v", r.Broken)
	assert.GreaterOrEqual(t, r.Rows, int64(writers*each))
}

// The application's role may append and read, never change or remove.
func TestTheApplicationMayNotChangeTheAuditLog(t *testing.T) {
	pool := testkit.DB(t)
	ctx := context.Background()
	e, err := audit.Store{DB: pool}.Append(ctx, audit.Entry{Actor: "ops", Role: "operator", Action: "test.append", Target: "test:refused"})
	require.NoError(t, err)
	for _, stmt := range []string{
		`UPDATE audit_log SET reason = 'edited' WHERE id = $1`,
		`DELETE FROM audit_log WHERE id = $1`,
	} {
		_, err := pool.Exec(ctx, stmt, e.ID)
		var pgErr *pgconn.PgError
		require.True(t, errors.As(err, &pgErr), "%s: %v", stmt, err)
		assert.Equal(t, "42501", pgErr.Code, "%s: permission denied", stmt)
	}
	_, err = pool.Exec(ctx, `TRUNCATE audit_log`)
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr), "TRUNCATE: %v", err)
	assert.Equal(t, "42501", pgErr.Code)
}
