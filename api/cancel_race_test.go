package api

import (
	"context"
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/devtools/testkit"
)

// updateTimesOut is a Temporal client whose cancel update never gets an
// answer within its deadline, as when the saga ends while the update waits.
type updateTimesOut struct{ client.Client }

func (updateTimesOut) UpdateWorkflow(context.Context, client.UpdateWorkflowOptions) (client.WorkflowUpdateHandle, error) {
	return nil, serviceerror.NewDeadlineExceeded("context deadline exceeded")
}

// The chaos run saw a cancel's update race the saga's end: the update timed
// out and the gateway asked for a retry (503) although the order had ended
// and the answer was already known. An update that timed out now answers
// from the order record when the order has ended (409 too_late_to_cancel
// for a confirmed one), and asks for a retry only while it is still running.
func TestCancelWhoseUpdateTimedOutAnswersFromTheRecordOnceTheOrderEnded(t *testing.T) {
	g := newGateway(t, testkit.Redis(t), func(s *Server) { s.Temporal = updateTimesOut{Client: s.Temporal} })
	order := func(status string) string {
		id := uuid.NewString()
		_, err := g.pool.Exec(context.Background(), `INSERT INTO orders (order_id, customer_id, region, status, total_cents, currency)
			VALUES ($1, 'c-race', 'test', $2, 100, 'USD')`, id, status)
		require.NoError(t, err)
		return id
	}

	a := g.do(http.MethodPost, "/v1/orders/"+order(orderflow.StatusConfirmed)+"/cancel", nil, nil)
	assert.Equal(t, http.StatusConflict, a.status, "%s", a.body)
	assert.Equal(t, "too_late_to_cancel", a.errorCode(t))

	a = g.do(http.MethodPost, "/v1/orders/"+order(orderflow.StatusPending)+"/cancel", nil, nil)
	assert.Equal(t, http.StatusServiceUnavailable, a.status, "%s", a.body)
	assert.Equal(t, "service_unavailable", a.errorCode(t))
	assert.NotEmpty(t, a.header.Get("Retry-After"))
}
