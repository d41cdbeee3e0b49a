package testkit

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap/zaptest"

	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/activities/payment/paysim"
	paysimsrv "github.com/orderflow/orderflow/devtools/paysim"
	"github.com/orderflow/orderflow/internal/config"
)

// Breaker is the design's provider breaker: the declared defaults of the
// PAYMENT_BREAKER_* settings.
func Breaker() payment.BreakerSettings {
	return payment.BreakerSettings{Window: config.PaymentBreakerWindow.Default(), FailureRatio: config.PaymentBreakerFailureRatio.Default(),
		MinRequests: uint32(config.PaymentBreakerMinRequests.Default()), OpenTimeout: config.PaymentBreakerOpenTimeout.Default(),
		HalfOpenSuccesses: uint32(config.PaymentBreakerHalfOpenSuccesses.Default())}
}

// EnvStripeMock is the URL of the stripe-mock server scripts/test.sh starts.
const EnvStripeMock = "ORDERFLOW_TEST_STRIPE_MOCK_URL"

// StripeMock returns the URL of the test suite's stripe-mock, skipping the
// test outside `make test` and failing it in CI.
func StripeMock(t testing.TB) string {
	t.Helper()
	return Require(t, EnvStripeMock)
}

// PaysimTimeout bounds each call of the clients Paysim returns.
const PaysimTimeout = 10 * time.Second

// Paysim starts the simulated provider instance name on a loopback TCP port,
// its ledger in pool and no faults, and returns it with a Client of it. Both
// stop when the test ends.
func Paysim(t testing.TB, pool *pgxpool.Pool, name string) (*paysimsrv.Server, *paysim.Client) {
	t.Helper()
	if err := paysimsrv.Migrate(context.Background(), pool); err != nil {
		t.Fatalf("paysim schema: %v", err)
	}
	srv, err := paysimsrv.NewServer(pool, name, paysimsrv.Faults{}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("paysim server: %v", err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	t.Cleanup(srv.Close) // runs first: drops held requests so hs.Close does not wait for them
	return srv, paysim.NewClient(name, hs.URL, PaysimTimeout)
}
