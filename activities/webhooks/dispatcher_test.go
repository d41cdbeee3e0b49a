package webhooks_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	hooks "github.com/orderflow/orderflow/activities/webhooks"
	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/db"
)

// slowTemporal answers every Signal-With-Start after delay, as a Temporal
// server under load does.
type slowTemporal struct {
	client.Client
	delay time.Duration
}

func (s slowTemporal) SignalWithStartWorkflow(ctx context.Context, id, signal string, arg any, opts client.StartWorkflowOptions,
	wf any, args ...any) (client.WorkflowRun, error) {
	time.Sleep(s.delay)
	return s.Client.SignalWithStartWorkflow(ctx, id, signal, arg, opts, wf, args...)
}

// A round whose signals take longer in all than a database statement may
// (db.StatementTimeout) still hands its events over and marks them: the
// scope's lock is held for the round, not a transaction bounded like a
// statement (which never committed such a round, so the same batch was
// signalled again round after round while its events waited).
func TestADispatchRoundSlowerThanAStatementStillMarksItsEvents(t *testing.T) {
	pool, tc := testkit.DB(t), testkit.Temporal(t)
	ctx := context.Background()
	region := "whd-" + uuid.NewString()[:8]
	store := hooks.Store{DB: pool}
	ep, _, err := store.Create(ctx, "http://127.0.0.1:9/hook", "slow dispatch", []string{"order.created"})
	require.NoError(t, err)
	const events = 40
	delay := db.StatementTimeout*3/2/events + time.Millisecond // all of them: 1.5 statement timeouts
	orders := make([]string, events)
	for i := range orders {
		orders[i] = uuid.NewString()
		_, err := pool.Exec(ctx, `INSERT INTO event_outbox (type, key, partition, region, payload) VALUES ('order.created', $1, $2, $3, '{}')`,
			"created:"+orders[i], orders[i], region)
		require.NoError(t, err)
	}
	t.Cleanup(func() {
		for _, o := range orders {
			_ = tc.TerminateWorkflow(context.Background(), hooks.DeliveryWorkflowID(ep.ID, o), "", "test over")
		}
		_ = store.Delete(context.Background(), ep.ID)
	})
	require.Less(t, events*delay, hooks.RoundBudget, "the round's signals fit its budget")

	d := &hooks.Dispatcher{DB: pool, Temporal: slowTemporal{Client: tc, delay: delay},
		Region: region, Policy: hooks.Policy{TaskQueue: hooks.TaskQueue(region)}}
	n, err := d.Round(ctx, 200)
	require.NoError(t, err)
	assert.Equal(t, events, n, "every event handed over in one round")
	var pending int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM event_outbox WHERE region = $1 AND webhooks_at IS NULL`, region).Scan(&pending))
	assert.Zero(t, pending, "every event marked")
	for _, o := range orders {
		_, err := tc.DescribeWorkflow(ctx, hooks.DeliveryWorkflowID(ep.ID, o), "")
		assert.NoError(t, err, fmt.Sprintf("the delivery workflow of %s was signalled", o))
	}
}
