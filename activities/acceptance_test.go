package activities_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow/activities/orders"
	"github.com/orderflow/orderflow/devtools/testkit"
)

// On a single node (no synchronous standby) an acceptance record committed
// at remote_apply commits as before, a replay too, and the record keeps the
// saga's sealed start, which only the same order's id opens.
func TestAcceptanceRecordCommitsAsBeforeWithoutAStandbyAndKeepsTheSealedStart(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	keys := testkit.PII(t)
	for _, level := range []string{"remote_apply", "on", ""} {
		t.Run("at "+level, func(t *testing.T) {
			store := orders.Store{DB: f.pool, AcceptCommit: level}
			id, customer := uuid.NewString(), "c-"+uuid.NewString()[:8]
			sealed, err := orders.SealStart(keys, id, map[string]string{"email": "s@example.com"})
			require.NoError(t, err)
			before := time.Now().Add(-time.Second)
			a := orders.Acceptance{OrderID: id, RequestHash: []byte("h"), Status: 202, Body: []byte(`{}`), Saga: sealed}
			claimed, err := store.ClaimKey(ctx, customer, "create_order", "k", a, time.Hour)
			require.NoError(t, err)
			assert.True(t, claimed)
			claimed, err = store.ClaimKey(ctx, customer, "create_order", "k", a, time.Hour)
			require.NoError(t, err)
			assert.False(t, claimed, "a replay confirms the record, claims nothing")

			all, err := store.AcceptedSince(ctx, before)
			require.NoError(t, err)
			var got *orders.Accepted
			for i := range all {
				if all[i].OrderID == id {
					got = &all[i]
				}
			}
			require.NotNil(t, got, "the record is listed for a re-drive")
			assert.Equal(t, customer, got.CustomerID)
			var start map[string]string
			require.NoError(t, orders.OpenStart(keys, id, got.Saga, &start))
			assert.Equal(t, "s@example.com", start["email"])
			assert.Error(t, orders.OpenStart(keys, uuid.NewString(), got.Saga, &start))
		})
	}
}
