package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/orderflow/orderflow"
	"github.com/orderflow/orderflow/activities/payment"
	"github.com/orderflow/orderflow/api"
	"github.com/orderflow/orderflow/devtools/testkit"
	"github.com/orderflow/orderflow/internal/pii"
	"github.com/orderflow/orderflow/workflows/order"
)

// Variables scripts/test.sh sets for the browser test.
const (
	// EnvTemporalUI is the test Temporal server's Web UI, e.g. http://127.0.0.1:8243.
	EnvTemporalUI = "ORDERFLOW_TEST_TEMPORAL_UI_URL"
	// EnvOutput is the directory the suite's artifacts go to (.data/test-run).
	EnvOutput = "ORDERFLOW_TEST_OUTPUT_DIR"
	// EnvChromium is the browser the UI test drives; /usr/bin/chromium by default.
	EnvChromium = "ORDERFLOW_TEST_CHROMIUM"
)

// TestWebUI_FindsAConfirmedOrderByOrderStatus places an order through the
// API, waits until it is CONFIRMED and then, in headless chromium, signs in
// at the gateway's codec server with an operator's token and points the Web
// UI's codec setting at it (the saga's payloads are sealed), filters the
// workflow list by OrderStatus="CONFIRMED", finds the order's saga there,
// opens it and checks that its summary names the order, its current details
// say CONFIRMED in words and its Search Attributes tab shows all four of the
// saga's attributes (e2e/ui/find-order.js). Summary and details are sealed
// payloads: the UI shows them only decoded by the codec server. The
// screenshot of the saga's page goes to <output>/ui/confirmed-order.png. The
// same search for FAILED orders must come back without it.
func TestWebUI_FindsAConfirmedOrderByOrderStatus(t *testing.T) {
	uiURL := testkit.Require(t, EnvTemporalUI)
	s := newStack(t, true, func(srv *api.Server) {
		srv.Codec = pii.NewCodec(testkit.PII(t))
		srv.CodecOrigins = []string{strings.TrimRight(uiURL, "/")}
	})
	sku := testkit.Product(t, s.pool, 1234, 10)
	cust := customer()
	id := s.placeOK(newOrder(cust, payment.TokenVisa, api.OrderItem{SKU: sku, Quantity: 2}))
	o := s.waitTerminal(id)
	require.Equal(t, orderflow.StatusConfirmed, o.Status, "the order must be confirmed before the UI is asked for it")

	out := os.Getenv(EnvOutput)
	if out == "" {
		out = filepath.Join("..", ".data", "test-run")
	}
	shot, err := filepath.Abs(filepath.Join(out, "ui", "confirmed-order.png"))
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Dir(shot), 0o755))
	_ = os.Remove(shot) // a screenshot left by an earlier run proves nothing
	chromium := os.Getenv(EnvChromium)
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}

	attrs, err := json.Marshal(map[string]any{"OrderStatus": orderflow.StatusConfirmed, "CustomerId": cust, "Region": s.region, "OrderTotalCents": 2 * 1234})
	require.NoError(t, err)
	run := func(query, wantStatus, timeout, shot string) ([]byte, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		start := time.Now()
		cmd := exec.CommandContext(ctx, "node", "find-order.js")
		cmd.Dir = "ui"
		cmd.Env = append(os.Environ(),
			"UI_URL="+uiURL, "NAMESPACE=default", "CHROMIUM="+chromium, "SCREENSHOT="+shot, "UI_TIMEOUT_MS="+timeout,
			"ORDER_ID="+id, "WORKFLOW_ID="+order.WorkflowID(id), "QUERY="+query, "WANT_STATUS="+wantStatus, "WANT_ATTRS="+string(attrs),
			"CODEC_URL="+s.url+"/codec", "CODEC_TOKEN="+strings.TrimPrefix(s.tok.Operator(), "Bearer "))
		b, err := cmd.CombinedOutput()
		t.Logf("node e2e/ui/find-order.js with %s (%s):\n%s", query, time.Since(start).Round(100*time.Millisecond), strings.TrimSpace(string(b)))
		return b, err
	}

	_, err = run(`OrderStatus="`+orderflow.StatusConfirmed+`"`, orderflow.StatusConfirmed, "60000", shot)
	require.NoError(t, err, "the browser test failed; see its output above")
	require.FileExists(t, shot)
	t.Logf("screenshot: %s", shot)

	// The same search for FAILED orders must not find it: the filter
	// filters, and the browser test fails when the saga is not listed.
	b, err := run(`OrderStatus="`+orderflow.StatusFailed+`"`, orderflow.StatusFailed, "3000",
		filepath.Join(filepath.Dir(shot), "failed-orders.png"))
	require.Error(t, err, "a confirmed order was found among FAILED ones")
	require.Contains(t, string(b), "timed out: "+order.WorkflowID(id)+" in the list filtered by")
}
