package order_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/orderflow/orderflow/internal/telemetry"
	"github.com/orderflow/orderflow/workflows/order"
)

// The exporter gives the saga's duration histogram buckets up to an hour by
// its name; a rename on either side would leave it with the API's buckets.
func TestSagaDurationIsTheHistogramTelemetryGivesSagaBuckets(t *testing.T) {
	assert.Equal(t, telemetry.SagaDuration, order.MetricSagaDuration)
}
