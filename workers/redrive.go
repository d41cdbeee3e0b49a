package workers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/orderflow/orderflow/activities/orders"
	"github.com/orderflow/orderflow/internal/pii"
	"github.com/orderflow/orderflow/workflows/order"
)

// RedriveReport is what a re-drive found and did.
type RedriveReport struct {
	Namespace string    `json:"namespace"`
	Since     time.Time `json:"since"`
	// Examined is the number of acceptance records since Since.
	Examined int `json:"examined"`
	// Present counts the orders whose saga the namespace has, running or
	// ended: left alone.
	Present int `json:"present"`
	// Started lists the orders whose saga was missing and is now started.
	Started []string `json:"started"`
	// Failed lists the orders whose saga could be neither found nor
	// started (a run later retries them).
	Failed []string `json:"failed,omitempty"`
}

// Redrive starts the saga of every order accepted since since whose saga
// the namespace of c does not have: after a failover, a saga accepted just
// before the region's loss may not have replicated (Temporal replicates
// histories asynchronously; the acceptance record is synchronous,
// docs/regions.md). The saga is started as the gateway started it (the
// sealed start in its acceptance record, the same workflow id and options),
// and its steps are idempotent by order id, so one that had run some steps
// before the loss charges nothing twice. Sagas that exist are left alone, so
// a second run starts nothing. It fails, after trying every record, when
// some could not be handled; the report says which.
func Redrive(ctx context.Context, c client.Client, namespace string, store orders.Store, keys *pii.Keyring, since time.Time,
	log *zap.Logger) (RedriveReport, error) {
	rep := RedriveReport{Namespace: namespace, Since: since, Started: []string{}}
	accepted, err := store.AcceptedSince(ctx, since)
	if err != nil {
		return rep, err
	}
	rep.Examined = len(accepted)
	for _, a := range accepted {
		started, err := redriveOne(ctx, c, keys, a)
		switch {
		case err != nil:
			log.Warn("re-drive order", zap.String("order_id", a.OrderID), zap.Error(err))
			rep.Failed = append(rep.Failed, a.OrderID)
		case started:
			log.Info("re-drove order: its saga had not replicated", zap.String("order_id", a.OrderID))
			rep.Started = append(rep.Started, a.OrderID)
		default:
			rep.Present++
		}
	}
	if len(rep.Failed) > 0 {
		return rep, fmt.Errorf("re-drive: %d of %d orders could not be checked or started", len(rep.Failed), rep.Examined)
	}
	return rep, nil
}

// redriveOne starts a's saga unless it exists, reporting whether it did.
func redriveOne(ctx context.Context, c client.Client, keys *pii.Keyring, a orders.Accepted) (bool, error) {
	_, err := c.DescribeWorkflow(ctx, order.WorkflowID(a.OrderID), "")
	var notFound *serviceerror.NotFound
	if err == nil || !errors.As(err, &notFound) {
		return false, err
	}
	ended, err := order.StartAccepted(ctx, c, keys, a, "Order "+a.OrderID+" — re-driven after a region failover")
	if err != nil {
		return false, err
	}
	return !ended, nil // ended: started and finished meanwhile (the gateway, on a retry)
}
